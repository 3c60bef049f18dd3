"""Whether a person gets e-mail about what is theirs (docs/design.md section 12): a setting of
their profile, chosen on the settings page and honoured by the notify app's fan-out."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser

from trustdesk.core.models import UserProfile


def set_email_notifications(user: AbstractBaseUser, *, on: bool) -> bool:
    """Store whether `user` gets e-mail about what is theirs; returns the stored choice."""
    UserProfile.objects.update_or_create(user=user, defaults={"email_notifications": on})
    return on


def wants_email(user: AbstractBaseUser) -> bool:
    """The user's choice; on for a person who never chose."""
    return not UserProfile.objects.filter(user=user, email_notifications=False).exists()


def opted_out(user_ids: Iterable[int]) -> set[int]:
    """Which of these users turned their e-mail off (one query)."""
    return set(
        UserProfile.objects.filter(
            user_id__in=list(user_ids), email_notifications=False
        ).values_list("user_id", flat=True)
    )
