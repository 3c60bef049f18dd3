from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _role_groups(db):
    """The role groups come from a data migration; a transactional test's flush removes them,
    so the tests that follow one would see users without roles."""
    from django.contrib.auth.models import Group

    from trustdesk.core.roles import ROLES

    for role in ROLES:
        Group.objects.get_or_create(name=role)


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def people(make_user):
    """One user per role the reviews rules distinguish."""

    class People:
        im = make_user("incident_manager", username="ivan")
        im2 = make_user("incident_manager", username="ines")
        risk = make_user("risk", username="rita")
        risk2 = make_user("risk", username="rosa")
        op = make_user("operator", username="olivia")
        viewer = make_user("viewer", username="victor")

    return People
