from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trustdesk.core.decorators import role_required
from trustdesk.core.roles import INTERNAL


@role_required(*INTERNAL)
def incidents_index(request: HttpRequest) -> HttpResponse:
    return render(request, "incidents/incidents_index.html")


@role_required(*INTERNAL)
def incident_detail(request: HttpRequest, key: str) -> HttpResponse:
    from django.shortcuts import get_object_or_404

    from trustdesk.incidents.models import Incident

    incident = get_object_or_404(Incident.objects.select_related("agent"), key=key)
    return render(request, "incidents/incident_detail.html", {"incident": incident})
