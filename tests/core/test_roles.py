"""The one permission table (core.roles.PERMISSIONS): views, templates and actions read it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.urls import get_resolver

from tests.factories import make_incident
from trustdesk.core.roles import PERMISSIONS, ROLES, can, roles_for
from trustdesk.incidents import lifecycle
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.models import Event, Incident

pytestmark = pytest.mark.django_db


def test_every_action_names_known_roles_and_an_unknown_action_is_a_bug():
    for action, roles in PERMISSIONS.items():
        assert roles and set(roles) <= set(ROLES), action
    with pytest.raises(KeyError, match="no permission named 'overide'"):
        roles_for("overide")


def test_the_system_may_act_and_a_visitor_may_not(make_user):
    assert can(None, "override")
    assert not can(AnonymousUser(), "read")
    assert can(make_user("incident_manager"), "override")
    assert not can(make_user("risk"), "override")
    assert not can(make_user("viewer"), "work_incidents")


def test_templates_ask_the_same_table(make_user):
    page = Template('{% load roles %}{% if user|can:"override" %}yes{% else %}no{% endif %}')
    assert page.render(Context({"user": make_user("incident_manager")})) == "yes"
    assert page.render(Context({"user": make_user("operator")})) == "no"
    assert page.render(Context({"user": AnonymousUser()})) == "no"


def test_views_declared_by_permission_carry_exactly_its_roles():
    checked = 0
    for pattern in _patterns(get_resolver().url_patterns):
        action = getattr(pattern.callback, "permission", None)
        if action is not None:
            assert set(pattern.callback.required_roles) == set(roles_for(action)), pattern.name
            checked += 1
    assert checked > 40


def test_a_lifecycle_step_refuses_a_role_that_may_not_work_incidents_and_changes_nothing(
    make_user,
):
    incident = make_incident(by=make_user("operator"))
    before = (Event.objects.count(), incident.version)
    with pytest.raises(GateError, match="operator or incident manager role may contain"):
        lifecycle.contain_incident(
            incident,
            by=make_user("viewer"),
            expected_version=incident.version,
            action="suspend",
            scope_after="suspended",
        )
    assert (Event.objects.count(), Incident.objects.get(pk=incident.pk).version) == before
    # The system (a command, a task) is not a person and passes the role check.
    lifecycle.contain_incident(
        incident, by=None, expected_version=None, action="suspend", scope_after="suspended"
    )
    assert Incident.objects.get(pk=incident.pk).state == "contained"


def _patterns(patterns):
    from django.urls import URLPattern, URLResolver

    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _patterns(p.url_patterns)
        elif isinstance(p, URLPattern):
            yield p
