import pytest


@pytest.fixture(autouse=True)
def _private_data_dir(settings, tmp_path_factory):
    """Each test gets its own DATA_DIR (signing key) and MEDIA_ROOT (evidence files)."""
    data = tmp_path_factory.mktemp("data")
    settings.DATA_DIR = data
    settings.MEDIA_ROOT = data / "media"
    return data
