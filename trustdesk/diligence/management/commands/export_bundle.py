"""`manage.py export_bundle [--agent KEY] [--incident KEY] [--shareable] [--since-checkpoint SIZE]
OUT.zip`.

By default the internal bundle (every event). `--shareable` makes the bundle a buyer downloads from
a diligence link: internal notes are withheld (their hashes stay, so the chain still verifies).
`--since-checkpoint SIZE` adds the transparency log's consistency proof from that tree size (the
size in an earlier bundle's checkpoint.txt), so `verify.py NEW.zip --previous OLD.zip` can check
that the new history extends the old.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from trustdesk.diligence.bundle import (
    BUYER_AUDIENCE,
    INTERNAL_AUDIENCE,
    BundleError,
    BundleScope,
    export_to_path,
)
from trustdesk.diligence.signing import SigningKeyError
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import Agent


class Command(BaseCommand):
    help = (
        "Write a signed evidence bundle (every event, every evidence file) for the given agents "
        "and/or incidents; without options, for every agent."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("out", metavar="OUT.zip", help="where to write the zip")
        parser.add_argument(
            "--agent", action="append", default=[], metavar="KEY", help="repeatable"
        )
        parser.add_argument(
            "--incident", action="append", default=[], metavar="KEY", help="repeatable"
        )
        parser.add_argument(
            "--since-checkpoint",
            type=int,
            metavar="SIZE",
            help="the tree size of an earlier bundle's checkpoint: include the transparency "
            "log's consistency proof from it",
        )
        parser.add_argument(
            "--shareable",
            action="store_true",
            help="withhold internal notes, as in a buyer's download from a diligence link",
        )

    def handle(
        self,
        *args,
        out: str,
        agent: list[str],
        incident: list[str],
        shareable: bool = False,
        since_checkpoint: int | None = None,
        **options,
    ) -> None:
        path = Path(out)
        if path.suffix.lower() != ".zip":
            raise CommandError(f"{out}: the bundle is a zip; name it something.zip")
        if not path.parent.is_dir():
            raise CommandError(f"{out}: the folder {path.parent} does not exist")
        agents = list(Agent.objects.filter(key__in=agent)) if agent else []
        missing = sorted(set(agent) - {a.key for a in agents})
        if missing:
            raise CommandError(f"no such agent: {', '.join(missing)}")
        incident_keys = None
        if incident:
            found = dict(Incident.objects.filter(key__in=incident).values_list("key", "agent_id"))
            missing = sorted(set(incident) - set(found))
            if missing:
                raise CommandError(f"no such incident: {', '.join(missing)}")
            incident_keys = sorted(found, key=lambda k: int(k.rpartition("-")[2] or 0))
            if not agents:
                agents = list(Agent.objects.filter(pk__in=set(found.values())))
            else:
                outside = [k for k, a in found.items() if a not in {x.pk for x in agents}]
                if outside:
                    raise CommandError(
                        f"{', '.join(sorted(outside))}: not an incident of "
                        f"{', '.join(a.key for a in agents)}"
                    )
        if not agent and not incident:
            agents = list(Agent.objects.all())
        scope = BundleScope(
            agents=agents,
            audience=BUYER_AUDIENCE if shareable else INTERNAL_AUDIENCE,
            include_evidence=True,
            incident_keys=incident_keys,
            since_checkpoint=since_checkpoint,
        )
        try:
            summary = export_to_path(path, scope)
        except (BundleError, SigningKeyError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Wrote {path}: {summary.agents} agent(s), {summary.pacts} pact document(s), "
            f"{summary.incidents} incident(s), {summary.events} event(s), "
            f"{summary.evidence_files} evidence file(s); signed by key {summary.fingerprint}."
        )
        since = f", with a consistency proof from size {since_checkpoint}"
        since = since if since_checkpoint else ""
        self.stdout.write(
            f"Anchored to the transparency log checkpoint {summary.log_origin} at tree size "
            f"{summary.log_size}{since}."
        )
        self.stdout.write(f"Check it with: python3 verify.py {path.name}  (verify.py is inside)")
