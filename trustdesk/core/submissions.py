"""Run a form's action once per submission token (see core.models.Submission)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from trustdesk.core.models import Submission


def new_token() -> uuid.UUID:
    return uuid.uuid4()


def submit_once(
    token: uuid.UUID | None, *, by: AbstractBaseUser, action: Callable[[], str]
) -> tuple[str, bool]:
    """Run `action` (which makes something and returns its page URL) unless `token` was
    submitted before; returns (url, repeated). Without a token it simply runs.

    The token row and what `action` makes commit together: a refused action leaves the token
    free for a corrected resubmission. A concurrent twin waits on the unique token and then
    finds the first one's URL. A token used by another user is not theirs to replay: the action
    is refused by raising PermissionError.
    """
    if token is None:
        return action(), False
    try:
        with transaction.atomic():
            row = Submission.objects.create(token=token, user=by)
            url = action()
            row.result_url = url
            row.save(update_fields=["result_url"])
            return url, False
    except IntegrityError:
        earlier = Submission.objects.filter(token=token).first()
        if earlier is None:  # the IntegrityError came from the action itself
            raise
    if earlier.user_id != by.pk:
        raise PermissionError("This form was submitted by someone else.")
    return earlier.result_url, True
