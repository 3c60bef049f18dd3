"""Demo data: one active share link for support-bot. Idempotent.

The token exists only when the link is made, so the buyer URL is printed only by the run that
creates the link; later runs find the active demo link and change nothing.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from trustdesk.diligence.actions import create_share_link
from trustdesk.diligence.models import ShareLink
from trustdesk.pacts.models import Agent

DEMO_LABEL = "Demo: Northwind Procurement diligence"
DEMO_AGENT = "support-bot"
DEMO_MANAGER = "ivan"
DEMO_BASE_URL = "http://127.0.0.1:8000"


def seed(stdout) -> None:
    if ShareLink.objects.active().filter(label=DEMO_LABEL).exists():
        return
    agent = Agent.objects.filter(key=DEMO_AGENT).first()
    manager = get_user_model().objects.filter(username=DEMO_MANAGER).first()
    if agent is None or manager is None:
        stdout.write(
            f"Diligence demo skipped: needs the agent {DEMO_AGENT} and the user {DEMO_MANAGER}."
        )
        return
    link, token = create_share_link(
        by=manager, label=DEMO_LABEL, agents=[agent], include_evidence=True
    )
    stdout.write(
        f"Demo buyer link for {agent.key} (shown once, expires {link.expires_at:%Y-%m-%d}):\n"
        f"  {DEMO_BASE_URL}/d/{token}/"
    )
