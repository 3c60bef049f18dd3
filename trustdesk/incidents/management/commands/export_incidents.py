"""`manage.py export_incidents [--agent KEY] [--incident KEY] OUT.json`: the exchange format."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trustdesk.incidents.exchange import dumps, export_document
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import Agent


def refuse_unknown_keys(model: type[Agent | Incident], keys: list[str]) -> None:
    """Exit 2 naming every key that no row of `model` has (`No agent a, b.`)."""
    known = model.objects.filter(key__in=keys).values_list("key", flat=True)
    missing = set(keys) - set(known)
    if missing:
        name = model._meta.verbose_name
        raise CommandError(f"No {name} {', '.join(sorted(missing))}.", returncode=2)


class Command(BaseCommand):
    help = "Export incidents with their events, agents and pact versions (trustdesk.incidents/v1)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("out", metavar="OUT.json", help="the file to write, or - for stdout")
        parser.add_argument("--agent", metavar="KEY", action="append", help="only this agent")
        parser.add_argument("--incident", metavar="KEY", action="append", help="only this one")
        parser.add_argument(
            "--with-hashes",
            action="store_true",
            help="add each event's seq, hash, prev_hash and canonical text (not importable)",
        )

    def handle(self, *args, **options) -> None:
        incidents = Incident.objects.all()
        if options["agent"]:
            refuse_unknown_keys(Agent, options["agent"])
            incidents = incidents.filter(agent__key__in=options["agent"])
        if options["incident"]:
            refuse_unknown_keys(Incident, options["incident"])
            incidents = incidents.filter(key__in=options["incident"])
        document = export_document(incidents, with_hashes=options["with_hashes"])
        text = dumps(document)
        if options["out"] == "-":
            self.stdout.write(text, ending="")
        else:
            try:
                with open(options["out"], "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                raise CommandError(
                    f"Cannot write {options['out']}: {exc.strerror}.", returncode=2
                ) from None
            self.stdout.write(
                f"Exported {len(document['incidents'])} incident(s) to {options['out']}."
            )
