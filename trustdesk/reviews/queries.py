"""The reviews pages' reads: each a fixed number of queries whatever the data size.

The views call these and contain no business filters themselves (STYLE.md, Where logic lives).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from trustdesk.incidents.gates import gate_status_many
from trustdesk.incidents.models import CLOSED_STATES, Event, Incident
from trustdesk.reviews.actions import override_reasons
from trustdesk.reviews.conditions import observed_summary
from trustdesk.reviews.models import (
    AgendaItem,
    Attestation,
    ConditionStatus,
    MeetingNote,
    OperatingModelChange,
    RecoveryDecision,
    ReentryCondition,
    ReviewMeeting,
)


def _count(model, **filters) -> Coalesce:
    rows = (
        model.objects.filter(incident=OuterRef("pk"), **filters)
        .order_by()
        .values("incident")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def review_queue(filters: dict[str, Any]) -> QuerySet[Incident]:
    """Incidents on the way to a decision, with their change and condition counts."""
    qs = Incident.objects.select_related("agent").annotate(
        n_changes=_count(OperatingModelChange),
        n_conditions=_count(ReentryCondition),
        n_met=_count(ReentryCondition, status=ConditionStatus.MET),
        n_unmet=_count(ReentryCondition, status=ConditionStatus.UNMET),
        n_unchecked=_count(ReentryCondition, status=ConditionStatus.UNKNOWN),
    )
    state = filters.get("state") or "in_review"
    qs = qs.exclude(state__in=CLOSED_STATES) if state == "open" else qs.filter(state=state)
    if q := (filters.get("q") or "").strip():
        qs = qs.filter(Q(key__iexact=q) | Q(title__icontains=q) | Q(agent__key__icontains=q))
    if agent := filters.get("agent"):
        qs = qs.filter(agent=agent)
    match filters.get("conditions"):
        case "all_met":
            qs = qs.filter(n_conditions__gt=0, n_met=F("n_conditions"))
        case "unmet":
            qs = qs.filter(n_unmet__gt=0)
        case "unchecked":
            qs = qs.filter(n_unchecked__gt=0)
        case "none":
            qs = qs.filter(n_conditions=0)
    return qs.order_by(F("review_requested_at").asc(nulls_last=True), "number")


def recent_decisions(limit: int = 10) -> list[RecoveryDecision]:
    return list(
        RecoveryDecision.objects.select_related("incident__agent", "decided_by", "meeting")
        .annotate(
            n_attestations=Count("attestations"),
            n_explained=Count("attestations", filter=Q(attestations__can_explain=True)),
        )
        .order_by("-decided_at", "-pk")[:limit]
    )


def meetings(filters: dict[str, Any]) -> QuerySet[ReviewMeeting]:
    qs = ReviewMeeting.objects.select_related("facilitator").annotate(
        n_items=Count("items", distinct=True), n_decisions=Count("decisions", distinct=True)
    )
    match filters.get("when"):
        case "upcoming":
            qs = qs.upcoming()
        case "past":
            qs = qs.past()
        case _:
            qs = qs.order_by("-scheduled_at", "-pk")
    if q := (filters.get("q") or "").strip():
        qs = qs.filter(title__icontains=q)
    return qs


def upcoming_and_past(limit: int = 5) -> tuple[list[ReviewMeeting], list[ReviewMeeting]]:
    base = ReviewMeeting.objects.select_related("facilitator").annotate(
        n_items=Count("items", distinct=True), n_decisions=Count("decisions", distinct=True)
    )
    return list(base.upcoming()[:limit]), list(base.past()[:limit])


# ---------------------------------------------------------------- the live meeting page


def meeting_fingerprint(meeting_id: int) -> str:
    """A token that changes whenever anything the meeting page shows changes. One query.

    It combines the latest event of any agenda incident (every step, decision and attestation is
    an event), the latest note, the latest agenda item, the latest condition check and the
    meeting's status. The latest agenda item id leads the token so that a poll can tell which
    agenda items are new to the page that sent it.
    """
    incidents = AgendaItem.objects.filter(meeting_id=meeting_id).values("incident_id")
    row = (
        ReviewMeeting.objects.filter(pk=meeting_id)
        .annotate(
            last_event=Subquery(
                Event.objects.filter(incident_id__in=incidents).order_by("-pk").values("pk")[:1]
            ),
            last_note=Subquery(
                MeetingNote.objects.filter(meeting_id=meeting_id).order_by("-pk").values("pk")[:1]
            ),
            last_item=Subquery(
                AgendaItem.objects.filter(meeting_id=meeting_id).order_by("-pk").values("pk")[:1]
            ),
            last_check=Subquery(
                ReentryCondition.objects.filter(incident_id__in=incidents)
                .order_by(F("checked_at").desc(nulls_last=True))
                .values("checked_at")[:1]
            ),
        )
        .values_list("status", "last_event", "last_note", "last_item", "last_check")
        .first()
    )
    if row is None:
        return ""
    status, last_event, last_note, last_item, last_check = row
    digest = hashlib.sha256(
        f"{status}|{last_event}|{last_note}|{last_item}|{last_check}".encode()
    ).hexdigest()[:16]
    return f"{last_item or 0}-{digest}"


def agenda_items_seen(token: str) -> int | None:
    """The latest agenda item id a token was made with, or None for a token we did not make."""
    head, _, digest = (token or "").partition("-")
    if not head.isdigit() or len(digest) != 16:
        return None
    return int(head)


def meeting_agenda(meeting: ReviewMeeting, *, since_item: int | None = None) -> list[dict]:
    """Each agenda incident with what the meeting screen shows about it.

    Seven queries whatever the agenda's size (the gates of all agenda incidents come from one
    event query).
    `since_item` keeps only the agenda items added after that id.
    """
    items_qs = AgendaItem.objects.filter(meeting=meeting).select_related(
        "incident__agent", "incident__pact_version__pact"
    )
    if since_item is not None:
        items_qs = items_qs.filter(pk__gt=since_item)
    items = list(items_qs.order_by("position", "pk"))
    ids = [item.incident_id for item in items]
    by_incident: dict[int, dict[str, list]] = {i: {"conditions": [], "changes": []} for i in ids}
    for condition in ReentryCondition.objects.filter(incident_id__in=ids).order_by("set_at", "pk"):
        condition.summary = observed_summary(condition.kind, condition.observed)
        by_incident[condition.incident_id]["conditions"].append(condition)
    for change in (
        OperatingModelChange.objects.filter(incident_id__in=ids)
        .select_related("pact_version__pact")
        .order_by("at", "pk")
    ):
        by_incident[change.incident_id]["changes"].append(change)
    decisions = {
        d.incident_id: d
        for d in RecoveryDecision.objects.filter(incident_id__in=ids).select_related(
            "decided_by", "meeting", "event", "agent_held_by"
        )
    }
    attestations: dict[int, list] = {}
    for a in (
        Attestation.objects.filter(decision__incident_id__in=ids)
        .select_related("by")
        .order_by("at", "pk")
    ):
        attestations.setdefault(a.decision_id, []).append(a)
    gates_by_incident = gate_status_many([item.incident for item in items])
    agenda = []
    for item in items:
        incident = item.incident
        gates = [g for g in gates_by_incident[incident.pk] if g.step != "decide"]
        conditions = by_incident[incident.pk]["conditions"]
        decision = decisions.get(incident.pk)
        agenda.append(
            {
                "item": item,
                "incident": incident,
                "gates": gates,
                "conditions": conditions,
                "changes": by_incident[incident.pk]["changes"],
                "decision": decision,
                "attestations": attestations.get(decision.pk, []) if decision else [],
                "blocking": override_reasons(
                    [{"label": g.label, "detail": g.detail, "met": g.met} for g in gates],
                    [{"statement": c.statement, "status": c.status} for c in conditions],
                ),
            }
        )
    return agenda


def meeting_notes(meeting: ReviewMeeting) -> list[MeetingNote]:
    return list(
        MeetingNote.objects.filter(meeting=meeting).select_related("author").order_by("at", "pk")
    )
