"""The offline verifier shipped in every bundle checks proofs with its own standard-library copy
of the RFC 9162 algorithms: read as it reads a bundle, it must accept and refuse exactly as the
published probes say, like the server's `incidents.merkle` does."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from trustdesk.diligence import verify

VECTORS = json.loads(
    (Path(__file__).parents[1] / "incidents" / "data" / "merkle_vectors.json").read_text()
)


def _inclusion_ok(p: dict) -> bool:
    """As verify.py reads a bundle: every hash through its own b64_hash (a 32-byte check)."""
    try:
        leaf = verify.b64_hash(p["leafHash"] or "", "leaf")
        root = verify.b64_hash(p["root"] or "", "root")
        proof = [verify.b64_hash(h, "proof") for h in p["proof"] or []]
    except verify.Mismatch:
        return False
    found = verify.root_from_inclusion(p["leafIdx"], p["treeSize"], leaf, proof)
    return found is not None and found == root


def _consistency_ok(p: dict) -> bool:
    # Some equal-size probes use short placeholder roots ("don't care"): the function itself is
    # what is checked here, on the decoded bytes, as the server's twin is.
    def raw(text: str | None) -> bytes:
        return base64.b64decode(text) if text else b""

    proof = [raw(h) for h in p["proof"] or []]
    return verify.consistent(p["size1"], p["size2"], raw(p["root1"]), raw(p["root2"]), proof)


def test_the_bundled_verifier_agrees_with_every_published_inclusion_probe():
    wrong = []
    for p in VECTORS["inclusion_probes"]:
        if _inclusion_ok(p) == p["wantErr"]:
            wrong.append(p["file"])
    assert len(VECTORS["inclusion_probes"]) > 50
    assert wrong == []


def test_the_bundled_verifier_agrees_with_every_published_consistency_probe():
    wrong = []
    for p in VECTORS["consistency_probes"]:
        if _consistency_ok(p) == p["wantErr"]:
            wrong.append(p["file"])
    assert len(VECTORS["consistency_probes"]) > 50
    assert wrong == []
