"""`{% load roles %}{% if user|can:"override" %}`: core.roles.PERMISSIONS in templates."""

from __future__ import annotations

from django import template

from trustdesk.core import roles

register = template.Library()


@register.filter
def can(user, action: str) -> bool:
    """Whether the signed-in user may do `action`; a visitor without a login never may."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return roles.can(user, action)
