"""Demo users, one per role, for the embedded default. Idempotent: a second run keeps the data."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from trustdesk.core.roles import INCIDENT_MANAGER, OPERATOR, RISK, VIEWER

DEMO_PASSWORD = "trustdesk-demo"
DEMO_USERS = (
    # username, full name, roles
    ("olivia", "Olivia Operator", (OPERATOR,)),
    ("ivan", "Ivan Incident-Manager", (INCIDENT_MANAGER, OPERATOR)),
    ("rita", "Rita Risk", (RISK,)),
    ("victor", "Victor Viewer", (VIEWER,)),
    ("omar", "Omar Operator", (OPERATOR,)),
    ("rosa", "Rosa Risk", (RISK,)),
)


def seed(stdout) -> None:
    User = get_user_model()
    for username, full_name, roles in DEMO_USERS:
        first, _, last = full_name.partition(" ")
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": first, "last_name": last}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        # The role groups come from a migration; a flushed database (a test's teardown, a
        # `manage.py flush`) has none, and the demo must still give everyone their role.
        user.groups.add(*(Group.objects.get_or_create(name=role)[0] for role in roles))
    admin, created = User.objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    if created:
        admin.set_password(DEMO_PASSWORD)
        admin.save()


def print_logins(stdout) -> None:
    stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for username, full_name, roles in DEMO_USERS:
        stdout.write(f"  {username:<8} {full_name:<24} {', '.join(roles)}")
    stdout.write("  admin    Django admin (superuser)")
