"""`manage.py verify_log`: recompute the transparency log from the events (docs/design.md section
15)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trustdesk.diligence.checkpoints import verify_log


class Command(BaseCommand):
    help = (
        "Recompute the transparency log's Merkle tree from the events and check every stored "
        "leaf, subtree node and signed checkpoint against it. Exit 0 when all hold; otherwise "
        "name the first mismatch of each kind and exit 1."
    )

    def handle(self, *args, **options) -> None:
        summary, problems = verify_log()
        for problem in problems:
            self.stdout.write(problem)
        if problems:
            raise CommandError(f"The transparency log does not hold ({len(problems)} problem(s)).")
        self.stdout.write(summary)
