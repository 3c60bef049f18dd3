"""`manage.py api_token create NAME --scope S [--scope S ...]`, `api_token list`,
`api_token revoke NAME` (docs/design.md section 12).

`create` prints what it made, then the secret alone on its last line, so a script can take it with
`tail -n 1`. Only its SHA-256 is stored: it cannot be shown again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trustdesk.pacts import actions
from trustdesk.pacts.errors import PactError
from trustdesk.pacts.models import ApiToken


class Command(BaseCommand):
    help = (
        "Create, list and revoke API tokens and their scopes (evaluations:write, read, agent:KEY)."
    )

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="create|list|revoke")
        create = sub.add_parser("create", help="Create a token; the secret is the last line.")
        create.add_argument("name", metavar="NAME")
        create.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            required=True,
            metavar="S",
            help="evaluations:write, read or agent:KEY; repeat for several.",
        )
        create.add_argument("--label", default="")
        sub.add_parser("list", help="List every token, live first.")
        revoke = sub.add_parser("revoke", help="Revoke the live token of NAME.")
        revoke.add_argument("name", metavar="NAME")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _create(self, *, name: str, scopes: list[str], label: str, **_options) -> None:
        try:
            token, secret = actions.create_api_token(
                source=name, label=label, scopes=scopes, by=None
            )
        except PactError as exc:
            raise CommandError("\n".join(exc.problems)) from None
        self.stdout.write(f"Created the token '{token.source}' ({token.prefix}…)")
        self.stdout.write(f"Scopes: {' '.join(token.scopes)}")
        self.stdout.write("The secret below is shown once; only its SHA-256 is kept.")
        self.stdout.write(secret)

    def _list(self, **_options) -> None:
        tokens = ApiToken.objects.order_by("revoked_at", "source", "-created_at")
        rows = [("NAME", "TOKEN", "SCOPES", "STATUS", "LAST USED")]
        for t in tokens:
            status = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "live"
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            rows.append((t.source, f"{t.prefix}…", ",".join(t.scopes) or "-", status, used))
        if len(rows) == 1:
            self.stdout.write("No tokens.")
            return
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)] + [row[-1]]
            self.stdout.write("  ".join(cells).rstrip())

    def _revoke(self, *, name: str, **_options) -> None:
        token = ApiToken.objects.live().filter(source=name).first()
        if token is None:
            raise CommandError(f"No live token named '{name}'.")
        try:
            actions.revoke_api_token(token, by=None)
        except PactError as exc:
            raise CommandError("\n".join(exc.problems)) from None
        self.stdout.write(f"Revoked the token '{name}' ({token.prefix}…).")
