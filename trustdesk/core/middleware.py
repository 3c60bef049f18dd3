"""Request-wide guards that no single view should have to remember."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from trustdesk.core.bounds import text_problem


class RefuseUnstorableTextMiddleware:
    """A NUL in the path or the query string (`/incidents/%00/`, `?agent=%00`) is never a valid key
    or filter, and PostgreSQL raises on it in any lookup: answer 400 here, once, instead of
    teaching every view and URL pattern. Lone surrogates cannot reach the path or the query (Django
    decodes both as UTF-8 with replacement); form bodies are checked by Django's forms and JSON
    bodies by the API, which can name the field."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = None
        if text_problem(request.path_info):
            where = "the address"
        else:
            for key, values in request.GET.lists():
                if text_problem(key) or any(text_problem(v) for v in values):
                    where = f"the query parameter {key!r}"
                    break
        if where is None:
            return self.get_response(request)
        message = f"Bad request: {where} contains a character that is never valid here (NUL)."
        if request.path_info.startswith("/api/"):
            return JsonResponse({"detail": message, "errors": []}, status=400)
        return render(request, "400.html", {"message": message}, status=400)


class UserTimeZoneMiddleware:
    """Activate the signed-in person's time zone (kept in the session, see `core.timezones`) for
    the request, so that a date/time form field shows its value and reads what was typed in that
    zone and stores the right UTC instant. Pages show times with the `when` tag, which does not
    depend on this; exports, bundles and the API format their times in UTC explicitly. Without a
    zone (anonymous visitors, the buyer page) it stays UTC."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.utils import timezone

        from trustdesk.core.timezones import request_zone

        timezone.activate(request_zone(request))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
