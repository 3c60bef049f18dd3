import io

import pytest
from django.contrib.auth.models import Group, User

from trustdesk.core import demo
from trustdesk.core.roles import user_roles

pytestmark = pytest.mark.django_db


def test_demo_users_get_their_roles_even_after_the_role_groups_were_flushed():
    # A transactional test's teardown (or `manage.py flush`) removes the migration's groups.
    Group.objects.all().delete()
    demo.seed(io.StringIO())
    for username, _, roles in demo.DEMO_USERS:
        assert user_roles(User.objects.get(username=username)) == frozenset(roles)
