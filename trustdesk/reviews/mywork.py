"""My work: what waits on the signed-in user (docs/design.md section 13), and its count for the
navigation.

- steps of the open incidents they lead (the next lifecycle step, the containment clock);
- decisions: incidents in review, for those who decide (risk, incident managers);
- attestations asked of them: decisions of incidents where they hold a role, not taken by them,
  that they have not attested;
- action items they own that are open (overdue first);
- reporting obligations unfiled on incidents they lead, or on any incident for those who file
  them (incident managers, risk).

Each list is one query (obligations two); the navigation count is one query.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from trustdesk.core.roles import can
from trustdesk.incidents.clocks import containment_clock
from trustdesk.incidents.gates import STEP_LABELS, current_step
from trustdesk.incidents.models import (
    ActionItem,
    ActionStatus,
    Incident,
    IncidentRole,
    IncidentRoleName,
    State,
)
from trustdesk.incidents.obligations import all_obligations
from trustdesk.incidents.ownership import led_by
from trustdesk.reviews.models import Attestation, RecoveryDecision


def _led_open(user):
    return Incident.objects.open().filter(led_by(user))


def _decisions_waiting(user):
    if not can(user, "decide"):
        return Incident.objects.none()
    return Incident.objects.filter(state=State.IN_REVIEW)


def _attestations_asked(user):
    if not can(user, "attest"):
        return RecoveryDecision.objects.none()
    holds_role = IncidentRole.objects.current().filter(incident=OuterRef("incident"), user=user)
    attested = Attestation.objects.filter(decision=OuterRef("pk"), by=user)
    return (
        RecoveryDecision.objects.filter(Exists(holds_role))
        .exclude(decided_by=user)
        .exclude(Exists(attested))
    )


def _open_actions(user):
    return ActionItem.objects.filter(owner=user, status=ActionStatus.OPEN)


def _count(qs) -> Subquery:
    rows = qs.order_by().annotate(one=Value(1)).values("one").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def my_work_count(user) -> int:
    """How many things wait on the user (led open incidents, decisions, attestations, open
    action items): one query."""
    if not getattr(user, "is_authenticated", False):
        return 0
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            led=_count(_led_open(user)),
            decisions=_count(_decisions_waiting(user)),
            attest=_count(_attestations_asked(user)),
            actions=_count(_open_actions(user)),
        )
        .values("led", "decisions", "attest", "actions")
        .first()
    )
    return sum(row.values()) if row else 0


def my_work(user, *, today: date | None = None) -> dict[str, Any]:
    """Every list of the My work page; six queries whatever the data size."""
    today = today or timezone.now().date()
    led = list(_led_open(user).select_related("agent", "pact_version").order_by("detected_at"))
    for incident in led:
        step = current_step(incident)
        incident.next_step = STEP_LABELS.get(step, "")
        incident.clock = containment_clock(incident)
    decisions = list(
        _decisions_waiting(user).select_related("agent").order_by("review_requested_at")
    )
    attestations = list(
        _attestations_asked(user).select_related("incident", "decided_by").order_by("decided_at")
    )
    actions = list(
        _open_actions(user).select_related("incident").order_by("due", "incident__number", "number")
    )
    for item in actions:
        item.overdue = item.due is not None and item.due < today
    actions.sort(key=lambda i: (not i.overdue, i.due or date.max))
    scope = Incident.objects.filter(
        Q(pk__in=Incident.objects.filter(led_by(user)).values("pk"))
        if not can(user, "file_reports")
        else Q()
    )
    owed = [o for o in all_obligations(scope) if o.filed_at is None]
    return {
        "led": led,
        "decisions": decisions,
        "attestations": attestations,
        "actions": actions,
        "obligations": owed,
        "lead_role": IncidentRoleName.LEAD,
    }
