from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trustdesk.core.decorators import role_required
from trustdesk.core.roles import INTERNAL


@role_required(*INTERNAL)
def agents_index(request: HttpRequest) -> HttpResponse:
    return render(request, "pacts/agents_index.html")


@role_required(*INTERNAL)
def pacts_index(request: HttpRequest) -> HttpResponse:
    return render(request, "pacts/pacts_index.html")


def pact_schema(request: HttpRequest) -> HttpResponse:
    from django.http import JsonResponse

    from trustdesk.pacts.document import pact_schema as schema

    return JsonResponse(schema())
