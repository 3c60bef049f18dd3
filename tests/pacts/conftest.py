"""Fixtures of the pacts tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def role_groups(transactional_db):
    """A transactional test's flush empties auth_group, which a data migration filled: put the
    role groups back so that make_user can grant roles."""
    from django.contrib.auth.models import Group

    from trustdesk.core.roles import ROLES

    for role in ROLES:
        Group.objects.get_or_create(name=role)
