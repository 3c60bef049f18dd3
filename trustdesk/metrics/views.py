from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trustdesk.core.decorators import role_required
from trustdesk.core.roles import INTERNAL


@role_required(*INTERNAL)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "metrics/dashboard.html")
