"""`manage.py obligations [--incident KEY] [--agent KEY] [--at TIME] --json` (docs/design.md
section 13): the regulatory obligations of the incidents, their deadlines and status at a time."""

from __future__ import annotations

import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from trustdesk.core.bounds import parse_utc_time
from trustdesk.incidents.models import Incident
from trustdesk.incidents.obligations import all_obligations
from trustdesk.pacts.models import Agent


def parse_at(raw: str) -> datetime:
    """`core.bounds.parse_utc_time`, refusing anything else in the words of `--at`."""
    try:
        return parse_utc_time(raw)
    except ValueError:
        raise CommandError(
            f"--at {raw!r} is not a time: use an ISO 8601 time such as 2026-11-02T10:00:00Z "
            "(or YYYY-MM-DD for midnight UTC)."
        ) from None


class Command(BaseCommand):
    help = (
        "List the regulatory obligations of incidents (EU AI Act Art. 73, GDPR Art. 33, NIS2 "
        "Art. 23) with their deadlines and status at --at (default now), sorted by deadline, "
        "then incident key, then obligation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--incident", help="one incident key (INC-42)")
        parser.add_argument("--agent", help="one agent key")
        parser.add_argument("--at", help="the time of the status (ISO 8601; default now)")
        parser.add_argument("--json", action="store_true", help="print one JSON list")

    def handle(self, *args, **options) -> None:
        at = parse_at(options["at"]) if options["at"] else timezone.now()
        incidents = Incident.objects.all()
        if options["incident"]:
            if not Incident.objects.filter(key=options["incident"]).exists():
                raise CommandError(f"No incident with key {options['incident']!r}.")
            incidents = incidents.filter(key=options["incident"])
        if options["agent"]:
            if not Agent.objects.filter(key=options["agent"]).exists():
                raise CommandError(f"No agent with key {options['agent']!r}.")
            incidents = incidents.filter(agent__key=options["agent"])
        found = all_obligations(incidents)
        if options["json"]:
            self.stdout.write(json.dumps([o.as_json(at) for o in found], indent=2))
            return
        if not found:
            self.stdout.write("No obligations.")
            return
        for o in found:
            row = o.as_json(at)
            self.stdout.write(
                f"{row['deadline']}  {row['status']:<10} {row['incident']:<10} "
                f"{row['regime']}/{row['obligation']}"
                + (f"  filed {row['filed_at']}" if row["filed_at"] else "")
            )
