"""The app's URLs plus a bare public view: the baseline of the scope statement's server time."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from bench.urls import bare as bare_signed_in
from trustdesk.urls import urlpatterns as app_urlpatterns


def bare(request: HttpRequest) -> HttpResponse:
    """The same middleware as the API, no authentication, no query, nothing else."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/bare-api/", bare),
    # The page benchmark's baseline: same middleware, a signed-in session and its role check.
    path("bench/bare/", bare_signed_in),
    *app_urlpatterns,
]
