"""`manage.py verify_bundle IN.zip [--previous OLD.zip]`: the very same checks as the bundle's own
verify.py; with --previous, also that IN's history extends OLD's (transparency log)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trustdesk.diligence import verify


class Command(BaseCommand):
    help = (
        "Check an evidence bundle (a zip or an unzipped folder): every hash, chain link, incident "
        "fact and the signature. Names the first mismatch and exits non-zero."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", metavar="IN.zip")
        parser.add_argument(
            "--expect-key", metavar="FINGERPRINT", help="the instance key you expect"
        )
        parser.add_argument(
            "--previous",
            metavar="OLD.zip",
            help="an earlier bundle of the same instance: check that this one's history extends it",
        )

    def handle(
        self, *args, path: str, expect_key: str | None, previous: str | None = None, **options
    ) -> None:
        try:
            summary = verify.check_bundle(path, expect_key, previous)
        except verify.Unreadable as exc:
            raise CommandError(f"CANNOT READ: {exc}", returncode=2) from exc
        except verify.Mismatch as exc:
            raise CommandError(f"MISMATCH: {exc}") from exc
        self.stdout.write(summary)
