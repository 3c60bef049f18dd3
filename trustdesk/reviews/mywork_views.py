"""The My work page (trustdesk/reviews/mywork.py gathers what waits on the signed-in user)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from trustdesk.core.decorators import permission_required
from trustdesk.reviews.mywork import my_work


@require_GET
@permission_required("read")
def my_work_page(request: HttpRequest) -> HttpResponse:
    return render(request, "reviews/my_work.html", my_work(request.user))
