"""The My work count in the navigation: one query, run only when a page shows it."""

from __future__ import annotations

from functools import cache

from django.http import HttpRequest


def my_work(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    @cache
    def count() -> int:  # templates call it; computed at most once per request
        from trustdesk.reviews.mywork import my_work_count

        return my_work_count(user)

    return {"my_work_count": count}
