"""`manage.py verify_chain [--incident KEY]`: recompute every event chain from the rows."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trustdesk.incidents.chain import verify_incidents
from trustdesk.incidents.models import Incident


class Command(BaseCommand):
    help = (
        "Recompute every incident's event hash chain from the stored rows. Exit 0 when all hold; "
        "otherwise print the first broken link of each broken incident and exit 1."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--incident", metavar="KEY", help="check only this incident")

    def handle(self, *args, **options) -> None:
        incidents = Incident.objects.all()
        if options["incident"]:
            incidents = incidents.filter(key=options["incident"])
            if not incidents.exists():
                raise CommandError(f"No incident {options['incident']}.", returncode=2)
        checked, events, broken = verify_incidents(incidents)
        for link in broken:
            self.stdout.write(str(link))
        if broken:
            raise CommandError(
                f"{len(broken)} of {checked} incident chain(s) are broken.", returncode=1
            )
        self.stdout.write(f"All {checked} incident chain(s) hold ({events} events).")
