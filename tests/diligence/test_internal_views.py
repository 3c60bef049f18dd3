"""Internal diligence pages: the share-link list, creation (token shown once), revocation,
and the internal bundle of one incident."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from tests.diligence.helpers import SECRET_NOTE, read_zip, recovered_incident
from tests.factories import AgentFactory
from trustdesk.diligence.actions import create_share_link, record_view, revoke_share_link
from trustdesk.diligence.models import ShareLink

pytestmark = pytest.mark.django_db

ROLES = ("operator", "incident_manager", "risk", "viewer")


@pytest.fixture
def link(make_user):
    link, _token = create_share_link(
        by=make_user("incident_manager"), label="Acme", agents=[AgentFactory()]
    )
    return link


@pytest.fixture
def incident():
    return recovered_incident(agent=AgentFactory(key="support-bot"))


def _urls(link, incident):
    return {
        "list": ("get", reverse("diligence"), ROLES),
        "new": ("get", reverse("share_link_new"), ("incident_manager",)),
        "create": ("post", reverse("share_link_new"), ("incident_manager",)),
        "detail": ("get", reverse("share_link_detail", args=[link.pk]), ROLES),
        "revoke": ("post", reverse("share_link_revoke", args=[link.pk]), ("incident_manager",)),
        "bundle": (
            "get",
            reverse("incident_bundle", args=[incident.key]),
            ("incident_manager", "risk", "operator"),
        ),
    }


@pytest.mark.parametrize("name", ["list", "new", "create", "detail", "revoke", "bundle"])
def test_every_internal_view_refuses_the_wrong_roles_and_sends_anonymous_users_to_login(
    client, client_for, link, incident, name
):
    method, url, allowed = _urls(link, incident)[name]
    response = getattr(client, method)(url)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    for role in ROLES:
        response = getattr(client_for(role), method)(url)
        if role in allowed:
            assert response.status_code in (200, 302), (role, response.status_code)
        else:
            assert response.status_code == 403, role
    link.refresh_from_db()


def test_wrong_methods_are_refused(client_for, link, incident):
    manager = client_for("incident_manager")
    assert manager.get(reverse("share_link_revoke", args=[link.pk])).status_code == 405
    assert manager.post(reverse("diligence")).status_code == 405
    assert manager.post(reverse("incident_bundle", args=[incident.key])).status_code == 405
    assert manager.delete(reverse("share_link_new")).status_code == 405


# ------------------------------------------------------------------ create


def _form(agent, **extra):
    return {"label": "Acme procurement", "agents": [agent.pk], "expires_in_days": 14, **extra}


def test_creating_a_link_shows_the_token_once_and_stores_only_its_hash(client_for):
    agent = AgentFactory()
    manager = client_for("incident_manager")
    response = manager.post(reverse("share_link_new"), _form(agent, include_evidence="on"))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert "Copy this link now" in body and "only time the link is shown" in body
    url = re.search(r'value="(http://testserver/d/([A-Za-z0-9_-]{43})/)"', body)
    assert url, body
    token = url.group(2)
    link = ShareLink.objects.get()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (link.label, link.include_evidence, list(link.agents.all())) == (
        "Acme procurement",
        True,
        [agent],
    )
    assert timedelta(days=13, hours=23) < link.expires_at - timezone.now() <= timedelta(days=14)
    for page in (reverse("diligence"), reverse("share_link_detail", args=[link.pk])):
        assert token not in manager.get(page).content.decode()
    assert manager.get(url.group(1)).status_code == 200  # the link works


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"agents": []}, "This field is required."),
        ({"label": ""}, "This field is required."),
        ({"expires_in_days": 91}, "less than or equal to 90"),
        ({"expires_in_days": 0}, "greater than or equal to 1"),
        ({"expires_in_days": "soon"}, "Enter a whole number."),
        ({"incident_keys": "INC-999"}, "No such incident: INC-999."),
        ({"incident_keys": "drop table"}, "Not an incident key: DROP, TABLE"),
        ({"agents": ["not-a-pk"]}, "is not a valid value"),
    ],
)
def test_bad_input_gives_a_message_and_creates_nothing(client_for, change, message):
    agent = AgentFactory()
    response = client_for("incident_manager").post(
        reverse("share_link_new"), {**_form(agent), **change}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ShareLink.objects.exists()


def test_a_chosen_incident_of_another_agent_is_refused(client_for, incident):
    other = AgentFactory()
    response = client_for("incident_manager").post(
        reverse("share_link_new"), _form(other, incident_keys=f"{incident.key.lower()}")
    )
    assert f"{incident.key}: not an incident of the chosen agents." in response.content.decode()
    assert not ShareLink.objects.exists()
    client_for("incident_manager").post(
        reverse("share_link_new"), _form(incident.agent, incident_keys=f" {incident.key}, ")
    )
    assert list(ShareLink.objects.get().incidents.all()) == [incident]


# ------------------------------------------------------------------ list and detail


def test_the_list_shows_status_expiry_views_and_agents(client_for, make_user):
    manager = make_user("incident_manager")
    agent = AgentFactory(name="Support Bot")
    active, _ = create_share_link(by=manager, label="Active one", agents=[agent])
    revoked, _ = create_share_link(by=manager, label="Revoked one", agents=[agent])
    revoke_share_link(revoked, by=manager)
    expired, _ = create_share_link(by=manager, label="Expired one", agents=[agent])
    ShareLink.objects.filter(pk=expired.pk).update(
        created_at=timezone.now() - timedelta(days=20),
        expires_at=timezone.now() - timedelta(days=1),
    )
    for _ in range(3):
        record_view(active, ip="1.2.3.4", user_agent="x", what="page")
    body = client_for("viewer").get(reverse("diligence")).content.decode()
    for label, status in (
        ("Active one", "active"),
        ("Revoked one", "revoked"),
        ("Expired one", "expired"),
    ):
        row = re.search(rf"{label}</a></td>(.*?)</tr>", body, re.S).group(1)
        assert f">{status}</span>" in row
        assert "Support Bot" in row
    active_row = re.search(r"Active one</a></td>(.*?)</tr>", body, re.S).group(1)
    assert '<td class="num">3</td>' in active_row
    assert active.expires_at.strftime("%Y-%m-%d %H:%M") in active_row
    assert "Revoke</button>" not in active_row  # a viewer cannot revoke
    assert "Create a share link" not in body


def test_only_managers_see_the_revoke_and_create_buttons(client_for, link):
    body = client_for("viewer").get(reverse("diligence")).content.decode()
    assert "Revoke</button>" not in body and "Create a share link" not in body
    body = client_for("incident_manager").get(reverse("diligence")).content.decode()
    assert "Revoke</button>" in body and "Create a share link" in body


def test_search_and_status_filters(client_for, make_user):
    manager = make_user("incident_manager")
    a = AgentFactory(key="claims-bot", name="Claims Bot")
    b = AgentFactory(key="support-bot", name="Support Bot")
    create_share_link(by=manager, label="Northwind", agents=[a])
    gone, _ = create_share_link(by=manager, label="Contoso", agents=[b])
    revoke_share_link(gone, by=manager)
    viewer = client_for("viewer")

    def labels(**params):
        body = viewer.get(reverse("diligence"), params).content.decode()
        return sorted(re.findall(r'href="/diligence/links/\d+/">([^<]+)</a>', body))

    assert labels() == ["Contoso", "Northwind"]
    assert labels(q="north") == ["Northwind"]
    assert labels(q="support") == ["Contoso"]  # by agent
    assert labels(status="revoked") == ["Contoso"]
    assert labels(status="active") == ["Northwind"]
    assert labels(status="expired") == []
    body = viewer.get(reverse("diligence"), {"q": "nothing-like-it"}).content.decode()
    assert "No share link matches" in body
    body = viewer.get(reverse("diligence"), {"status": "bogus", "page": "x"}).content.decode()
    assert "Select a valid choice" in body and "Northwind" in body


def test_the_empty_list_explains_what_links_are(client_for):
    body = client_for("incident_manager").get(reverse("diligence")).content.decode()
    assert "No share links yet" in body


def test_the_list_runs_a_fixed_number_of_queries(
    client_for, make_user, django_assert_max_num_queries
):
    manager = make_user("incident_manager")
    agents = [AgentFactory() for _ in range(3)]
    viewer = client_for("viewer")
    for n in range(30):
        link, _ = create_share_link(by=manager, label=f"Link {n}", agents=agents)
        record_view(link, ip="1.1.1.1", user_agent="x", what="page")
    with django_assert_max_num_queries(8):
        response = viewer.get(reverse("diligence"))
    assert response.status_code == 200
    assert "1–25 of 30" in response.content.decode()
    page2 = viewer.get(reverse("diligence"), {"page": 2}).content.decode()
    assert "26–30 of 30" in page2


def test_htmx_filtering_gets_only_the_list_fragment(client_for, link):
    response = client_for("viewer").get(reverse("diligence"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "Acme" in body and "<html" not in body and "page-header" not in body


def test_the_detail_page_lists_every_visit(client_for, link):
    record_view(link, ip="9.9.9.9", user_agent="BuyerBrowser/1.0", what="bundle")
    body = client_for("risk").get(reverse("share_link_detail", args=[link.pk])).content.decode()
    assert "BuyerBrowser/1.0" in body and "bundle" in body and "9.9.9.9" not in body
    assert client_for("risk").get(reverse("share_link_detail", args=[999999])).status_code == 404


# ------------------------------------------------------------------ revoke


def test_revoking_from_the_page_ends_the_link(client_for):
    agent = AgentFactory()
    manager = client_for("incident_manager")
    body = manager.post(reverse("share_link_new"), _form(agent)).content.decode()
    url = re.search(r'value="http://testserver(/d/[^"]+)"', body).group(1)
    link = ShareLink.objects.get()
    response = manager.post(reverse("share_link_revoke", args=[link.pk]), follow=True)
    assert "is revoked" in response.content.decode()
    link.refresh_from_db()
    assert link.revoked_at is not None and link.revoked_by == manager.user
    assert manager.get(url).status_code == 410
    again = manager.post(reverse("share_link_revoke", args=[link.pk]), follow=True)
    assert "already revoked" in again.content.decode()


def test_revoking_with_htmx_swaps_the_row(client_for, link):
    response = client_for("incident_manager").post(
        reverse("share_link_revoke", args=[link.pk]), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert body.strip().startswith(f'<tr id="link-{link.pk}">')
    assert ">revoked</span>" in body and "Revoke</button>" not in body


def test_revoking_an_unknown_link_is_a_404(client_for):
    response = client_for("incident_manager").post(reverse("share_link_revoke", args=[424242]))
    assert response.status_code == 404


# ------------------------------------------------------------------ internal bundle


def test_the_internal_bundle_of_one_incident_verifies_and_keeps_internal_notes(
    client_for, incident, tmp_path
):
    other = recovered_incident(agent=incident.agent)
    response = client_for("operator").get(reverse("incident_bundle", args=[incident.key]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f'filename="{incident.key}-evidence-bundle.zip"' in response["Content-Disposition"]
    path = tmp_path / "b.zip"
    path.write_bytes(b"".join(response.streaming_content))
    files = read_zip(path)
    assert SECRET_NOTE.encode() in files["manifest.json"]
    assert other.key.encode() not in files["manifest.json"]
    out = io.StringIO()
    call_command("verify_bundle", str(path), stdout=out)
    assert out.getvalue().startswith("OK")


def test_the_internal_bundle_of_an_unknown_incident_is_a_404(client_for):
    assert client_for("risk").get(reverse("incident_bundle", args=["INC-404"])).status_code == 404


def test_the_incident_page_seam_offers_the_bundle_to_the_roles_that_may_take_it(incident):
    for roles, shown in (
        ({"operator"}, True),
        ({"risk"}, True),
        ({"incident_manager"}, True),
        ({"viewer"}, False),
    ):
        html = render_to_string(
            "diligence/_incident_links.html", {"incident": incident, "user_roles": roles}
        )
        assert ("Download evidence bundle" in html) is shown
        if shown:
            assert f'href="/incidents/{incident.key}/bundle.zip"' in html


def test_the_incident_page_carries_the_bundle_link_for_the_right_roles(client_for, incident):
    url = reverse("incident_detail", args=[incident.key])
    link = f'href="/incidents/{incident.key}/bundle.zip"'
    assert link in client_for("operator").get(url).content.decode()
    assert link not in client_for("viewer").get(url).content.decode()
