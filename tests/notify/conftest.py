from __future__ import annotations

import pytest

from tests.notify.receiver import Receiver


@pytest.fixture(autouse=True)
def _role_groups_and_media(db, settings, tmp_path):
    """Role groups (a transactional test's flush removes them) and private evidence files."""
    from django.contrib.auth.models import Group

    from trustdesk.core.roles import ROLES

    for role in ROLES:
        Group.objects.get_or_create(name=role)
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TRUSTDESK_PUBLIC_URL = ""


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()
