"""Who does what by when on an incident, and the honest ways out (docs/design.md section 13).

One function per state change, built from the lifecycle primitives (lock, check, append the
event, update the rows derived from it, side effects on commit):

- `assign_role`: event `assigned` (`role`, `user`);
- `add_action_item`, `update_action_item`: events `action_added`, `action_updated`;
- `close_not_incident`: event `closed_not_incident` (duplicate, false positive, not a breach);
- `reclassify_incident`: event `reclassified` (same data as `classified`).

The `IncidentRole` and `ActionItem` rows are derived from the events by `apply_event`, the one
place that folds these events into rows, used live and by the importer
(`record_imported_ownership`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef

from trustdesk.core.roles import can, user_roles
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.journal import (
    append_event,
    append_step,
    incident_step,
    locked_incident,
    save_fields,
    schedule_metrics_refresh,
    set_agent_scope,
    step_time,
)
from trustdesk.incidents.lifecycle import Classification
from trustdesk.incidents.models import (
    CLOSED_STATES,
    SINGLE_HOLDER_ROLES,
    ActionItem,
    ActionStatus,
    Event,
    EventType,
    Incident,
    IncidentRole,
    IncidentRoleName,
    State,
)
from trustdesk.incidents.transitions import advance
from trustdesk.pacts.models import SCOPE_RANK, Scope

CLOSE_REASONS = {
    "duplicate": "Duplicate",
    "false_positive": "False positive",
    "not_a_breach": "Not a breach",
}
ACTION_FIELDS = ("title", "owner", "due", "status", "reason", "ticket", "change_seq", "required")


def _allowed(by: AbstractBaseUser | None, action: str, what: str) -> list[str]:
    """The problems of a step so far: none when `by` may do `action` (core.roles.PERMISSIONS)."""
    return [] if can(by, action) else [f"You may not {what}."]


# ---------------------------------------------------------------- folding events into rows


def apply_event(inc: Incident, event: Event, users: dict[str, Any] | None = None) -> None:
    """Update the rows an `assigned`, `unassigned`, `action_added` or `action_updated` event
    describes.
    `users` maps usernames to users (the importer's cache); otherwise they are looked up."""
    data = event.data or {}

    def user(name: str | None):
        if not name:
            return None
        if users is not None and name in users:
            return users[name]
        return get_user_model().objects.filter(username=name).first()

    if event.type == EventType.ASSIGNED:
        holder = user(data.get("user"))
        if holder is None:
            return
        role = data.get("role")
        if role in SINGLE_HOLDER_ROLES:
            IncidentRole.objects.current().filter(incident=inc, role=role).update(ended_at=event.at)
        IncidentRole.objects.create(
            incident=inc, role=role, user=holder, assigned_at=event.at, event=event
        )
    elif event.type == EventType.UNASSIGNED:
        IncidentRole.objects.current().filter(
            incident=inc, role=data.get("role"), user__username=data.get("user")
        ).update(ended_at=event.at)
    elif event.type == EventType.ACTION_ADDED:
        ActionItem.objects.create(
            incident=inc,
            number=data["action"],
            title=data.get("title", ""),
            owner=user(data.get("owner")),
            due=date.fromisoformat(data["due"]) if data.get("due") else None,
            status=data.get("status", ActionStatus.OPEN),
            reason=data.get("reason", ""),
            ticket=data.get("ticket", ""),
            change_seq=data.get("change_seq"),
            required=bool(data.get("required", False)),
            added_at=event.at,
            updated_at=event.at,
            late=bool(inc.decided_at and event.at > inc.decided_at),
        )
    elif event.type == EventType.ACTION_UPDATED:
        item = ActionItem.objects.filter(incident=inc, number=data.get("action")).first()
        if item is None:
            return
        for name in ACTION_FIELDS:
            if name not in data:
                continue
            value = data[name]
            if name == "owner":
                item.owner = user(value)
            elif name == "due":
                item.due = date.fromisoformat(value) if value else None
            else:
                setattr(item, name, value if value is not None else "")
        item.updated_at = event.at
        item.save()


def record_imported_ownership(incident: Incident) -> None:
    """Build the role and action-item rows of an imported incident from its events (for the
    importer, inside its transaction, after the events are replayed)."""
    events = Event.objects.filter(
        incident=incident,
        type__in=(
            EventType.ASSIGNED,
            EventType.UNASSIGNED,
            EventType.ACTION_ADDED,
            EventType.ACTION_UPDATED,
        ),
    ).order_by("seq")
    events = list(events)
    names = {
        n
        for ev in events
        for n in ((ev.data or {}).get("user"), (ev.data or {}).get("owner"))
        if isinstance(n, str)
    }
    users = {u.username: u for u in get_user_model().objects.filter(username__in=names)}
    for ev in events:
        apply_event(incident, ev, users)


# ---------------------------------------------------------------- roles


def assign_role(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    role: str,
    user: AbstractBaseUser,
    at: datetime | None = None,
) -> Event:
    """Give `user` a role on the incident (lead, comms and scribe have one holder each; a new
    holder replaces the previous one; responders are as many as needed). Any state."""
    with locked_incident(incident) as inc:
        problems = _allowed(by, "assign_owners", "assign roles on an incident")
        if role not in IncidentRoleName.values:
            problems.append(f"Choose a role: one of {', '.join(IncidentRoleName.values)}.")
        if user is None or not user_roles(user):
            problems.append("Choose a person who works in TrustDesk (someone with a role).")
        elif role in IncidentRoleName.values and _holds(inc, role, user):
            problems.append(
                f"{user.get_username()} is already {IncidentRoleName(role).label.lower()} "
                f"of {inc.key}."
            )
        at = step_time(inc, at, problems)
        GateError.raise_if(problems)
        name = user.get_username()
        data = {"role": role, "user": name}
        event = append_event(inc, type=EventType.ASSIGNED, by=by, data=data, at=at)
        apply_event(inc, event, {name: user})
    return event


def _holds(inc: Incident, role: str, user: AbstractBaseUser) -> bool:
    return IncidentRole.objects.current().filter(incident=inc, role=role, user=user).exists()


def unassign_role(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    role: str,
    user: AbstractBaseUser,
    at: datetime | None = None,
) -> Event:
    """End `user`'s hold of a role on the incident (event `unassigned`: `role`, `user`): a
    responder who went off shift, a lead who hands over before a successor is named. Any state;
    the role's row is kept, with the time it ended."""
    with locked_incident(incident) as inc:
        problems = _allowed(by, "assign_owners", "remove people from roles on an incident")
        if role not in IncidentRoleName.values:
            problems.append(f"Choose a role: one of {', '.join(IncidentRoleName.values)}.")
        elif user is None or not _holds(inc, role, user):
            name = user.get_username() if user is not None else "That person"
            problems.append(
                f"{name} is not {IncidentRoleName(role).label.lower()} of {inc.key} (any more)."
            )
        at = step_time(inc, at, problems)
        GateError.raise_if(problems)
        data = {"role": role, "user": user.get_username()}
        event = append_event(inc, type=EventType.UNASSIGNED, by=by, data=data, at=at)
        apply_event(inc, event)
    return event


def current_roles(incidents: Iterable[Incident]) -> dict[int, dict[str, list]]:
    """{incident id: {role: [users]}} for the current holders, in one query."""
    ids = [i.pk for i in incidents]
    out: dict[int, dict[str, list]] = {pk: {} for pk in ids}
    for row in (
        IncidentRole.objects.current()
        .filter(incident_id__in=ids)
        .select_related("user")
        .order_by("incident_id", "role", "assigned_at", "pk")
    ):
        out[row.incident_id].setdefault(row.role, []).append(row.user)
    return out


def led_by(user) -> Exists:
    """An expression for Incident querysets: the user currently leads the incident."""
    return Exists(
        IncidentRole.objects.current().filter(
            incident=OuterRef("pk"), role=IncidentRoleName.LEAD, user=user
        )
    )


# ---------------------------------------------------------------- action items


def _action_problems(
    inc: Incident,
    *,
    title: str | None,
    owner,
    ticket: str,
    change_seq: int | None,
    status: str | None = None,
    reason: str = "",
) -> list[str]:
    problems: list[str] = []
    if title is not None and not title:
        problems.append("An action item needs a title saying what is to be done.")
    if title and len(title) > 300:
        problems.append("The title is longer than 300 characters.")
    if owner is not None and not user_roles(owner):
        problems.append("The owner must be someone who works in TrustDesk (someone with a role).")
    if status is not None and status not in ActionStatus.values:
        problems.append(f"Choose a status: one of {', '.join(ActionStatus.values)}.")
    if status == ActionStatus.WONT_DO and not reason:
        problems.append("'Won't do' needs a reason.")
    if ticket and not ticket.startswith(("http://", "https://")):
        problems.append("The ticket link must be a web address (http:// or https://).")
    if ticket and len(ticket) > 2000:
        problems.append("The ticket link is longer than 2000 characters.")
    if (
        change_seq is not None
        and not Event.objects.filter(
            incident=inc, seq=change_seq, type=EventType.OPERATING_MODEL_CHANGED
        ).exists()
    ):
        problems.append(f"{inc.key} has no operating-model change at event {change_seq}.")
    return problems


def add_action_item(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    title: str,
    owner: AbstractBaseUser | None = None,
    due: date | None = None,
    ticket: str = "",
    change_seq: int | None = None,
    required: bool = False,
    at: datetime | None = None,
) -> ActionItem:
    """Add a follow-up action (event `action_added`), in any state, the decision included."""
    title = (title or "").strip()
    ticket = (ticket or "").strip()
    with locked_incident(incident) as inc:
        problems = _allowed(by, "keep_actions", "add action items")
        problems += _action_problems(
            inc, title=title, owner=owner, ticket=ticket, change_seq=change_seq
        )
        number = ActionItem.objects.filter(incident=inc).count() + 1
        data: dict[str, Any] = {
            "action": number,
            "title": title,
            "owner": owner.get_username() if owner is not None else None,
            "due": due.isoformat() if due else None,
            "ticket": ticket,
            "change_seq": change_seq,
            "required": bool(required),
        }
        event = append_step(inc, problems, type=EventType.ACTION_ADDED, by=by, data=data, at=at)
        apply_event(inc, event, {owner.get_username(): owner} if owner is not None else {})
        schedule_metrics_refresh(inc)  # re-entry conditions may read action items
    return ActionItem.objects.get(incident=inc, number=number)


_UNSET: Any = object()


def update_action_item(
    item: ActionItem,
    *,
    by: AbstractBaseUser | None,
    title: str | None = None,
    owner: Any = _UNSET,
    due: Any = _UNSET,
    status: str | None = None,
    reason: str = "",
    ticket: str | None = None,
    change_seq: Any = _UNSET,
    required: bool | None = None,
    at: datetime | None = None,
) -> ActionItem:
    """Change an action item (event `action_updated` carrying only what changed). Status is
    open, done, or wont_do with a reason. Nothing changed is refused, not recorded."""
    with locked_incident(item.incident_id) as inc:
        current = ActionItem.objects.select_related("owner").get(pk=item.pk)
        title = title.strip() if title is not None else None
        ticket = ticket.strip() if ticket is not None else None
        reason = (reason or "").strip()
        problems = _allowed(by, "keep_actions", "change action items")
        problems += _action_problems(
            inc,
            title=title,
            owner=owner if owner is not _UNSET else None,
            status=status,
            reason=reason,
            ticket=ticket or "",
            change_seq=change_seq if change_seq is not _UNSET else None,
        )
        changes: dict[str, Any] = {}
        if title is not None and title != current.title:
            changes["title"] = title
        if owner is not _UNSET and owner != current.owner:
            changes["owner"] = owner.get_username() if owner is not None else None
        if due is not _UNSET and due != current.due:
            changes["due"] = due.isoformat() if due else None
        if status is not None and (status != current.status or reason != current.reason):
            changes["status"] = status
            if reason or current.reason or status == ActionStatus.WONT_DO:
                changes["reason"] = reason  # a reason belongs to the status it was given with
        if ticket is not None and ticket != current.ticket:
            changes["ticket"] = ticket
        if change_seq is not _UNSET and change_seq != current.change_seq:
            changes["change_seq"] = change_seq
        if required is not None and bool(required) != current.required:
            changes["required"] = bool(required)
        if not problems and not changes:
            problems.append(f"Action item {current.number} already says that; nothing changed.")
        data = {"action": current.number, **changes}
        event = append_step(inc, problems, type=EventType.ACTION_UPDATED, by=by, data=data, at=at)
        known = {owner.get_username(): owner} if owner not in (_UNSET, None) else {}
        apply_event(inc, event, known)
        schedule_metrics_refresh(inc)
    return ActionItem.objects.get(pk=item.pk)


# ---------------------------------------------------------------- closing what was not one


def holding_incidents(agent, *, besides: Incident | None = None):
    """Open incidents of the agent whose containment reduced its scope (they hold it): the one
    query, Incident.objects.holding."""
    qs = Incident.objects.holding(agent)
    if besides is not None:
        qs = qs.exclude(pk=besides.pk)
    return qs


def close_not_incident(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    expected_version: int | None,
    reason: str,
    explanation: str,
    duplicate_of: Incident | None = None,
    at: datetime | None = None,
) -> Event:
    """Close an incident that was not one (event `closed_not_incident`): by an incident manager,
    from any state before a decision. The agent's scope goes back to full when no other open
    incident holds it (through `set_agent_scope`, a recorded scope change)."""
    explanation = (explanation or "").strip()
    with incident_step(incident, expected_version=expected_version) as inc:
        problems = _allowed(by, "close_not_incident", "close an incident as not an incident")
        if inc.state in CLOSED_STATES:
            problems.append(f"{inc.key} is already closed ({State(inc.state).label.lower()}).")
        elif inc.decided_at is not None:
            problems.append(
                f"{inc.key} has a recovery decision; only an incident without one can be closed "
                "as not an incident."
            )
        if reason not in CLOSE_REASONS:
            problems.append(
                "Choose why it was not an incident: duplicate, false positive or not a breach."
            )
        if reason == "duplicate":
            if duplicate_of is None:
                problems.append("A duplicate names the incident it duplicates.")
            elif duplicate_of.pk == inc.pk:
                problems.append("An incident cannot duplicate itself.")
        elif duplicate_of is not None:
            problems.append("Only a duplicate names another incident.")
        if not explanation:
            problems.append("Explain in a sentence why this was not an incident.")
        data = {
            "reason": reason,
            "duplicate_of": duplicate_of.key if duplicate_of is not None else None,
            "explanation": explanation,
        }
        event = append_step(
            inc, problems, type=EventType.CLOSED_NOT_INCIDENT, by=by, data=data, at=at
        )
        save_fields(inc, advance(inc, event))
        agent = inc.agent
        held = [i.scope_after for i in holding_incidents(agent, besides=inc)]
        # The strictest scope still held by another incident, else full.
        target = max(held, key=SCOPE_RANK.__getitem__, default=Scope.FULL)
        if SCOPE_RANK[target] < SCOPE_RANK[agent.scope]:
            label = CLOSE_REASONS[reason].lower()
            set_agent_scope(
                agent,
                scope=target,
                reason=f"{inc.key} closed as not an incident ({label}); "
                + (
                    "nothing else holds the agent's scope."
                    if target == Scope.FULL
                    else f"other incidents still hold it {target}."
                ),
                incident=inc,
                at=event.at,
            )
    return event


# ---------------------------------------------------------------- reclassification


def reclassification_allowed(inc: Incident) -> str | None:
    """Why a reclassification is not possible now, or None: it needs a classified incident and
    either no decision yet or a classification dispute upheld after the latest class."""
    from trustdesk.pacts.models import Dispute, DisputeStatus

    if inc.classified_at is None:
        return f"{inc.key} is not classified yet; classify it first."
    if inc.state == State.CLOSED_NOT_INCIDENT:
        return f"{inc.key} was closed as not an incident."
    if inc.decided_at is None:
        return None
    last_class = (
        Event.objects.filter(incident=inc, type__in=(EventType.CLASSIFIED, EventType.RECLASSIFIED))
        .order_by("-seq")
        .values_list("at", flat=True)
        .first()
    )
    upheld = Dispute.objects.filter(
        incident=inc, status=DisputeStatus.UPHELD, resolved_at__gte=last_class
    ).exists()
    if not upheld:
        return (
            f"{inc.key} has a recovery decision; its class can only change after a "
            "classification dispute is upheld."
        )
    return None


def reclassify_incident(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    expected_version: int | None,
    assumption: str,
    statement: str,
    clauses: Iterable[Any],
    confidence: str,
    harm_category: str = "",
    secondary: Iterable[str] = (),
    at: datetime | None = None,
) -> Event:
    """Correct the classification (event `reclassified`, the same data as `classified`), by
    risk, before a decision or after an upheld classification dispute. Recurrence, metrics and
    the trust score use the latest class; time to classification keeps the first."""
    proposed = Classification(assumption, statement, clauses, confidence, harm_category, secondary)
    with incident_step(incident, expected_version=expected_version) as inc:
        problems = _allowed(by, "reclassify", "reclassify an incident (risk does)")
        if msg := reclassification_allowed(inc):
            problems.append(msg)
        return proposed.append(inc, problems, type=EventType.RECLASSIFIED, by=by, at=at)
