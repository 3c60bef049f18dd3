"""Schemathesis over the read API and the scope statement: no 5xx, and every answer (status,
content type, body) is one the OpenAPI document declares. Bounded, so it runs in the suite."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import get_resolver
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.factories import make_incident
from trustdesk.pacts import actions
from trustdesk.pacts.api import api
from trustdesk.wsgi import application

ROUTES = r"^/api/v1/(agents|pacts|incidents|metrics)"

_ = get_resolver().url_patterns  # some routes join the API as the URLconf loads: load it first
schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1"))
schema = schema.include(method="GET", path_regex=ROUTES)
schema.app = application


@pytest.fixture
def reader(db):
    """A read token, and an agent, pact and incident so answers carry real rows. The requests go
    through the WSGI application in this thread: it must not close the test's connection."""
    make_incident()
    _token, secret = actions.create_api_token(source="fuzz", scopes=["read"], by=None)
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {secret}"}
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_read_routes_answer_as_documented(case, reader):
    # Every check but positive_data_acceptance: a schema cannot say that `from=2026-02-31` is
    # not a date, and the documented answer to it is a 400 naming the field.
    case.call_and_validate(headers=reader, excluded_checks=[positive_data_acceptance])
