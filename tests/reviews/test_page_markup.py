"""The incident page's markup for keyboards and screen readers: every id once, every label
naming a field of its own form (the review panel's forms share field names)."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.reviews.helpers import in_review_incident, ready_for_review, repaired_incident

pytestmark = pytest.mark.django_db


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: Counter[str] = Counter()
        self.labels: list[tuple[str, int]] = []  # (for, form number)
        self.fields: dict[str, int] = {}  # id -> form number
        self.form = 0
        self.in_form = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.form += 1
            self.in_form = True
        if "id" in a:
            self.ids[a["id"]] += 1
            if tag in ("input", "select", "textarea") and self.in_form:
                self.fields[a["id"]] = self.form
        if tag == "label" and a.get("for") and self.in_form:
            self.labels.append((a["for"], self.form))

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False


def _parse(html: str) -> _Ids:
    parser = _Ids()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("stage", ["repaired", "in_review"])
def test_the_incident_page_has_each_id_once_and_labels_name_their_own_fields(
    stage, client, make_user
):
    manager = make_user("incident_manager", "operator")
    if stage == "repaired":
        incident = ready_for_review(repaired_incident(by=manager), by=manager)
    else:
        incident = in_review_incident(by=manager)
    client.force_login(manager)
    html = client.get(reverse("incident_detail", args=[incident.key])).content.decode()
    page = _parse(html)
    assert page.form >= 4, "the review panel's forms should be on the page"
    duplicates = {i: n for i, n in page.ids.items() if n > 1}
    assert duplicates == {}
    for target, form in page.labels:
        assert target in page.fields, f"label for {target!r} names no field"
        assert page.fields[target] == form, f"label for {target!r} names another form's field"
    # The two "kind" fields and the versions of each form are told apart by their ids.
    assert "change-kind" in page.ids and "condition-kind" in page.ids
    assert sum(1 for i in page.ids if i.endswith("-version") and not i.startswith("id_")) >= 3


def test_the_review_forms_keep_their_field_names(client, make_user):
    """Only the ids changed: what the views read is what they always read."""
    manager = make_user("incident_manager", "operator")
    incident = repaired_incident(by=manager)
    client.force_login(manager)
    html = client.get(reverse("incident_detail", args=[incident.key])).content.decode()
    assert 'name="kind" id="change-kind"' in html or 'id="change-kind"' in html
    assert 'name="version"' in html
    assert 'name="change-kind"' not in html
