"""The instance key as the scope statement uses it: loaded once per process, reloaded if the key
file changes, so signing a statement costs no file read.

The key itself is the bundles' key (trustdesk.diligence.signing): one instance, one key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from threading import Lock

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustdesk.diligence import signing


@dataclass(frozen=True)
class LoadedKey:
    stamp: tuple[str, int]
    private: Ed25519PrivateKey
    raw_public: bytes

    @property
    def kid(self) -> str:
        """SHA-256 hex of the 32 raw public key bytes (docs/design.md section 12)."""
        return hashlib.sha256(self.raw_public).hexdigest()

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.raw_public).decode("ascii")


_cache: LoadedKey | None = None
_lock = Lock()


def instance_key() -> LoadedKey:
    global _cache
    path = signing.key_path()
    try:
        stamp = (str(path), os.stat(path).st_mtime_ns)
    except FileNotFoundError:
        stamp = None
    cached = _cache
    if cached is not None and cached.stamp == stamp:
        return cached
    with _lock:
        private = signing.private_key()  # creates the key on first use
        stamp = (str(path), os.stat(path).st_mtime_ns)
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        _cache = LoadedKey(stamp, private, raw)
        return _cache


def signature_header(body: bytes) -> str:
    """The `Signature-Ed25519` value: base64 of the Ed25519 signature of exactly `body`."""
    return base64.b64encode(instance_key().private.sign(body)).decode("ascii")


def keys_document() -> dict:
    key = instance_key()
    return {"keys": [{"kid": key.kid, "alg": "Ed25519", "public_key": key.public_b64}]}
