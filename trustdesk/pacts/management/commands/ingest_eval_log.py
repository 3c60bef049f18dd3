"""`manage.py ingest_eval_log PATH... [--pact KEY]`: evaluations from Inspect AI logs and JUnit XML
reports (docs/design.md section 14).

Each file is handled on its own and all or nothing: it gives one evaluation per matching clause of
an active pact, or it is refused with the reason and nothing of it is stored. The exit status is
non-zero when any file was refused. Running it again on the same file records nothing new and says
so. The format is told by the content (zip, JSON or XML), not by the file name.
"""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from trustdesk.pacts.errors import PactError
from trustdesk.pacts.eval_sources import IngestResult, ingest_eval_log, safe_log_name


def describe(result: IngestResult) -> list[str]:
    """One line per evaluation, then a summary line; shared with the API's messages."""
    lines = []
    for e in result.evaluations:
        clause = e.clause
        verdict = "pass" if e.passed else ("FAIL (breach)" if e.is_breach else "FAIL")
        state = "already recorded" if getattr(e, "duplicate", False) else "recorded"
        lines.append(
            f"{result.name}: {clause.version.pact.key}@{clause.version.number}#{clause.key} "
            f"{clause.metric} = {e.value_text} {verdict}, {state}"
        )
    new, repeated = len(result.new), len(result.repeated)
    if new:
        summary = f"{new} new evaluation{'s' if new != 1 else ''}"
        if repeated:
            summary += f", {repeated} already recorded"
    else:
        summary = "nothing new: this log was already recorded"
    lines.append(f"{result.name}: {summary}; log sha256:{result.log.sha256}")
    return lines


class Command(BaseCommand):
    help = (
        "Record evaluations from Inspect AI logs (.eval or .json) and JUnit XML reports. "
        "Each file is all or nothing; the exit status is non-zero when any was refused."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument(
            "--pact", metavar="KEY", default=None, help="feed only the clauses of this pact"
        )

    def handle(self, *args, paths: list[str], pact: str | None, **options) -> None:
        refused = 0
        for path in paths:
            name = safe_log_name(path)
            try:
                with Path(path).open("rb") as fh:
                    result = ingest_eval_log(File(fh, name=name), name=name, pact_key=pact)
            except OSError as exc:
                refused += 1
                self.stderr.write(f"{name}: cannot be read ({exc.strerror or exc})")
                continue
            except PactError as exc:
                refused += 1
                for problem in exc.problems:
                    self.stderr.write(problem)
                continue
            for line in describe(result):
                self.stdout.write(line)
        if refused:
            raise CommandError(
                f"{refused} of {len(paths)} file{'s' if len(paths) != 1 else ''} refused; "
                "nothing of those was stored."
            )
