"""Every main page on a phone (390 x 844) and on a desktop, on the demo data set.

On each page: the document is no wider than the viewport (phone), and axe-core reports no
violation (both widths). The demo data set is seeded once for the module's walk: it has an
incident in every state, decisions with attestations, a live meeting and a buyer link.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from tests.builders import STATES
from tests.pagechecks import DESKTOP, PHONE, axe_path, axe_violations, horizontal_overflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _seed() -> dict[str, str]:
    """Seed the demo data set; return the paths of the pages to walk, by name."""
    from trustdesk.core.demo import DEMO_PASSWORD
    from trustdesk.incidents.models import Incident, State
    from trustdesk.pacts.models import Pact
    from trustdesk.reviews.models import ReviewMeeting

    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    buyer = re.search(r"(/d/[A-Za-z0-9_-]+/)", out.getvalue())
    assert buyer, "seed_demo printed no buyer link"
    assert DEMO_PASSWORD
    pages = {
        "dashboard": "/",
        "incidents": "/incidents/",
        "reviews": "/reviews/",
        "diligence": "/diligence/",
    }
    for state in State.values:
        incident = Incident.objects.filter(state=state).order_by("pk").first()
        if incident is not None:
            pages[f"incident-{state}"] = f"/incidents/{incident.key}/"
    meeting = ReviewMeeting.objects.filter(status="scheduled").order_by("pk").first()
    pages["meeting"] = f"/reviews/meetings/{meeting.pk}/"
    pages["meeting-presenting"] = f"/reviews/meetings/{meeting.pk}/?present=1"
    pact = Pact.objects.order_by("pk").first()
    pages["pact"] = f"/pacts/{pact.key}/"
    pages["buyer"] = buyer.group(1)
    return pages


DUPLICATE_IDS = """() => {
    const seen = new Map();
    for (const el of document.querySelectorAll("[id]")) seen.set(el.id, (seen.get(el.id) || 0) + 1);
    return [...seen].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
}"""

# Buttons and links cut off by the box they sit in (a table wider than its scroll area), and
# table columns squeezed to a word per line.
CLIPPED = """() => {
    const out = [];
    for (const wrap of document.querySelectorAll(".table-wrap")) {
        const box = wrap.getBoundingClientRect();
        for (const el of wrap.querySelectorAll("a, button")) {
            const r = el.getBoundingClientRect();
            if (r.width && r.right > box.right + 1) out.push(`${el.textContent.trim()} clipped`);
        }
    }
    for (const cell of document.querySelectorAll("td.dlg-decision")) {
        if (cell.getBoundingClientRect().width < 200) out.push("decision column under 200 px");
    }
    return out;
}"""


def _log_in(page, base: str) -> None:
    from trustdesk.core.demo import DEMO_PASSWORD

    page.goto(f"{base}/login/")
    page.fill("#id_username", "ivan")  # incident manager and operator: sees every form
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def test_every_main_page_fits_a_phone_and_passes_axe_at_both_widths(
    browser, live_server, screenshot
):
    axe_path()
    pages = _seed()
    lifecycle = [state for state in STATES if state != "closed_not_incident"]
    missing = [s for s in lifecycle if f"incident-{s}" not in pages]
    assert not missing, f"the demo should have an incident in every state; none {missing}"
    problems: list[str] = []
    # One page per URL, checked at the phone width and then resized to the desktop width: half
    # the page loads of two walks. axe is injected as a script tag, which the app's CSP (rightly)
    # refuses, so this context bypasses CSP; the other browser tests run under it.
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    try:
        page = context.new_page()
        _log_in(page, live_server.url)
        for name, path in pages.items():
            page.set_viewport_size(PHONE)
            response = page.goto(live_server.url + path)
            assert response is not None and response.status == 200, (name, path)
            page.wait_for_load_state("load")
            screenshot(page, f"phone-{name}")
            overflow = horizontal_overflow(page)
            if overflow:
                problems.append(f"phone {name}: {overflow}")
            header = page.locator("header.topbar").bounding_box()
            if header and header["height"] > 72:
                problems.append(f"phone {name}: header {header['height']:.0f} px tall")
            if name == "incidents":
                state = page.locator(
                    "table.incident-table td[data-label=State]"
                ).first.bounding_box()
                if not state or state["x"] + state["width"] > PHONE["width"]:
                    problems.append("phone incidents: the State column is out of view")
            duplicates = page.evaluate(DUPLICATE_IDS)
            if duplicates:
                problems.append(f"{name}: duplicate ids {duplicates}")
            problems += [f"phone {name}: axe {v}" for v in axe_violations(page)]

            page.set_viewport_size(DESKTOP)
            page.wait_for_timeout(250)  # the page's resize handler re-marks scroll regions
            screenshot(page, f"desktop-{name}")
            problems += [f"desktop {name}: {p}" for p in page.evaluate(CLIPPED)]
            problems += [f"desktop {name}: axe {v}" for v in axe_violations(page)]
    finally:
        context.close()
    assert not problems, "\n".join(problems)
