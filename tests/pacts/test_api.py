"""POST /api/v1/evaluations: token auth, idempotency, all-or-nothing batches, pass/fail, 400s."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.pacts.documents import evaluation_item, valid_document
from trustdesk.core import effects
from trustdesk.pacts import actions
from trustdesk.pacts.models import ApiToken, Evaluation

pytestmark = pytest.mark.django_db

URL = "/api/v1/evaluations"
OPS = ["<", "<=", "==", ">=", ">"]


def _clause(key: str, op: str, target, on_breach: str = "flag") -> dict:
    return {
        "key": key,
        "statement": f"The metric is {op} {target}.",
        "assumption": "capability",
        "metric": f"metric_{key}",
        "objective": {"op": op, "target": target},
        "window": "7d",
        "evaluation": {"method": "automated"},
        "on_breach": on_breach,
    }


@pytest.fixture
def pact(make_user):
    clauses = [_clause(f"op-{i}", op, 10) for i, op in enumerate(OPS)]
    clauses += [
        _clause("rate", ">=", "0.95"),
        _clause("suspends", "<=", 0, "suspend"),
        _clause("restricts", "<=", 0, "restrict"),
    ]
    doc = valid_document(clauses=clauses)
    return actions.import_pact_documents([doc], by=make_user("risk"))[0]


@pytest.fixture
def secret(make_user) -> str:
    _token, secret = actions.create_api_token(source="evals", by=make_user("risk"))
    return secret


def item(clause: str = "op-0", value=1, external_id: str = "e-1", **extra) -> dict:
    return evaluation_item(clause=clause, value=value, external_id=external_id, **extra)


def post(client, body, secret: str | None, *, raw: str | bytes | None = None, **headers):
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    data = raw if raw is not None else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", headers=headers)


def paths(response) -> list[str]:
    return [e["path"] for e in response.json()["errors"]]


# ---------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ", "Bearer nope", "Token {secret}", "{secret}", "Bearer {secret}x"],
)
def test_a_missing_or_wrong_token_is_401_and_stores_nothing(client, pact, secret, authorization):
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(secret=secret)
    response = client.post(
        URL, data=json.dumps(item()), content_type="application/json", headers=headers
    )
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert not Evaluation.objects.exists()


def test_a_revoked_token_is_401(client, pact, secret, make_user):
    actions.revoke_api_token(ApiToken.objects.get(), by=make_user("risk"))
    assert post(client, item(), secret).status_code == 401
    assert not Evaluation.objects.exists()


def test_the_api_needs_no_csrf_token(pact, secret):
    strict = Client(enforce_csrf_checks=True)
    assert post(strict, item(), secret).status_code == 201


def test_a_session_login_is_not_enough(client_for, pact):
    response = post(client_for("risk"), item(), None)
    assert response.status_code == 401


def test_use_updates_last_used(client, pact, secret):
    assert ApiToken.objects.get().last_used_at is None
    post(client, item(), secret)
    assert ApiToken.objects.get().last_used_at is not None


# ---------------------------------------------------------------- shapes and idempotency


def test_one_object_is_stored_and_described(client, pact, secret):
    response = post(client, item("op-1", 10), secret)
    assert response.status_code == 201
    [out] = response.json()["evaluations"]
    assert out["pact"] == "support-refunds" and out["version"] == 1 and out["clause"] == "op-1"
    assert out["value"] == "10" and out["passed"] is True and out["duplicate"] is False
    assert out["source"] == "evals" and out["voided"] is False
    stored = Evaluation.objects.get()
    assert stored.clause.version == pact and stored.source == "evals"


@pytest.mark.parametrize("wrap", [lambda items: items, lambda items: {"evaluations": items}])
def test_a_batch_as_a_list_or_an_object(client, pact, secret, wrap):
    items = [item("op-0", 1, "a"), item("op-4", 1, "b")]
    response = post(client, wrap(items), secret)
    assert response.status_code == 201
    assert [e["passed"] for e in response.json()["evaluations"]] == [True, False]
    assert Evaluation.objects.count() == 2


def test_a_repeat_returns_the_stored_result(client, pact, secret):
    first = post(client, item("op-0", 1, "same"), secret).json()["evaluations"][0]
    again = post(client, item("op-0", 99, "same"), secret)
    assert again.status_code == 200
    [out] = again.json()["evaluations"]
    assert out["duplicate"] is True and out["id"] == first["id"] and out["value"] == "1"
    assert out["differs"]["value"] == {"stored": "1", "sent": "99"}
    assert Evaluation.objects.count() == 1


def test_an_exact_repeat_says_nothing_differs_and_a_changed_one_names_each_field(
    client, pact, secret
):
    sent = item("op-0", "1.50", "exact") | {"value": 1.5}
    post(client, sent, secret)
    [same] = post(client, sent, secret).json()["evaluations"]
    assert same["duplicate"] is True and same["differs"] == {}
    changed = sent | {"clause": "op-1", "measured_at": "2026-01-02T03:04:05Z"}
    [out] = post(client, changed, secret).json()["evaluations"]
    assert out["duplicate"] is True
    assert set(out["differs"]) == {"clause", "measured_at"}
    assert out["differs"]["clause"] == {"stored": "op-0", "sent": "op-1"}
    assert out["differs"]["measured_at"]["sent"] == "2026-01-02T03:04:05Z"
    assert Evaluation.objects.count() == 1


def test_a_batch_mixing_new_and_repeated_items(client, pact, secret):
    post(client, item("op-0", 1, "old"), secret)
    response = post(client, [item("op-0", 1, "old"), item("op-0", 2, "new")], secret)
    assert response.status_code == 201
    assert [e["duplicate"] for e in response.json()["evaluations"]] == [True, False]
    assert Evaluation.objects.count() == 2


def test_the_same_external_id_twice_in_a_batch(client, pact, secret):
    same = item("op-0", 1, "dup")
    response = post(client, [same, same], secret)
    assert response.status_code == 201
    ids = {e["id"] for e in response.json()["evaluations"]}
    assert len(ids) == 1
    conflicting = post(client, [item("op-0", 1, "x"), item("op-0", 2, "x")], secret)
    assert conflicting.status_code == 400
    assert paths(conflicting) == ["[1].external_id"]


def test_idempotency_is_per_source(client, pact, secret, make_user):
    _t, other = actions.create_api_token(source="other-source", by=make_user("risk"))
    post(client, item(external_id="e"), secret)
    assert post(client, item(external_id="e"), other).status_code == 201
    assert Evaluation.objects.count() == 2


def test_a_batch_with_one_bad_item_stores_nothing(client, pact, secret):
    response = post(
        client,
        {"evaluations": [item("op-0", 1, "a"), item("nope", 1, "b"), item("op-1", "x", "c")]},
        secret,
    )
    assert response.status_code == 400
    assert sorted(paths(response)) == ["evaluations[1].clause", "evaluations[2].value"]
    assert response.json()["detail"] == "2 problems; nothing was stored."
    assert not Evaluation.objects.exists()


# ---------------------------------------------------------------- pass and fail


CASES = [
    ("<", "9.99999999", True),
    ("<", "10", False),
    ("<", "10.00000001", False),
    ("<=", "9", True),
    ("<=", "10", True),
    ("<=", "10.00000001", False),
    ("==", "10", True),
    ("==", "10.0", True),
    ("==", "9.99999999", False),
    ("==", "10.00000001", False),
    (">=", "9.99999999", False),
    (">=", "10", True),
    (">=", "11", True),
    (">", "10", False),
    (">", "10.00000001", True),
    (">", "-10", False),
]


@pytest.mark.parametrize(("op", "value", "passed"), CASES, ids=[f"{c[1]}{c[0]}10" for c in CASES])
def test_pass_or_fail_for_every_operator_and_boundary(client, pact, secret, op, value, passed):
    clause = f"op-{OPS.index(op)}"
    response = post(
        client, None, secret, raw=json.dumps(item(clause, 0)).replace(": 0,", f": {value},")
    )
    assert response.status_code == 201, response.json()
    assert response.json()["evaluations"][0]["passed"] is passed
    assert Evaluation.objects.get().passed is passed


@pytest.mark.parametrize(
    ("value", "passed"), [("0.95", True), ("0.94999999", False), ("0.950000001", True), ("1", True)]
)
def test_decimal_targets_compare_exactly(client, pact, secret, value, passed):
    raw = json.dumps(item("rate", 0)).replace(": 0,", f": {value},")
    response = post(client, None, secret, raw=raw)
    assert response.json()["evaluations"][0]["passed"] is passed


def test_values_are_stored_with_eight_decimals(client, pact, secret):
    raw = json.dumps(item("op-2", 0)).replace(": 0,", ": 10.000000001,")
    out = post(client, None, secret, raw=raw).json()["evaluations"][0]
    assert out["value"] == "10" and out["passed"] is True


@pytest.mark.parametrize(
    ("clause", "value", "breach"),
    [("suspends", 1, True), ("restricts", 1, True), ("suspends", 0, False), ("op-0", 99, False)],
)
def test_failures_of_restrict_and_suspend_clauses_are_breaches(
    client, pact, secret, clause, value, breach
):
    out = post(client, item(clause, value), secret).json()["evaluations"][0]
    assert out["is_breach"] is breach
    assert Evaluation.objects.get().is_breach is breach


def test_a_breach_is_handed_to_the_incidents_app_after_commit(
    client, pact, secret, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    # By task name (core.effects): the pacts app never imports the incidents app.
    monkeypatch.setattr(effects, "_send", lambda name, args, kwargs: sent.append((name, args)))
    task = "trustdesk.incidents.tasks.open_incident_for_breach"

    def breaches():
        return [args for name, args in sent if name == task]

    with django_capture_on_commit_callbacks(execute=True):
        post(client, [item("suspends", 1, "b1"), item("op-0", 99, "f1")], secret)
    breach = Evaluation.objects.get(external_id="b1")
    assert breaches() == [(breach.pk,)]
    with django_capture_on_commit_callbacks(execute=True):
        post(client, item("suspends", 1, "b1"), secret)  # a repeat is not a new breach
    assert breaches() == [(breach.pk,)]


def test_evaluations_go_to_the_active_version(client, pact, secret, make_user):
    risk = make_user("risk")
    doc = valid_document(clauses=[_clause("op-0", "<", 5)])
    draft = actions.create_draft(doc, by=risk)
    assert post(client, item("op-0", 7, "before"), secret).json()["evaluations"][0]["passed"]
    actions.activate_version(draft, by=risk)
    out = post(client, item("op-0", 7, "after"), secret).json()["evaluations"][0]
    assert out["version"] == 2 and out["passed"] is False
    gone = post(client, item("op-1", 7, "gone"), secret)
    assert gone.status_code == 400 and paths(gone) == ["clause"]


# ---------------------------------------------------------------- bad bodies


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (item(value="abc"), "value"),
        (item(value=True), "value"),
        (item(value=None), "value"),
        (item(value=[1]), "value"),
        (item(measured_at="yesterday"), "measured_at"),
        (item(measured_at="2026-01-01T10:00:00"), "measured_at"),  # no time zone
        (item(measured_at=12), "measured_at"),
        (item(measured_at=(timezone.now() + timedelta(days=1)).isoformat()), "measured_at"),
        (item(pact=5), "pact"),
        (item(pact="nope"), "pact"),
        (item(clause="nope"), "clause"),
        (item(external_id=""), "external_id"),
        (item(external_id="x" * 201), "external_id"),
        (item(source="someone-else"), "source"),
        (item(colour="blue"), "colour"),
        ({k: v for k, v in item().items() if k != "value"}, "value"),
        ({k: v for k, v in item().items() if k != "pact"}, "pact"),
        ({k: v for k, v in item().items() if k != "measured_at"}, "measured_at"),
        ({k: v for k, v in item().items() if k != "external_id"}, "external_id"),
        ([item(), "not an object"], "[1]"),
        ({"evaluations": "all of them"}, "evaluations"),
        ({"evaluations": [item()], "extra": 1}, "extra"),
        ([], "(body)"),
        ({"evaluations": []}, "evaluations"),
        (42, "(body)"),
        ("text", "(body)"),
    ],
)
def test_bad_bodies_are_400_with_the_field_path(client, pact, secret, body, path):
    response = post(client, body, secret)
    assert response.status_code == 400, response.content
    assert path in paths(response), response.json()
    assert not Evaluation.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b'{"pact": "a", "pact": "b"}', b"\xff\xfe", b"[" * 50_000, b"NaN"],
)
def test_unparsable_bodies_are_400(client, pact, secret, raw):
    response = post(client, None, secret, raw=raw)
    assert response.status_code == 400
    assert paths(response) == ["(body)"]


def test_a_clause_that_names_its_source_takes_only_that_source(client, secret, make_user):
    clause = {
        **_clause("audited", "<=", 0, "suspend"),
        "evaluation": {"method": "automated", "source": "refund-audit"},
    }
    actions.import_pact_documents([valid_document(clauses=[clause])], by=make_user("risk"))
    response = post(client, item("audited", 0), secret)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "path": "clause",
            "message": "'audited' is evaluated by source 'refund-audit', not 'evals'",
        }
    ]
    _t, audit = actions.create_api_token(source="refund-audit", by=make_user("risk"))
    assert post(client, item("audited", 0), audit).status_code == 201


def test_a_pact_without_an_active_version(client, secret, make_user):
    actions.create_draft(valid_document(), by=make_user("risk"))
    response = post(client, item("refund-limit"), secret)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "pact", "message": "pact 'support-refunds' has no active version"}
    ]


def test_more_than_a_thousand_items_is_refused(client, pact, secret):
    items = [item(external_id=f"e-{i}") for i in range(1001)]
    response = post(client, items, secret)
    assert response.status_code == 413
    assert not Evaluation.objects.exists()


def test_a_thousand_items_are_fine(client, pact, secret, django_assert_max_num_queries):
    items = [item(external_id=f"e-{i}") for i in range(1000)]
    with django_assert_max_num_queries(12):
        response = post(client, items, secret)
    assert response.status_code == 201
    assert Evaluation.objects.count() == 1000


def test_a_huge_body_is_413(client, pact, secret):
    raw = json.dumps([item(external_id="x" * 150)] * 15_000)
    assert len(raw) > 2 * 1024 * 1024
    response = post(client, None, secret, raw=raw)
    assert response.status_code == 413
    assert not Evaluation.objects.exists()


def test_only_post_is_allowed(client, pact, secret):
    response = client.get(URL, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 405


def test_the_api_cannot_change_a_pact_version(client, pact, secret):
    before = (pact.sha256, list(pact.clauses.values_list("key", "op", "target")))
    auth = {"Authorization": f"Bearer {secret}"}
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(URL, headers=auth).status_code == 405
    for path in ("/api/v1/pacts", "/api/v1/pacts/support-refunds", "/api/v1/clauses/op-0"):
        # No write route: unknown (404) or read-only (405).
        answer = client.post(path, data="{}", content_type="application/json")
        assert answer.status_code in (404, 405)
    extra = item(document={"spec": {}}, target=0)
    response = post(client, extra, secret)
    assert response.status_code == 400 and sorted(paths(response)) == ["document", "target"]
    post(client, item("op-0", 99), secret)  # evaluating a clause leaves it as it was
    pact.refresh_from_db()
    assert (pact.sha256, list(pact.clauses.values_list("key", "op", "target"))) == before


def test_times_with_z_are_accepted(client, pact, secret):
    at = (timezone.now() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = post(client, item(measured_at=at), secret)
    assert response.status_code == 201
    assert response.json()["evaluations"][0]["measured_at"].startswith(at[:16])


# ---------------------------------------------------------------- OpenAPI


def test_the_openapi_document_describes_the_endpoint(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    operation = spec["paths"]["/api/v1/evaluations"]["post"]
    assert set(operation["responses"]) >= {"200", "201", "400", "401", "413"}
    assert "EvaluationOut" in spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    single, many, wrapped = body["oneOf"]
    assert set(single["required"]) == {"pact", "clause", "value", "measured_at", "external_id"}
    assert many["items"] == single and many["maxItems"] == 1000
    assert wrapped["properties"]["evaluations"]["items"] == single


def test_there_are_no_cdn_docs(client):
    assert client.get("/api/v1/docs").status_code == 404
