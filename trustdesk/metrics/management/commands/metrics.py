"""`manage.py metrics [--from DATE] [--to DATE] [--agent KEY] --json` (docs/design.md section 7)."""

from __future__ import annotations

import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trustdesk.core.bounds import parse_utc_time
from trustdesk.metrics.compute import compute_metrics
from trustdesk.pacts.models import Agent


def parse_when(raw: str, *, option: str) -> datetime:
    """`core.bounds.parse_utc_time`, refusing anything else in the words of `option`."""
    try:
        return parse_utc_time(raw)
    except ValueError:
        raise CommandError(
            f"{option} {raw!r} is not a date: use YYYY-MM-DD (midnight UTC) or an ISO 8601 "
            "time such as 2026-11-02T10:00:00Z."
        ) from None


class Command(BaseCommand):
    help = (
        "Print the incident-response metrics (docs/design.md section 6) of incidents detected in "
        "[--from, --to), computed by the same code as the workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", help="inclusive: YYYY-MM-DD or ISO 8601")
        parser.add_argument("--to", dest="end", help="exclusive: YYYY-MM-DD or ISO 8601")
        parser.add_argument("--agent", help="an agent key (default: all agents)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options) -> None:
        start = parse_when(options["start"], option="--from") if options["start"] else None
        end = parse_when(options["end"], option="--to") if options["end"] else None
        if start and end and start >= end:
            raise CommandError("--from must be earlier than --to (--to is exclusive).")
        agent = None
        if options["agent"]:
            agent = Agent.objects.filter(key=options["agent"]).first()
            if agent is None:
                raise CommandError(f"No agent with key {options['agent']!r}.")
        data = compute_metrics(start=start, end=end, agent=agent)
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(render_text(data))


def render_text(data: dict) -> str:
    window = data["window"]
    lines = [
        f"Incidents detected from {window['from'] or 'the beginning'} "
        f"to {window['to'] or 'now'} (agent: {data['agent'] or 'all'}): {data['incident_count']}"
    ]
    for name in ("time_to_containment", "time_to_classification", "time_to_recovery"):
        m = data[name]
        lines.append(f"{name}: p50={m['p50']} s p90={m['p90']} s count={m['count']}")
    lines.append(f"  uncontained={data['time_to_containment']['uncontained']}")
    ev = data["evidence_completeness_at_reopen"]
    lines.append(f"evidence_completeness_at_reopen: {ev['value']} over {ev['count']}")
    for name in (
        "reopen_without_change_rate",
        "override_rate",
        "explainable_decision_rate",
        "recurrence_rate",
    ):
        m = data[name]
        lines.append(f"{name}: {m['value']} ({m['numerator']}/{m['denominator']})")
    for name in ("unclassified_count", "open_count", "stale_pacts", "restricted_agents"):
        lines.append(f"{name}: {data[name]}")
    return "\n".join(lines)
