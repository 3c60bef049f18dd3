from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_key_and_groups(settings, tmp_path, db):
    """Each test signs with a fresh instance key of its own; the role groups exist."""
    from django.contrib.auth.models import Group

    from trustdesk.core.roles import ROLES

    settings.DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = tmp_path / "media"
    for role in ROLES:
        Group.objects.get_or_create(name=role)


@pytest.fixture
def token_for():
    """`token_for("read")` -> the secret of a new token with those scopes."""
    from itertools import count

    from trustdesk.pacts import actions

    names = count(1)

    def make(*scopes: str) -> str:
        _token, secret = actions.create_api_token(
            source=f"t{next(names)}", scopes=list(scopes), by=None
        )
        return secret

    return make


@pytest.fixture
def people(make_user):
    """One user per role the decisions need."""

    class People:
        im = make_user("incident_manager", username="ivan")
        risk = make_user("risk", username="rita")
        op = make_user("operator", username="olivia")

    return People
