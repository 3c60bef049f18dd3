"""`manage.py export_pact KEY[@VERSION] [--format json|yaml]`: the canonical document on stdout.

Without @VERSION: the active version, else the latest. JSON output is the exact canonical text
that was hashed (plus a newline), so `sha256sum` of it without the newline is the version's hash.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trustdesk.pacts.document import document_yaml
from trustdesk.pacts.models import Pact, PactVersion, VersionStatus


class Command(BaseCommand):
    help = "Print a pact version's canonical document (default: the active one, else the latest)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("ref", metavar="KEY[@VERSION]")
        parser.add_argument("--format", choices=("json", "yaml"), default="json")

    def handle(self, *args, ref: str, format: str, **options) -> None:
        key, _, number = ref.partition("@")
        pact = Pact.objects.filter(key=key).first()
        if pact is None:
            raise CommandError(f"No pact '{key}'.")
        versions = PactVersion.objects.filter(pact=pact)
        if number:
            if not number.isdigit():
                raise CommandError(f"'{number}' is not a version number (use KEY@3).")
            version = versions.filter(number=int(number)).first()
            if version is None:
                raise CommandError(f"Pact '{key}' has no version {number}.")
        else:
            version = (
                versions.filter(status=VersionStatus.ACTIVE).first()
                or versions.order_by("-number").first()
            )
            if version is None:
                raise CommandError(f"Pact '{key}' has no versions.")
        # JSON: the stored canonical text itself, byte for byte what was hashed.
        text = version.canonical + "\n" if format == "json" else document_yaml(version.document)
        self.stdout.write(text, ending="")
