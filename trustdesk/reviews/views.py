from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trustdesk.core.decorators import role_required
from trustdesk.core.roles import INTERNAL


@role_required(*INTERNAL)
def reviews_index(request: HttpRequest) -> HttpResponse:
    return render(request, "reviews/reviews_index.html")
