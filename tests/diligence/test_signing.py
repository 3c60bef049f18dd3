import stat
import subprocess
from pathlib import Path

import pytest

from trustdesk.diligence import signing


def test_the_key_is_made_on_first_use_in_data_dir_readable_only_by_its_owner(settings):
    path = Path(settings.DATA_DIR) / "keys" / "instance-ed25519.pem"
    assert not path.exists()
    first = signing.public_key()
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert b"PRIVATE KEY" in path.read_bytes()
    assert signing.public_key() == first  # kept, not remade
    assert len(first.raw) == 32 and len(first.fingerprint) == 64
    assert first.instance_id == f"td-{first.fingerprint[:16]}"


def test_signatures_verify_with_the_public_key():
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(signing.public_key().raw)
    key.verify(signing.sign(b"manifest"), b"manifest")
    with pytest.raises(InvalidSignature):
        key.verify(signing.sign(b"manifest"), b"manifest!")


def test_an_unusable_key_file_is_a_clear_error(settings):
    path = signing.key_path()
    path.parent.mkdir(parents=True)
    path.write_text("not a key")
    with pytest.raises(signing.SigningKeyError, match=str(path)):
        signing.public_key()


def test_the_default_key_location_is_never_committed():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        ["git", "check-ignore", "-q", "data/keys/instance-ed25519.pem"], cwd=root
    )
    assert result.returncode == 0
