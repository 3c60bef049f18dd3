"""Evaluation files made by the tools themselves: Inspect AI logs written by inspect_ai's own
`write_eval_log` from real `EvalLog` objects, and JUnit XML written by pytest's `--junitxml`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from trustdesk.pacts.actions import import_pact_documents

TASK = "refund_policy"


def make_inspect_log(
    path: Path,
    *,
    accuracy: float = 0.7,
    status: str = "success",
    task: str = TASK,
    completed: datetime | None = None,
    error: str = "RuntimeError: the model API did not answer",
) -> Path:
    """Write an Inspect AI log (the format follows the suffix: .eval or .json)."""
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalError,
        EvalLog,
        EvalMetric,
        EvalResults,
        EvalScore,
        EvalSpec,
        EvalStats,
        write_eval_log,
    )

    completed = completed or datetime.now(UTC) - timedelta(minutes=10)
    started = completed - timedelta(minutes=5)
    spec = EvalSpec(
        created=started.isoformat(),
        task=task,
        dataset=EvalDataset(name="refund-cases", samples=20),
        model="mockllm/model",
        config=EvalConfig(),
    )
    stats = EvalStats(started_at=started.isoformat(), completed_at=completed.isoformat())
    if status == "success":
        results = EvalResults(
            total_samples=20,
            completed_samples=20,
            scores=[
                EvalScore(
                    name="match",
                    scorer="match",
                    metrics={
                        "accuracy": EvalMetric(name="accuracy", value=accuracy),
                        "stderr": EvalMetric(name="stderr", value=0.05),
                    },
                )
            ],
        )
        log = EvalLog(status="success", eval=spec, results=results, stats=stats)
    else:
        log = EvalLog(
            status=status,
            eval=spec,
            stats=stats,
            error=EvalError(message=error, traceback=error, traceback_ansi=error)
            if status == "error"
            else None,
        )
    write_eval_log(log, str(path))
    return path


def junit_from_pytest(
    folder: Path, *, passing: int, failing: int, skipped: int = 0, suite: str = "refund-regression"
) -> Path:
    """Run pytest itself on a tiny generated suite and return the JUnit XML it wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    tests = ["import pytest\n"]
    tests += [f"def test_pass_{i}():\n    assert True\n" for i in range(passing)]
    tests += [f"def test_fail_{i}():\n    assert 1 == 2\n" for i in range(failing)]
    tests += [
        f"@pytest.mark.skip(reason='not today')\ndef test_skip_{i}():\n    pass\n"
        for i in range(skipped)
    ]
    (folder / "test_tiny.py").write_text("\n".join(tests))
    (folder / "pytest.ini").write_text(
        textwrap.dedent(
            f"""\
            [pytest]
            junit_suite_name = {suite}
            """
        )
    )
    out = folder / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rootdir={folder}",
            "-c",
            str(folder / "pytest.ini"),
            f"--junitxml={out}",
            str(folder / "test_tiny.py"),
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        check=False,  # failing tests are the point
        timeout=120,
    )
    assert out.is_file(), "pytest wrote no JUnit report"
    return out


def pact_document(
    key: str = "refund-evals",
    agent: str = "support-bot",
    *,
    clauses: list[dict] | None = None,
) -> dict:
    return {
        "apiVersion": "trustdesk/v1",
        "kind": "Pact",
        "metadata": {"key": key, "agent": agent, "title": "Refund evaluations"},
        "spec": {
            "risk_tier": "high",
            "review": {"cadence_days": 30},
            "evidence_required": ["evaluation_result"],
            "clauses": clauses
            or [
                {
                    "key": "refund-accuracy",
                    "statement": "Decides refund cases correctly at least 80% of the time.",
                    "assumption": "capability",
                    "metric": "refund_accuracy",
                    "objective": {"op": ">=", "target": "0.8"},
                    "window": "7d",
                    "evaluation": {
                        "method": "inspect",
                        "source": "refund-evals",
                        "task": TASK,
                        "scorer": "match",
                        "metric": "accuracy",
                    },
                    "on_breach": "suspend",
                },
                {
                    "key": "regression-suite",
                    "statement": "Passes at least 90% of the refund regression tests.",
                    "assumption": "reliability",
                    "metric": "regression_pass_rate",
                    "objective": {"op": ">=", "target": "0.9"},
                    "window": "7d",
                    "evaluation": {
                        "method": "junit",
                        "source": "refund-ci",
                        "suite": "refund-regression",
                    },
                    "on_breach": "flag",
                },
            ],
        },
    }


def import_pact(doc: dict | None = None):
    [version] = import_pact_documents([doc or pact_document()], by=None)
    return version
