import io
import re

import pytest

from tests.factories import AgentFactory
from trustdesk.core import demo as core_demo
from trustdesk.diligence import demo
from trustdesk.diligence.models import ShareLink, token_hash

pytestmark = pytest.mark.django_db


def test_the_seed_makes_one_link_prints_its_url_once_and_is_idempotent(client):
    core_demo.seed(io.StringIO())  # the demo users (ivan is the incident manager)
    AgentFactory(key="support-bot")
    first = io.StringIO()
    demo.seed(first)
    match = re.search(r"http://127\.0\.0\.1:8000(/d/([A-Za-z0-9_-]{43})/)", first.getvalue())
    assert match, first.getvalue()
    link = ShareLink.objects.get(label=demo.DEMO_LABEL)
    assert link.token_hash == token_hash(match.group(2))
    assert [a.key for a in link.agents.all()] == ["support-bot"]
    assert link.is_active and link.created_by.username == "ivan"
    assert client.get(match.group(1)).status_code == 200
    second = io.StringIO()
    demo.seed(second)
    assert "/d/" not in second.getvalue()
    assert ShareLink.objects.count() == 1


def test_without_the_demo_agent_the_seed_says_so_and_makes_nothing():
    out = io.StringIO()
    demo.seed(out)
    assert "skipped" in out.getvalue()
    assert not ShareLink.objects.exists()
