"""The exchange format's checks for the ownership, clock and obligation events and the agent
profile keys (docs/design.md section 13). `exchange.py` calls these; they follow its conventions
(every problem with its JSON path, nothing stored before the whole file is valid).
"""

from __future__ import annotations

import re
from typing import Any

from trustdesk.incidents.models import SINGLE_HOLDER_ROLES, EventType, IncidentRoleName
from trustdesk.pacts.models import Nis2Entity

#: Optional keys of `agents[]` and their defaults (export writes only values that differ).
AGENT_PROFILE_DEFAULTS: dict[str, Any] = {
    "high_risk_ai": False,
    "personal_data": False,
    "nis2": Nis2Entity.NONE.value,
}
CLOSE_REASONS = ("duplicate", "false_positive", "not_a_breach")
ACTION_STATUSES = ("open", "done", "wont_do")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KEY_RE = re.compile(r"^INC-([1-9][0-9]{0,8})$")
USERNAME_RE = re.compile(r"^[\w.@+-]+$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
TIME_HINT = "use UTC ISO 8601 like 2026-11-02T10:00:00Z"

OWNERSHIP_EVENT_TYPES = (
    EventType.ASSIGNED,
    EventType.UNASSIGNED,
    EventType.ACTION_ADDED,
    EventType.ACTION_UPDATED,
    EventType.CLOSED_NOT_INCIDENT,
    EventType.RECLASSIFIED,
    EventType.ASSESSED,
    EventType.REPORT_FILED,
)


def validate_agent_profile(c, agent: dict, path: str) -> None:
    c.typed(agent, "high_risk_ai", path, bool, required=False)
    c.typed(agent, "personal_data", path, bool, required=False)
    c.choice(agent, "nis2", path, Nis2Entity.values, "NIS2 entity", required=False)


def agent_profile_out(agent) -> dict[str, Any]:
    """The profile keys of an exported agent that differ from the defaults."""
    out = {}
    for key, default in AGENT_PROFILE_DEFAULTS.items():
        value = getattr(agent, key)
        if value != default:
            out[key] = value
    return out


def _username(c, data: dict, key: str, path: str, plan, *, required: bool) -> str | None:
    if key not in data or data[key] is None:
        if required:
            c.add(f"{path}.{key}", "missing (a username)")
        return None
    value = data[key]
    if not isinstance(value, str) or not USERNAME_RE.match(value) or len(value) > 150:
        c.add(f"{path}.{key}", f"must be a username, not {value!r}")
        return None
    plan.usernames.add(value)
    return value


def _date(c, data: dict, key: str, path: str) -> None:
    if key not in data or data[key] is None:
        return
    value = data[key]
    if not isinstance(value, str) or not DATE_RE.match(value):
        c.add(f"{path}.{key}", f"must be a date like 2026-11-30 or null, not {value!r}")
        return
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError:
        c.add(f"{path}.{key}", f"{value!r} is not a real date")


def _change_seq(c, data: dict, path: str, events: list, index: int) -> None:
    if "change_seq" not in data or data["change_seq"] is None:
        return
    seq = data["change_seq"]
    target = events[seq - 1] if isinstance(seq, int) and 1 <= seq <= index else None
    if not (isinstance(target, dict) and target.get("type") == EventType.OPERATING_MODEL_CHANGED):
        c.add(
            f"{path}.change_seq",
            f"{seq!r} is not the seq of an earlier operating_model_changed event of this incident",
        )


def _action_fields(c, data: dict, path: str, events: list, index: int, plan) -> None:
    c.typed(data, "ticket", path, str, required=False)
    c.typed(data, "required", path, bool, required=False)
    _username(c, data, "owner", path, plan, required=False)
    _date(c, data, "due", path)
    _change_seq(c, data, path, events, index)


def _hold(c, etype: str, role: str, name: str, path: str, holders: set) -> None:
    """Keep the incident's (role, user) holders as its events go: an `assigned` of lead, comms or
    scribe replaces the holder; an `unassigned` must name a current holder."""
    if etype == EventType.ASSIGNED:
        if role in SINGLE_HOLDER_ROLES:
            holders -= {held for held in holders if held[0] == role}
        holders.add((role, name))
    elif (role, name) in holders:
        holders.discard((role, name))
    else:
        c.add(f"{path}.user", f"'{name}' does not hold the role '{role}' at this point")


def validate_ownership_data(
    c, etype: str, data: dict, path: str, events: list, index: int, plan, state: dict, parse_time
) -> None:
    """Check one new-type event's data. `state` carries what earlier events of the same incident
    established (action numbers, whether a decision was recorded)."""
    from trustdesk.incidents.obligations import rules

    if etype in (EventType.ASSIGNED, EventType.UNASSIGNED):
        role = c.choice(data, "role", path, IncidentRoleName.values, "incident role")
        name = _username(c, data, "user", path, plan, required=True)
        if role is not None and name is not None:
            _hold(c, etype, role, name, path, state.setdefault("holders", set()))
    elif etype == EventType.ACTION_ADDED:
        number = c.typed(data, "action", path, int)
        actions = state.setdefault("actions", set())
        if number is not None:
            if number != len(actions) + 1:
                c.add(f"{path}.action", f"must be {len(actions) + 1} (action items count from 1)")
            actions.add(number)
        c.text(data, "title", path)
        c.choice(data, "status", path, ACTION_STATUSES, "action item status", required=False)
        _action_fields(c, data, path, events, index, plan)
    elif etype == EventType.ACTION_UPDATED:
        number = c.typed(data, "action", path, int)
        if number is not None and number not in state.get("actions", set()):
            c.add(f"{path}.action", f"action item {number} was not added earlier in this incident")
        if "title" in data:
            c.text(data, "title", path)
        status = c.choice(
            data, "status", path, ACTION_STATUSES, "action item status", required=False
        )
        reason = c.typed(data, "reason", path, str, required=False)
        if status == "wont_do" and not (reason or "").strip():
            c.add(f"{path}.reason", "'wont_do' needs a reason")
        _action_fields(c, data, path, events, index, plan)
    elif etype == EventType.CLOSED_NOT_INCIDENT:
        reason = c.choice(data, "reason", path, CLOSE_REASONS, "closing reason")
        c.typed(data, "explanation", path, str)
        dup = data.get("duplicate_of")
        if reason == "duplicate":
            if not isinstance(dup, str) or not KEY_RE.match(dup):
                c.add(f"{path}.duplicate_of", "a duplicate names the incident it duplicates")
            else:
                state.setdefault("duplicates", []).append((f"{path}.duplicate_of", dup))
        elif dup is not None:
            c.add(f"{path}.duplicate_of", "only a duplicate names another incident (use null)")
        if state.get("decided"):
            c.add(f"{path}", "an incident is closed as not an incident only before a decision")
    elif etype == EventType.ASSESSED:
        for flag in rules().flags:
            c.typed(data, flag, path, bool)
        aware = c.typed(data, "aware_at", path, str)
        if aware is not None and parse_time(aware) is None:
            c.add(f"{path}.aware_at", f"bad time '{aware}' ({TIME_HINT})")
        c.typed(data, "note", path, str)
        for extra in data:
            if extra not in (*rules().flags, "aware_at", "note"):
                c.add(f"{path}.{extra}", "unknown key")
    elif etype == EventType.REPORT_FILED:
        regime = c.typed(data, "regime", path, str)
        obligation = c.typed(data, "obligation", path, str)
        names = rules().names
        if regime is not None and obligation is not None and (regime, obligation) not in names:
            known = ", ".join(f"{r}/{o}" for r, o in names)
            c.add(
                f"{path}.obligation", f"unknown obligation {regime}/{obligation} (one of {known})"
            )
        c.text(data, "reference", path)
        sha = c.typed(data, "sha256", path, str)
        if sha is not None and not SHA_RE.match(sha):
            c.add(f"{path}.sha256", "must be 64 lowercase hex digits")
        filed = c.typed(data, "filed_at", path, str)
        if filed is not None and parse_time(filed) is None:
            c.add(f"{path}.filed_at", f"bad time '{filed}' ({TIME_HINT})")
