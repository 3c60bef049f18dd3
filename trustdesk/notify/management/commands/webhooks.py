"""`manage.py webhooks add URL --events TYPE[,TYPE] [--secret whsec_...]`, `webhooks list`,
`webhooks disable ID` (docs/design.md section 12).

`add` prints the subscription's secret alone on its last line (generated when not given), so a
script can take it with `tail -n 1`. Bad input prints every problem and stores nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trustdesk.notify import actions
from trustdesk.notify.models import MessageStatus, WebhookSubscription


class Command(BaseCommand):
    help = "Manage webhook subscriptions: add, list, disable."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="add|list|disable")
        add = sub.add_parser("add", help="subscribe a URL to event types")
        add.add_argument("url", metavar="URL")
        add.add_argument("--events", required=True, metavar="TYPE[,TYPE]")
        add.add_argument("--secret", default=None, metavar="whsec_...")
        add.add_argument("--description", default="")
        sub.add_parser("list", help="every subscription with its state")
        disable = sub.add_parser("disable", help="stop sending to a subscription (kept)")
        disable.add_argument("id", metavar="ID")
        disable.add_argument("--reason", default="")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _add(self, *, url: str, events: str, secret: str | None, description: str, **_) -> None:
        try:
            sub, secret = actions.add_webhook(
                url=url, events=events, secret=secret, description=description, by=None
            )
        except actions.NotifyError as exc:
            raise CommandError("\n".join(exc.problems)) from exc
        self.stdout.write(f"Webhook #{sub.pk} {sub.url}: {', '.join(sub.event_types)}")
        self.stdout.write(secret)

    def _list(self, **_) -> None:
        subs = WebhookSubscription.objects.order_by("pk")
        if not subs:
            self.stdout.write("No webhook subscriptions.")
            return
        for sub in subs:
            state = "enabled" if sub.enabled else "disabled"
            failing = (
                f", failing since {sub.failing_since:%Y-%m-%dT%H:%M:%SZ}"
                if sub.failing_since
                else ""
            )
            pending = sub.messages.filter(status=MessageStatus.PENDING).count()
            failed = sub.messages.filter(status=MessageStatus.FAILED).count()
            self.stdout.write(
                f"{sub.pk}\t{state}{failing}\t{sub.url}\t{','.join(sub.event_types)}\t"
                f"pending {pending}, failed {failed}"
            )

    def _disable(self, *, id: str, reason: str, **_) -> None:
        if not id.isdigit():
            raise CommandError(f"ID must be a subscription number (see `webhooks list`): {id!r}")
        sub = WebhookSubscription.objects.filter(pk=int(id)).first()
        if sub is None:
            raise CommandError(f"No webhook subscription #{id} (see `webhooks list`).")
        try:
            actions.disable_target(sub, by=None, reason=reason)
        except actions.NotifyError as exc:
            raise CommandError("\n".join(exc.problems)) from exc
        self.stdout.write(f"Webhook #{sub.pk} disabled.")
