"""The four roles (docs/design.md section 10), as Django groups, and who may do what.

`PERMISSIONS` is the one table of who may do what: an action's name -> the roles that may do it.
Views check it with `@permission_required("override")`, templates with `{% if user|can:"override"
%}` (core's `roles` tag library), actions with `authorize(by, "override", ...)`, and the URL x role
test reads it through each view's `required_roles`. An action called with `by=None` is the system
(a command, a task, the importer, the demo seed) and is allowed; every person is checked.
"""

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
_WORKERS = (OPERATOR, INCIDENT_MANAGER, RISK)  # every internal role but viewer

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "read": INTERNAL,
    # incidents
    "work_incidents": (OPERATOR, INCIDENT_MANAGER),  # contain, evidence, classify, repair, notes
    "open_dispute": _WORKERS,
    "resolve_dispute": (RISK,),
    "assign_owners": (OPERATOR, INCIDENT_MANAGER),
    "keep_actions": _WORKERS,
    "close_not_incident": (INCIDENT_MANAGER,),
    "reclassify": (RISK,),
    "assess_obligations": (INCIDENT_MANAGER, RISK),
    "file_reports": (INCIDENT_MANAGER, RISK),
    # pacts
    "author_pacts": (RISK,),
    "set_agent_profiles": (RISK,),  # an agent's regulatory profile
    "manage_tokens": (INCIDENT_MANAGER, RISK),
    # reviews
    "work_reviews": _WORKERS,  # operating-model changes, conditions, request review
    "sign_off": (RISK, INCIDENT_MANAGER, OPERATOR),
    "decide": (RISK, INCIDENT_MANAGER),
    "override": (INCIDENT_MANAGER,),
    "attest": _WORKERS,
    "run_meetings": (INCIDENT_MANAGER,),
    "take_meeting_notes": _WORKERS,
    # metrics, diligence, notifications
    "recompute_metrics": _WORKERS,
    "export_internal_bundles": (INCIDENT_MANAGER, RISK, OPERATOR),
    "share_links": (INCIDENT_MANAGER,),
    "manage_notifications": (INCIDENT_MANAGER,),
}
# Who may work incidents (contain, add evidence, classify, repair, notes).
WORKS_INCIDENTS = PERMISSIONS["work_incidents"]


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


def roles_for(action: str) -> tuple[str, ...]:
    """The roles that may do `action` (a key of PERMISSIONS; an unknown name is a bug)."""
    try:
        return PERMISSIONS[action]
    except KeyError:
        raise KeyError(f"no permission named {action!r} in core.roles.PERMISSIONS") from None


def can(user: AbstractBaseUser | AnonymousUser | None, action: str) -> bool:
    """Whether `user` may do `action`. None is the system (commands, tasks): always allowed."""
    roles = roles_for(action)
    return user is None or has_role(user, *roles)


def refusal(action: str, doing: str) -> str:
    """The sentence an action gives a person whose role does not allow `doing`."""
    names = " or ".join(ROLE_LABELS[r].lower() for r in roles_for(action))
    return f"Only a user with the {names} role may {doing}."


def authorize(by: AbstractBaseUser | None, action: str, doing: str, error: type[Exception]) -> None:
    """Raise `error` (the app's Refused subclass) when the person `by` may not do `action`.
    `by=None` is the system and passes."""
    if not can(by, action):
        raise error(refusal(action, doing))
