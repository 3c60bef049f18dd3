"""The instance's Ed25519 signing key: made on first use, kept in DATA_DIR, never in the repo.

The private key lives in DATA_DIR/keys/instance-ed25519.pem (PKCS#8 PEM, mode 0600, in a 0700
folder). Its public half is shown on the diligence pages and written into every bundle, and
bundles sign the exact bytes of their manifest.json with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

KEY_FILE_NAME = "instance-ed25519.pem"


class SigningKeyError(Exception):
    """The key file exists but cannot be used (unreadable, not an Ed25519 key)."""


@dataclass(frozen=True)
class PublicKey:
    raw: bytes

    @property
    def hex(self) -> str:
        return self.raw.hex()

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the 32 raw public key bytes, hex: what a buyer compares."""
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def fingerprint_display(self) -> str:
        """The fingerprint in groups of four, easier to read aloud and compare."""
        fp = self.fingerprint
        return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))

    @property
    def instance_id(self) -> str:
        # The instance is known by its key: one fewer identifier to keep in sync.
        return f"td-{self.fingerprint[:16]}"


def key_path() -> Path:
    return Path(settings.DATA_DIR) / "keys" / KEY_FILE_NAME


def _create_key(path: Path) -> None:
    """Write a new key without ever exposing a partial or world-readable file.

    The PEM goes to a 0600 temporary file in the same folder, then is hard-linked into place:
    the link fails if another process got there first, and then its key wins.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: keep theirs
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def private_key() -> Ed25519PrivateKey:
    path = key_path()
    if not path.exists():
        _create_key(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"The signing key at {path} cannot be used: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"The signing key at {path} is not an Ed25519 key.")
    return key


def public_key() -> PublicKey:
    raw = (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return PublicKey(raw)


def sign(data: bytes) -> bytes:
    return private_key().sign(data)
