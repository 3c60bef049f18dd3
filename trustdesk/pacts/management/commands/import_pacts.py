"""`manage.py import_pacts FILE...`: YAML or JSON pact documents, all or nothing (docs/design.md
section 7).

Every problem is printed with its file and path; then the command exits non-zero and nothing is
stored, not even the agents it would have created.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from trustdesk.pacts.actions import import_pact_documents
from trustdesk.pacts.document import parse_documents, validate_document
from trustdesk.pacts.errors import PactError


class Command(BaseCommand):
    help = "Import pact documents (YAML or JSON; '-' reads stdin). All or nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument(
            "--draft",
            action="store_true",
            help="store new versions as drafts instead of activating them",
        )

    def handle(self, *args, files: list[str], draft: bool, **options) -> None:
        problems: list[str] = []
        docs: list = []
        labels: list[str] = []
        for name in files:
            try:
                data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            except OSError as exc:
                problems.append(f"{name}: cannot be read ({exc.strerror or exc})")
                continue
            try:
                parsed = parse_documents(data, filename=None if name == "-" else name)
            except PactError as exc:
                problems.extend(f"{name}: {p}" for p in exc.problems)
                continue
            for index, doc in enumerate(parsed, start=1):
                label = f"{name}: document {index}" if len(parsed) > 1 else name
                # Validate every file before importing any, so one run reports every problem.
                problems.extend(f"{label}: {p}" for p in validate_document(doc))
                docs.append(doc)
                labels.append(label)
        if not problems:
            try:
                versions = import_pact_documents(docs, by=None, activate=not draft, labels=labels)
            except PactError as exc:
                problems.extend(exc.problems)
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{len(problems)} problem{'s' if len(problems) != 1 else ''}; nothing was imported."
            )
        for version in versions:
            self.stdout.write(f"{version.label} {version.status} sha256:{version.sha256}")
