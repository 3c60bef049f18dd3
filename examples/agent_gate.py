"""The reference gate for an agent runtime: act only while TrustDesk says the agent's scope is full.

Standard library only. Copy this file next to your agent and call `gate.allows()` before each
action that needs full scope:

    gate = ScopeGate("https://trustdesk.example", "support-bot", token=os.environ["TD_TOKEN"])
    gate.start(interval=5)            # polls in a background thread
    if gate.allows():
        issue_refund(...)

How it works:
- It polls `GET /api/v1/agents/{agent}/scope` with `If-None-Match` set to the last `ETag`: an
  unchanged scope costs the server one query and answers 304 with no body.
- Each new statement's `Signature-Ed25519` header is checked against the keys published at
  `/.well-known/trustdesk-keys.json` when the `cryptography` package can be imported; without it
  the check is skipped and `signature_note` says so. A statement whose signature does not verify,
  names another agent or goes back in revision is refused (the old one stays, and ages).
- `allows()` is true only when the latest statement says `full` AND it was confirmed (200 or 304)
  within `grace` seconds. TrustDesk unreachable, the token revoked, a bad answer: after the grace
  period the gate closes. It fails closed.

A token with the scope `agent:KEY` (or `read`) is enough: `manage.py api_token create gate-KEY
--scope agent:KEY`. Run it alone to watch an agent: `python agent_gate.py URL AGENT` with the token
in the TRUSTDESK_TOKEN environment variable.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

try:  # optional: the signature is checked only when cryptography is importable
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - exercised where cryptography is absent
    Ed25519PublicKey = None  # type: ignore[assignment,misc]
    InvalidSignature = Exception  # type: ignore[assignment,misc]


def signature_ok(body: bytes, signature_b64: str, public_keys: list[bytes]) -> bool:
    """Whether `signature_b64` is an Ed25519 signature of exactly `body` by one of the keys."""
    if Ed25519PublicKey is None:
        raise RuntimeError("cryptography is not installed")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return False
    for raw in public_keys:
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(signature, body)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


class ScopeGate:
    """The agent's view of its own scope, kept fresh by conditional GETs."""

    def __init__(
        self,
        base_url: str,
        agent: str,
        *,
        token: str,
        grace: float = 60.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.agent = agent
        self.token = token
        self.grace = grace
        self.timeout = timeout
        self.clock = clock
        self.statement: dict | None = None
        self.etag: str | None = None
        self.confirmed_at: float | None = None
        self.last_error: str | None = None
        self.signature_note = (
            "signatures checked"
            if Ed25519PublicKey is not None
            else "cryptography is not installed: signatures are NOT checked"
        )
        self._keys: list[bytes] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ the decision

    def allows(self) -> bool:
        """True only on a `full` statement confirmed within the grace period."""
        with self._lock:
            if self.statement is None or self.confirmed_at is None:
                return False
            if self.clock() - self.confirmed_at > self.grace:
                return False
            return self.statement.get("scope") == "full"

    # ------------------------------------------------------------ polling

    def refresh(self) -> bool:
        """One conditional GET. Returns whether the statement is confirmed current now."""
        url = f"{self.base_url}/api/v1/agents/{self.agent}/scope"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
                status, etag = response.status, response.headers.get("ETag")
                signature = response.headers.get("Signature-Ed25519", "")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                with self._lock:
                    self.confirmed_at = self.clock()
                    self.last_error = None
                return True
            return self._failed(f"HTTP {exc.code}")
        except (OSError, ValueError) as exc:  # unreachable, timed out, bad URL
            return self._failed(str(exc))
        if status != 200:
            return self._failed(f"HTTP {status}")
        return self._accept(body, etag, signature)

    def _accept(self, body: bytes, etag: str | None, signature: str) -> bool:
        if Ed25519PublicKey is not None:
            if not signature:
                return self._failed("the statement is not signed")
            if not signature_ok(body, signature, self._public_keys()):
                self._keys = None  # the key may have rotated: fetch again next time
                if not signature_ok(body, signature, self._public_keys()):
                    return self._failed("the statement's signature does not verify")
        try:
            statement = json.loads(body)
        except ValueError:
            return self._failed("the statement is not JSON")
        if not isinstance(statement, dict) or statement.get("agent") != self.agent:
            return self._failed("the statement is not about this agent")
        with self._lock:
            known = self.statement.get("revision", 0) if self.statement else 0
            if not isinstance(statement.get("revision"), int) or statement["revision"] < known:
                self.last_error = "the statement is older than the one held"
                return False
            self.statement, self.etag = statement, etag
            self.confirmed_at = self.clock()
            self.last_error = None
        return True

    def _failed(self, why: str) -> bool:
        with self._lock:
            self.last_error = why  # the held statement ages and the gate closes after `grace`
        return False

    def _public_keys(self) -> list[bytes]:
        if self._keys is None:
            url = f"{self.base_url}/.well-known/trustdesk-keys.json"
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as response:
                    document = json.loads(response.read())
                self._keys = [
                    base64.b64decode(k["public_key"])
                    for k in document.get("keys", [])
                    if k.get("alg") == "Ed25519"
                ]
            except (OSError, ValueError, KeyError, TypeError):
                return []
        return self._keys

    def start(self, interval: float = 5.0) -> None:
        """Poll every `interval` seconds in a daemon thread until `stop()`."""
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                self.refresh()
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name=f"scope-gate-{self.agent}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: agent_gate.py URL AGENT  (token in TRUSTDESK_TOKEN)", file=sys.stderr)
        return 2
    gate = ScopeGate(argv[1], argv[2], token=os.environ.get("TRUSTDESK_TOKEN", ""), grace=30)
    print(gate.signature_note)
    while True:
        gate.refresh()
        scope = gate.statement.get("scope") if gate.statement else None
        print(f"allows={gate.allows()} scope={scope} error={gate.last_error}", flush=True)
        time.sleep(5)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
