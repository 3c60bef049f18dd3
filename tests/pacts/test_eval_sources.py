"""Inspect AI logs and JUnit XML reports feed pact clauses (docs/design.md section 14)."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.pacts.eval_logs import (
    TASK,
    import_pact,
    junit_from_pytest,
    make_inspect_log,
    pact_document,
)
from trustdesk.incidents import breach, lifecycle
from trustdesk.incidents.models import Evidence, Incident
from trustdesk.pacts.document import canonical_document, validate_document
from trustdesk.pacts.models import Agent, ApiToken, Evaluation, EvaluationLog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_media(media):
    """Every test here stores evidence files (conftest.py's media)."""


_commits = {}


@pytest.fixture(autouse=True)
def run_on_commit(django_capture_on_commit_callbacks):
    """Breaches are handed to the incidents app on commit: run those callbacks as each ingest
    commits, as production does (the test's own transaction never commits)."""
    _commits["capture"] = django_capture_on_commit_callbacks
    yield
    _commits.clear()


def committed():
    return _commits["capture"](execute=True)


def stored_files(media) -> list[Path]:
    return sorted(p for p in Path(media).rglob("*") if p.is_file())


def counts() -> tuple[int, int, int, int]:
    return (
        Evaluation.objects.count(),
        EvaluationLog.objects.count(),
        Incident.objects.count(),
        Evidence.objects.count(),
    )


def ingest(*paths, pact: str | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = [str(p) for p in paths] + (["--pact", pact] if pact else [])
    with committed():
        call_command("ingest_eval_log", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*paths, pact: str | None = None) -> str:
    err = io.StringIO()
    args = [str(p) for p in paths] + (["--pact", pact] if pact else [])
    with pytest.raises(CommandError) as exc:
        call_command("ingest_eval_log", *args, stdout=io.StringIO(), stderr=err)
    return err.getvalue() + str(exc.value)


# ---------------------------------------------------------------- the pact document


def test_inspect_and_junit_clauses_are_valid_and_keep_their_fields_in_canonical_form():
    doc = canonical_document(pact_document())
    inspect_eval = doc["spec"]["clauses"][0]["evaluation"]
    assert inspect_eval == {
        "method": "inspect",
        "source": "refund-evals",
        "task": TASK,
        "scorer": "match",
        "metric": "accuracy",
    }
    assert doc["spec"]["clauses"][1]["evaluation"]["suite"] == "refund-regression"


def test_an_inspect_clause_needs_its_task_scorer_and_metric_and_other_methods_refuse_them():
    doc = pact_document()
    doc["spec"]["clauses"][0]["evaluation"] = {"method": "inspect", "source": "x", "task": "t"}
    doc["spec"]["clauses"][1]["evaluation"] = {"method": "automated", "suite": "s"}
    problems = validate_document(doc)
    assert "spec.clauses[0].evaluation.scorer: is required" in problems
    assert "spec.clauses[0].evaluation.metric: is required" in problems
    assert (
        "spec.clauses[1].evaluation.suite: only for method junit (this clause's method is "
        "automated)" in problems
    )


def test_a_junit_clause_needs_a_suite_and_a_source():
    doc = pact_document()
    doc["spec"]["clauses"][1]["evaluation"] = {"method": "junit"}
    problems = validate_document(doc)
    assert "spec.clauses[1].evaluation.source: is required" in problems
    assert "spec.clauses[1].evaluation.suite: is required" in problems


def test_export_of_an_imported_inspect_pact_is_the_canonical_document():
    version = import_pact()
    out = io.StringIO()
    call_command("export_pact", version.pact.key, "--format", "json", stdout=out)
    assert json.loads(out.getvalue()) == canonical_document(pact_document(), version=1)


# ---------------------------------------------------------------- Inspect AI logs


def test_a_breaching_eval_log_opens_an_incident_with_the_log_as_downloadable_evidence(
    tmp_path, client_for
):
    version = import_pact()
    log_path = make_inspect_log(tmp_path / "run.eval", accuracy=0.55)
    out, _ = ingest(log_path)

    [evaluation] = Evaluation.objects.all()
    assert evaluation.value == Decimal("0.55") and not evaluation.passed and evaluation.is_breach
    assert evaluation.source == "refund-evals"
    assert evaluation.log.sha256 == EvaluationLog.objects.get().sha256
    assert evaluation.log.format == "inspect_eval"
    assert evaluation.log.summary["task"] == TASK
    assert evaluation.external_id.startswith(evaluation.log.summary["eval_id"] + "/match/accuracy")
    assert "refund-accuracy" in out and "FAIL (breach)" in out and "1 new evaluation" in out

    incident = Incident.objects.get()
    assert incident.pact_version_id == version.pk
    [evidence] = incident.evidence.all()
    assert evidence.kind == "evaluation_result"
    assert evidence.sha256 == evaluation.log.sha256
    assert evidence.original_name == "run.eval"
    # The incident page offers it, and the download gives the exact bytes of the log.
    operator = client_for("operator")
    page = operator.get(f"/incidents/{incident.key}/")
    download = f"/incidents/{incident.key}/evidence/{evidence.pk}/download/"
    assert download in page.content.decode()
    response = operator.get(download)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == log_path.read_bytes()
    assert "attachment" in response["Content-Disposition"]

    # The suspend clause's containment, as proposed, suspends the agent.
    proposal = breach.proposed_containment(incident)
    assert proposal["scope_after"] == "suspended"
    lifecycle.contain_incident(incident, by=None, expected_version=incident.version, **proposal)
    assert Agent.objects.get(key="support-bot").scope == "suspended"


def test_a_breaching_log_of_a_contain_auto_clause_suspends_the_agent_at_once(tmp_path):
    doc = pact_document()
    doc["spec"]["clauses"][0]["contain"] = "auto"
    import_pact(doc)
    ingest(make_inspect_log(tmp_path / "run.json", accuracy=0.4))
    incident = Incident.objects.get()
    assert incident.state == "contained"
    assert Agent.objects.get(key="support-bot").scope == "suspended"
    assert incident.evidence.get().kind == "evaluation_result"


def test_a_passing_json_log_records_a_passing_evaluation_and_opens_nothing(tmp_path):
    import_pact()
    out, _ = ingest(make_inspect_log(tmp_path / "run.json", accuracy=0.92))
    [evaluation] = Evaluation.objects.all()
    assert evaluation.value == Decimal("0.92") and evaluation.passed
    assert evaluation.log.format == "inspect_json"
    assert Incident.objects.count() == 0
    assert "pass, recorded" in out


def test_the_measurement_is_the_logs_completion_time(tmp_path):
    from datetime import UTC, datetime

    import_pact()
    completed = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    ingest(make_inspect_log(tmp_path / "run.eval", accuracy=0.9, completed=completed))
    assert Evaluation.objects.get().measured_at == completed


def test_the_same_log_twice_records_nothing_new_and_says_so(tmp_path, media):
    import_pact()
    path = make_inspect_log(tmp_path / "run.eval", accuracy=0.5)
    ingest(path)
    before, files = counts(), stored_files(media)
    out, _ = ingest(path)
    assert counts() == before
    assert stored_files(media) == files
    assert "already recorded" in out and "nothing new" in out


def test_a_log_with_status_error_is_refused_with_its_reason_and_nothing_is_stored(tmp_path, media):
    import_pact()
    path = make_inspect_log(tmp_path / "broken.eval", status="error")
    before = counts()
    message = refused(path)
    assert "broken.eval: refused: the evaluation failed" in message
    assert "the model API did not answer" in message
    assert "only logs with status 'success'" in message.lower()
    assert counts() == before
    assert stored_files(media) == []


def test_a_cancelled_log_is_refused(tmp_path):
    import_pact()
    message = refused(make_inspect_log(tmp_path / "stopped.json", status="cancelled"))
    assert "cancelled" in message and Evaluation.objects.count() == 0


def test_a_truncated_eval_zip_is_refused_and_nothing_is_stored(tmp_path, media):
    import_pact()
    whole = make_inspect_log(tmp_path / "whole.eval").read_bytes()
    cut = tmp_path / "cut.eval"
    cut.write_bytes(whole[: len(whole) // 2])
    before = counts()
    message = refused(cut)
    assert "cut.eval: not a readable Inspect AI log" in message and "complete" in message
    assert counts() == before and stored_files(media) == []


def test_a_file_that_is_not_a_log_is_refused(tmp_path, media):
    import_pact()
    junk = tmp_path / "notes.eval"
    junk.write_bytes(b"just some notes\n")
    json_junk = tmp_path / "config.json"
    json_junk.write_text('{"model": "x"}')
    message = refused(junk, json_junk)
    assert "notes.eval: not an evaluation log" in message
    assert "config.json: not a readable Inspect AI log" in message
    assert "2 of 2 files refused" in message
    assert counts() == (0, 0, 0, 0) and stored_files(media) == []


def test_a_log_matching_no_clause_is_refused_with_what_it_holds(tmp_path, media):
    import_pact()
    message = refused(make_inspect_log(tmp_path / "other.eval", task="summaries"))
    assert "other.eval: matches no clause of an active pact" in message
    assert "task 'summaries'" in message and "match/accuracy" in message
    assert counts() == (0, 0, 0, 0) and stored_files(media) == []


def test_pact_option_limits_matching_to_that_pact(tmp_path):
    import_pact()
    other = pact_document(key="other-pact", agent="other-bot")
    import_pact(other)
    ingest(make_inspect_log(tmp_path / "run.eval", accuracy=0.9), pact="other-pact")
    [evaluation] = Evaluation.objects.all()
    assert evaluation.clause.version.pact.key == "other-pact"
    assert "no pact 'nope'" in refused(tmp_path / "run.eval", pact="nope")


def test_one_log_feeds_two_clauses_of_the_same_metric_with_distinct_ids(tmp_path):
    clause = pact_document()["spec"]["clauses"][0]
    flag = {**clause, "key": "accuracy-watch", "objective": {"op": ">=", "target": "0.95"}}
    flag["on_breach"] = "flag"
    import_pact(pact_document(clauses=[clause, flag]))
    ingest(make_inspect_log(tmp_path / "run.eval", accuracy=0.9))
    rows = {e.clause.key: e for e in Evaluation.objects.select_related("clause")}
    assert set(rows) == {"refund-accuracy", "accuracy-watch"}
    assert rows["refund-accuracy"].passed and not rows["accuracy-watch"].passed
    assert rows["refund-accuracy"].log_id == rows["accuracy-watch"].log_id
    assert Incident.objects.count() == 0  # a flag clause does not open one


# ---------------------------------------------------------------- JUnit XML


def test_a_pytest_junit_report_gives_passed_over_tests_minus_skipped(tmp_path):
    import_pact()
    report = junit_from_pytest(tmp_path / "ci", passing=7, failing=2, skipped=3)
    out, _ = ingest(report)
    evaluation = Evaluation.objects.get()
    assert evaluation.clause.key == "regression-suite"
    assert evaluation.source == "refund-ci"
    assert evaluation.value == Decimal("0.77777778")  # 7 / (12 - 3), to 8 places
    assert not evaluation.passed
    assert evaluation.log.format == "junit"
    suite = evaluation.log.summary["suites"]["refund-regression"]
    assert (suite["tests"], suite["passed"], suite["not_passed"], suite["skipped"]) == (
        12,
        7,
        2,
        3,
    )
    assert "regression-suite" in out
    # The same report again: nothing new.
    out, _ = ingest(report)
    assert Evaluation.objects.count() == 1 and "nothing new" in out


def test_testsuites_with_the_same_name_are_added_together(tmp_path):
    import_pact()
    report = tmp_path / "merged.xml"
    report.write_text(
        '<?xml version="1.0"?><testsuites>'
        '<testsuite name="refund-regression" tests="4" failures="1" errors="0" skipped="0" '
        'timestamp="2026-11-01T10:00:00+00:00" time="2.5"/>'
        '<testsuite name="refund-regression" tests="6" failures="0" errors="1" skipped="2" '
        'timestamp="2026-11-01T10:01:00+00:00" time="1"/>'
        "</testsuites>"
    )
    ingest(report)
    evaluation = Evaluation.objects.get()
    # passed = (4 - 1) + (6 - 1 - 2) = 6 of (10 - 2) = 8 counted
    assert evaluation.value == Decimal("0.75")
    assert evaluation.measured_at.isoformat() == "2026-11-01T10:01:01+00:00"
    assert evaluation.log.summary["suites"]["refund-regression"]["elements"] == 2


def test_an_xml_bomb_is_refused_without_expanding_and_nothing_is_stored(tmp_path, media):
    import_pact()
    bomb = tmp_path / "bomb.xml"
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    bomb.write_text(
        f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]>'
        '<testsuites><testsuite name="refund-regression" tests="1">&lol9;</testsuite>'
        "</testsuites>"
    )
    message = refused(bomb)
    assert "bomb.xml: refused: the XML declares a DTD or entities" in message
    assert counts() == (0, 0, 0, 0) and stored_files(media) == []


def test_a_suite_where_everything_was_skipped_gives_no_value(tmp_path):
    import_pact()
    report = junit_from_pytest(tmp_path / "ci", passing=0, failing=0, skipped=2)
    message = refused(report)
    assert "ran no test that was not skipped" in message
    assert Evaluation.objects.count() == 0


# ---------------------------------------------------------------- the API


@pytest.fixture
def token_for(make_user):
    from trustdesk.pacts.actions import create_api_token

    def make(source: str) -> str:
        _token, secret = create_api_token(source=source, by=make_user("risk"))
        return secret

    return make


def post_log(client, data: bytes, secret: str | None, **query):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    with committed():
        return client.post(
            "/api/v1/eval-logs" + (f"?{qs}" if qs else ""),
            data=data,
            content_type="application/octet-stream",
            headers=headers,
        )


def test_the_api_takes_a_raw_eval_log_and_answers_with_the_evaluations(client, tmp_path, token_for):
    import_pact()
    secret = token_for("refund-evals")
    data = make_inspect_log(tmp_path / "run.eval", accuracy=0.6).read_bytes()
    response = post_log(client, data, secret, name="nightly.eval")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["new"] == 1 and body["repeated"] == 0
    assert body["log"]["format"] == "inspect_eval" and body["log"]["name"] == "nightly.eval"
    [evaluation] = body["evaluations"]
    assert (evaluation["clause"], evaluation["value"], evaluation["is_breach"]) == (
        "refund-accuracy",
        "0.6",
        True,
    )
    assert Incident.objects.get().evidence.get().original_name == "nightly.eval"
    assert ApiToken.objects.get().last_used_at is not None

    again = post_log(client, data, secret)
    assert again.status_code == 200
    assert again.json()["log"]["name"] == "nightly.eval"  # the first name it arrived with
    assert again.json()["evaluations"][0]["duplicate"] is True
    assert again.json()["message"] == "Nothing new: this log was already recorded."
    assert Evaluation.objects.count() == 1


def test_the_api_reads_json_logs_and_junit_reports_by_content(client, tmp_path, token_for):
    import_pact()
    json_log = make_inspect_log(tmp_path / "run.json", accuracy=0.9).read_bytes()
    response = post_log(client, json_log, token_for("refund-evals"))
    assert response.status_code == 201 and response.json()["log"]["format"] == "inspect_json"
    # Sent without a name, it downloads under its hash and the suffix of its format.
    sha = response.json()["log"]["sha256"]
    assert response.json()["log"]["name"] == f"{sha[:16]}.json"
    report = junit_from_pytest(tmp_path / "ci", passing=9, failing=1).read_bytes()
    response = post_log(client, report, token_for("refund-ci"))
    assert response.status_code == 201, response.content
    assert response.json()["evaluations"][0]["value"] == "0.9"


def test_the_api_feeds_only_the_tokens_source_and_says_which_clause_wanted_another(
    client, tmp_path, token_for, media
):
    import_pact()
    data = make_inspect_log(tmp_path / "run.eval").read_bytes()
    response = post_log(client, data, token_for("someone-else"))
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert "matches no clause" in message
    assert "refund-evals#refund-accuracy is evaluated by source 'refund-evals'" in message
    assert counts() == (0, 0, 0, 0) and stored_files(media) == []


def test_the_api_refuses_bad_bodies_clearly_and_stores_nothing(client, tmp_path, token_for, media):
    import_pact()
    secret = token_for("refund-evals")
    assert post_log(client, b"", secret).status_code == 400
    junk = post_log(client, b"\x00\x01 not a log", secret)
    assert (
        junk.status_code == 400 and "not an evaluation log" in junk.json()["errors"][0]["message"]
    )
    failed = make_inspect_log(tmp_path / "e.eval", status="error").read_bytes()
    response = post_log(client, failed, secret)
    assert response.status_code == 400
    assert "the evaluation failed" in response.json()["errors"][0]["message"]
    assert post_log(client, failed, None).status_code == 401
    assert counts() == (0, 0, 0, 0) and stored_files(media) == []


def test_the_api_refuses_a_body_above_the_evidence_limit(client, settings, token_for):
    settings.EVIDENCE_MAX_BYTES = 1024
    response = post_log(client, b"{" + b" " * 2048 + b"}", token_for("refund-evals"))
    assert response.status_code == 413
    assert Evaluation.objects.count() == 0


# ---------------------------------------------------------------- the log download


def test_the_stored_log_downloads_as_an_attachment_for_internal_roles_only(
    tmp_path, client_for, client
):
    import_pact()
    path = make_inspect_log(tmp_path / "run.eval", accuracy=0.9)
    ingest(path)
    log = EvaluationLog.objects.get()
    url = f"/evaluation-logs/{log.sha256}/"
    response = client_for("viewer").get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == path.read_bytes()
    assert response["Content-Type"] == "application/octet-stream"
    assert client.get(url).status_code == 302  # anonymous: to the login page
    assert client_for("viewer").get("/evaluation-logs/" + "0" * 64 + "/").status_code == 404


# ---------------------------------------------------------------- the pact page


def test_the_pact_page_lists_each_clauses_last_evaluations_with_their_logs(
    tmp_path, client_for, django_assert_num_queries
):
    version = import_pact()
    viewer = client_for("viewer")
    url = f"/pacts/{version.pact.key}/"

    def page_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert viewer.get(url).status_code == 200
        return len(ctx.captured_queries)

    empty = page_queries()
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC) - timedelta(hours=2)
    values = ["0.9", "0.85", "0.5", "0.95", "0.81", "0.99", "0.7"]
    for i, value in enumerate(values):
        completed = start + timedelta(minutes=i)
        log = tmp_path / f"run-{i}.eval"
        ingest(make_inspect_log(log, accuracy=float(value), completed=completed))
    ingest(junit_from_pytest(tmp_path / "ci", passing=9, failing=1))
    assert page_queries() == empty  # the same queries whatever the number of evaluations

    page = viewer.get(url).content.decode()
    accuracy_card = page[page.index('id="clause-refund-accuracy"') : page.index('id="clause-regr')]
    assert "Last 5 evaluations" in accuracy_card
    logs = {e.value_text: e.log for e in Evaluation.objects.select_related("log")}
    shown = sorted((accuracy_card.index(f">{v}<"), v) for v in values if f">{v}<" in accuracy_card)
    assert [v for _, v in shown] == list(reversed(values[2:]))  # the five newest, newest first
    for _, value in shown:
        assert f"/evaluation-logs/{logs[value].sha256}/" in accuracy_card
        assert f"run-{values.index(value)}.eval" in accuracy_card
    assert "Task <code>refund_policy</code>, scorer <code>match</code>" in accuracy_card
    suite_card = page[page.index('id="clause-regression-suite"') :]
    assert "report.xml" in suite_card and "Test suite <code>refund-regression</code>" in suite_card


def test_a_token_without_evaluations_write_is_refused_and_nothing_is_stored(
    client, tmp_path, make_user, media
):
    from trustdesk.pacts.actions import create_api_token

    import_pact()
    _token, secret = create_api_token(source="refund-evals", scopes=["read"], by=make_user("risk"))
    data = make_inspect_log(tmp_path / "run.eval", accuracy=0.5).read_bytes()
    response = post_log(client, data, secret)
    assert response.status_code == 403
    assert "evaluations:write" in response.json()["errors"][0]["message"]
    assert counts() == (0, 0, 0, 0) and stored_files(media) == []


def test_the_api_streams_logs_above_djangos_in_memory_body_limit(
    client, tmp_path, token_for, settings
):
    import_pact()
    log = make_inspect_log(tmp_path / "run.json", accuracy=0.9).read_bytes()
    padded = log + b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)  # still the same JSON
    response = post_log(client, padded, token_for("refund-evals"))
    assert response.status_code == 201, response.content
    assert EvaluationLog.objects.get().size == len(padded)
