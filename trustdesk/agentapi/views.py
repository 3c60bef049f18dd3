"""The instance's public keys, for anyone who checks a signature (docs/design.md section 12)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from trustdesk.agentapi.signing import keys_document


@require_GET
@cache_control(public=True, max_age=300)
def trustdesk_keys(request: HttpRequest) -> JsonResponse:
    """`GET /.well-known/trustdesk-keys.json`: public on purpose, it holds public keys only."""
    return JsonResponse(keys_document())
