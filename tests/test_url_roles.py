"""Walk every URL of the project with every role (docs/design.md section 10).

A view that forgets its role check fails here: every route must either carry
`permission_required(action)` (an action of core.roles.PERMISSIONS, whose roles become its
`required_roles`) or be listed as public below with the reason.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import make_incident
from trustdesk.core.roles import PERMISSIONS, ROLES

pytestmark = pytest.mark.django_db

# Routes that need no login, and why.
PUBLIC = {
    "login": "the login page",
    "logout": "ends a session (POST only)",
    "healthz": "health checks from load balancers and compose",
    "pact_schema": "the pact JSON Schema at a stable URL",
    "openapi-json": "the API description",
    "api-root": "the API index",
    "post_evaluations": "bearer-token API, checked by the API itself",
    "agent_scope": "bearer-token API (read or agent:KEY), checked by the API itself",
    "list_agents": "bearer-token read API, checked by the API itself",
    "get_agent": "bearer-token read API, checked by the API itself",
    "list_pacts": "bearer-token read API, checked by the API itself",
    "get_pact": "bearer-token read API, checked by the API itself",
    "list_incidents": "bearer-token read API, checked by the API itself",
    "get_incident": "bearer-token read API, checked by the API itself",
    "get_metrics": "bearer-token read API, checked by the API itself",
    "trustdesk_keys": "the instance's public keys, for anyone checking a signature",
    "post_eval_log": "bearer-token API, checked by the API itself",
    "post_trace": "bearer-token API, checked by the API itself",
    "buyer_view": "buyer diligence link, authorized by its token",
    "buyer_bundle": "buyer diligence link, authorized by its token",
    "buyer_pact_json": "buyer diligence link, authorized by its token",
    "buyer_pact_yaml": "buyer diligence link, authorized by its token",
    "log_checkpoint": "transparency log: any role, or a share link's token (checked in the view)",
    "log_inclusion_proof": "transparency log: any role, or a share link's token",
    "log_consistency_proof": "transparency log: any role, or a share link's token",
}


def _routes(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern).startswith("admin/"):
                continue  # Django admin: staff only, checked by Django
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def _fill(route: str, values: dict[str, str]) -> str:
    def repl(match: re.Match) -> str:
        name = match.group(2)
        return values.get(f"{route.split('/')[0]}:{name}", values.get(name, "1"))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", repl, route)


def _row_counts() -> dict[str, int]:
    return {
        m._meta.label: m._default_manager.count()
        for m in apps.get_models()
        if m._meta.app_label in {"pacts", "incidents", "reviews", "metrics", "diligence"}
    }


@pytest.fixture
def sample_values(make_user):
    incident = make_incident(by=make_user("operator"))
    version = incident.pact_version
    return {
        "agents:key": incident.agent.key,
        "pacts:key": version.pact.key,
        "incidents:key": incident.key,
        "reviews:key": incident.key,
        "key": incident.key,
        "number": str(version.number),
        "clause": version.clauses.first().key,
        "metric": "time_to_containment",
        "fmt": "json",
    }


def test_every_route_is_role_checked_or_public_for_a_reason():
    unguarded = [
        (route, p.name)
        for route, p in _routes(get_resolver().url_patterns)
        if not getattr(p.callback, "required_roles", None) and p.name not in PUBLIC
    ]
    assert unguarded == []
    # Who may do what is read from the one table, not spelled per view.
    by_roles = [
        (route, p.name)
        for route, p in _routes(get_resolver().url_patterns)
        if getattr(p.callback, "required_roles", None)
        and getattr(p.callback, "permission", None) not in PERMISSIONS
    ]
    assert by_roles == []


def test_every_url_with_every_role(client, make_user, sample_values):
    """Anonymous users are sent to the login page, wrong roles get 403 and change nothing, and
    the right roles never meet a 403 or a 500. A method the view does not take answers 405
    before any role check, which is fine: it changes nothing either."""
    routes = [
        (route, p)
        for route, p in _routes(get_resolver().url_patterns)
        if getattr(p.callback, "required_roles", None)
    ]
    assert len(routes) > 40
    users = {role: make_user(role) for role in ROLES}
    problems = []
    for route, pattern in routes:
        url = _fill(route, sample_values)
        allowed = set(pattern.callback.required_roles)
        client.logout()
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            to_login = response.status_code == 302 and "/login/" in response.get("Location", "")
            if not to_login and response.status_code != 405:
                problems.append(f"anonymous {method.upper()} {url}: {response.status_code}")
        refused_somewhere = False
        for role, user in users.items():
            client.force_login(user)
            before = _row_counts()
            responses = {"GET": client.get(url), "POST": client.post(url)}
            if role in allowed:
                for method, response in responses.items():
                    if response.status_code in (403, 500):
                        problems.append(f"{role} {method} {url}: {response.status_code}")
                continue
            for method, response in responses.items():
                if response.status_code not in (403, 405):
                    problems.append(f"{role} {method} {url}: {response.status_code}, not 403")
                refused_somewhere |= response.status_code == 403
            if _row_counts() != before:
                problems.append(f"{role} {url} was refused but changed rows")
        if allowed != set(ROLES) and not refused_somewhere:
            problems.append(f"{url}: no wrong role was ever refused with 403")
    if problems:
        pytest.fail("\n".join(problems))
