"""`manage.py import_incidents FILE` (`-` for stdin): all or nothing, each problem with its path."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from trustdesk.incidents.exchange import ExchangeError, import_document, parse


class Command(BaseCommand):
    help = (
        "Import incidents from a trustdesk.incidents/v1 JSON file (- for stdin). The whole file "
        "is validated first; on any problem every one is printed with its JSON path and nothing "
        "is stored."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", metavar="FILE", help="the exchange file, or - for stdin")

    def handle(self, *args, **options) -> None:
        name = options["file"]
        try:
            if name == "-":
                data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
            else:
                with open(name, "rb") as fh:
                    data = fh.read()
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror}.", returncode=2) from None
        try:
            result = import_document(parse(data))
        except ExchangeError as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{name}: {len(exc.problems)} problem(s); nothing was imported.", returncode=1
            ) from None
        self.stdout.write(
            f"Imported {result.incidents} incident(s) with {result.events} event(s); created "
            f"{result.agents} agent(s), {result.pacts} pact version(s), {result.users} user(s)."
        )
