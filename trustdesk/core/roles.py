"""The four roles of DESIGN.md section 10, as Django groups, and who may do what."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

OPERATOR = "operator"
INCIDENT_MANAGER = "incident_manager"
RISK = "risk"
VIEWER = "viewer"

ROLES: tuple[str, ...] = (OPERATOR, INCIDENT_MANAGER, RISK, VIEWER)
ROLE_LABELS = {
    OPERATOR: "Operator",
    INCIDENT_MANAGER: "Incident manager",
    RISK: "Risk",
    VIEWER: "Viewer",
}
# Everyone with a role may read internal pages.
INTERNAL = ROLES
# Who may work incidents (contain, add evidence, classify, repair, notes).
WORKS_INCIDENTS = (OPERATOR, INCIDENT_MANAGER)


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The roles a user holds; cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_trustdesk_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        if user.is_superuser:  # type: ignore[attr-defined]
            names |= set(ROLES)
        cached = frozenset(names & set(ROLES))
        user._trustdesk_roles = cached  # type: ignore[union-attr]
    return cached


def has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def primary_role_label(user: AbstractBaseUser | AnonymousUser) -> str:
    held = user_roles(user)
    for role in (INCIDENT_MANAGER, RISK, OPERATOR, VIEWER):
        if role in held:
            return ROLE_LABELS[role]
    return "No role"
