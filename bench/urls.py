"""The app's URLs plus a bare view, the benchmark's baseline for page server time."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from trustdesk.core.decorators import role_required
from trustdesk.core.roles import INTERNAL
from trustdesk.urls import urlpatterns as app_urlpatterns


@role_required(*INTERNAL)
def bare(request: HttpRequest) -> HttpResponse:
    """The same middleware and role check as every page, and nothing else."""
    return HttpResponse("ok", content_type="text/plain")


@role_required(*INTERNAL)
def shell(request: HttpRequest) -> HttpResponse:
    """The page shell every page shares (base.html: navigation, stylesheets), with no content."""
    return render(request, "base.html")


urlpatterns = [path("bench/bare/", bare), path("bench/shell/", shell), *app_urlpatterns]
