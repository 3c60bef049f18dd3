"""The demo seed: every state this issue reaches, with evidence files, idempotent."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from django.utils import timezone

from tests.factories import AgentFactory, make_pact_version
from trustdesk.incidents import demo
from trustdesk.incidents.chain import verify_incidents
from trustdesk.incidents.models import Event, Evidence, Incident

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


@pytest.fixture
def demo_pacts():
    for agent_key, pact_key in demo.AGENT_PACTS.items():
        make_pact_version(agent=AgentFactory(key=agent_key), pact_key=pact_key)


def test_the_seed_builds_every_state_with_evidence_and_is_idempotent(demo_pacts, settings):
    out = io.StringIO()
    demo.seed(out)
    assert "seeded 13 demo incidents" in out.getvalue()
    states = Counter(Incident.objects.values_list("state", flat=True))
    assert set(states) == set(demo.ORDER)
    assert states["repaired"] >= 4
    assert len({i.agent_id for i in Incident.objects.all()}) == 4
    oldest = Incident.objects.order_by("detected_at").first().detected_at
    assert timezone.now() - oldest > timezone.timedelta(weeks=9)
    assert Event.objects.filter(at__gt=timezone.now()).count() == 0
    assert verify_incidents(Incident.objects.all())[2] == []
    files = [e for e in Evidence.objects.all() if e.storage_path]
    assert files and all((Path(settings.MEDIA_ROOT) / e.storage_path).exists() for e in files)
    gaps = Incident.objects.filter(evidence_completeness__lt=1)
    assert gaps.exists()
    before = (Incident.objects.count(), Event.objects.count(), Evidence.objects.count())
    again = io.StringIO()
    demo.seed(again)
    assert "already present" in again.getvalue()
    assert (Incident.objects.count(), Event.objects.count(), Evidence.objects.count()) == before


def test_without_the_demo_agents_nothing_is_seeded():
    out = io.StringIO()
    demo.seed(out)
    assert "no demo agents" in out.getvalue() and not Incident.objects.exists()
