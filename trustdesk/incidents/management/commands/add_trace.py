"""`manage.py add_trace INCIDENT PATH [--description TEXT]`: an OTLP JSON trace as evidence of kind
`trace` (docs/design.md section 14), through the same lifecycle function as the incident page's
form. A file that is not an OTLP JSON trace, or is too large, is refused with the reason and not
kept.
"""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from trustdesk.core.errors import Refused
from trustdesk.incidents import lifecycle, traces
from trustdesk.incidents.evidence import human_size, safe_name
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import EvidenceKind


class Command(BaseCommand):
    help = "Attach an OTLP JSON trace file to an incident as evidence of kind 'trace'."

    def add_arguments(self, parser) -> None:
        parser.add_argument("incident", metavar="INCIDENT", help="the incident key, like INC-42")
        parser.add_argument("path", metavar="PATH")
        parser.add_argument("--description", default="", help="what the trace shows")

    def handle(self, *args, incident: str, path: str, description: str, **options) -> None:
        found = Incident.objects.filter(key=incident.strip().upper()).first()
        if found is None:
            raise CommandError(f"No incident '{incident[:40]}'.")
        name = safe_name(path)
        file = Path(path)
        try:
            size = file.stat().st_size
        except OSError as exc:
            raise CommandError(f"{name}: cannot be read ({exc.strerror or exc})") from None
        if size > traces.max_bytes():
            # Refused before reading a byte of it.
            raise CommandError(
                f"{name} is {human_size(size)}; a trace may be at most "
                f"{human_size(traces.max_bytes())}. Nothing was stored."
            )
        try:
            with file.open("rb") as fh:
                item = lifecycle.add_evidence(
                    found,
                    by=None,
                    expected_version=None,
                    kind=EvidenceKind.TRACE,
                    description=description.strip() or f"Agent trace {name} (OTLP JSON)",
                    upload=File(fh, name=name),
                )
        except Refused as exc:
            for problem in exc.problems:
                self.stderr.write(f"{name}: {problem}")
            raise CommandError("The trace was refused; nothing was stored.") from None
        view = item.trace_view
        self.stdout.write(
            f"{found.key}: trace evidence #{item.pk} sha256:{item.sha256}, "
            f"{view.span_count} span{'s' if view.span_count != 1 else ''}, "
            f"{view.error_count} with an error"
        )
