"""Regulatory obligations of an incident: assessments, deadlines, filings (docs/design.md section
13).

The rules (which regime applies when, and in how long) live in `obligations.json` beside this
module, read here and nowhere else. What an incident owes is computed from its events:

- an `assessed` event records the flags of an assessment and when the organisation became aware
  (`aware_at`); the LATEST assessment decides which obligations apply (with the agent's profile:
  `high_risk_ai`, `personal_data`, `nis2`);
- each obligation's clock starts at the `aware_at` of the FIRST assessment that made it apply,
  and its deadline is that time plus the period the latest assessment selects (days are 24 h);
- a `report_filed` event (`regime`, `obligation`, `reference`, `sha256`, `filed_at`) fulfils one;
  the first filing of an obligation is the one that counts.

Status at a time T: `filed` (filed_at <= deadline), `filed_late`, `overdue` (unfiled, T >
deadline), `due_soon` (unfiled, deadline - T <= 24 h), else `open`. A filing is judged by its
`filed_at` whatever T is: T only moves the clock of what is unfiled.

The two state changes (`assess_incident`, `file_report`) live here, beside the rules they check;
the repair gate of Article 73(6) is `repair_blockers`, called by `lifecycle.record_repair`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.dateparse import parse_duration

from trustdesk.core.canonical import format_time
from trustdesk.core.effects import publish
from trustdesk.core.roles import can
from trustdesk.incidents.journal import append_step, locked_incident, schedule_metrics_refresh
from trustdesk.incidents.models import Event, EventType, Incident

RULES_FILE = Path(__file__).with_name("obligations.json")
STATUSES = ("filed", "filed_late", "overdue", "due_soon", "open")
SHA_LENGTH = 64


def _duration(text: str) -> timedelta:
    """An ISO 8601 duration in days, hours, minutes and seconds (P2D, PT72H, P30DT72H)."""
    value = parse_duration(text) if isinstance(text, str) and text.startswith("P") else None
    if value is None or value <= timedelta(0):
        raise ValueError(f"{text!r} is not a positive ISO 8601 duration like P2D or PT72H")
    return value


@dataclass(frozen=True)
class Rule:
    regime: str
    obligation: str
    title: str
    authority: str
    profile: dict[str, tuple]
    when: str
    periods: tuple[tuple[tuple[str, ...], timedelta], ...]
    blocks_repair: bool

    def applies(self, profile: dict[str, Any], flags: dict[str, Any]) -> bool:
        return bool(flags.get(self.when)) and all(
            profile.get(key) in allowed for key, allowed in self.profile.items()
        )

    def period(self, flags: dict[str, Any]) -> timedelta:
        for if_any, period in self.periods:
            if not if_any or any(flags.get(flag) for flag in if_any):
                return period
        raise ValueError(f"{self.regime}/{self.obligation}: no period matches")  # file checked


@dataclass(frozen=True)
class Rules:
    flags: tuple[str, ...]
    due_soon_within: timedelta
    obligations: tuple[Rule, ...]

    def get(self, regime: str, obligation: str) -> Rule | None:
        return next(
            (r for r in self.obligations if (r.regime, r.obligation) == (regime, obligation)),
            None,
        )

    @property
    def names(self) -> list[tuple[str, str]]:
        return [(r.regime, r.obligation) for r in self.obligations]


@cache
def rules() -> Rules:
    """The rules of obligations.json, checked once per process."""
    raw = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    flags = tuple(raw["assessment_flags"])
    out = []
    for item in raw["obligations"]:
        periods = []
        for entry in item["periods"]:
            unknown = set(entry.get("if_any", ())) - set(flags)
            if unknown:
                raise ValueError(f"{RULES_FILE.name}: unknown flags {sorted(unknown)}")
            periods.append((tuple(entry.get("if_any", ())), _duration(entry["period"])))
        if periods[-1][0]:
            raise ValueError(f"{RULES_FILE.name}: the last period of each rule has no condition")
        if item["when"] not in flags:
            raise ValueError(f"{RULES_FILE.name}: unknown flag {item['when']!r}")
        out.append(
            Rule(
                regime=item["regime"],
                obligation=item["obligation"],
                title=item["title"],
                authority=item["authority"],
                profile={k: tuple(v) for k, v in item["profile"].items()},
                when=item["when"],
                periods=tuple(periods),
                blocks_repair=bool(item.get("blocks_repair")),
            )
        )
    return Rules(flags, _duration(raw["due_soon_within"]), tuple(out))


def agent_profile(agent) -> dict[str, Any]:
    return {
        "high_risk_ai": agent.high_risk_ai,
        "personal_data": agent.personal_data,
        "nis2": agent.nis2,
    }


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def status_at(deadline: datetime, filed_at: datetime | None, at: datetime) -> str:
    if filed_at is not None:
        return "filed" if filed_at <= deadline else "filed_late"
    if at > deadline:
        return "overdue"
    if deadline - at <= rules().due_soon_within:
        return "due_soon"
    return "open"


@dataclass(frozen=True)
class Obligation:
    incident: str
    agent: str
    regime: str
    obligation: str
    aware_at: datetime
    deadline: datetime
    filed_at: datetime | None
    reference: str
    title: str
    authority: str
    blocks_repair: bool

    def status(self, at: datetime | None = None) -> str:
        return status_at(self.deadline, self.filed_at, at or timezone.now())

    def remaining(self, at: datetime | None = None) -> timedelta:
        """Time left to the deadline (negative once past)."""
        return self.deadline - (at or timezone.now())

    def as_json(self, at: datetime | None = None) -> dict[str, Any]:
        """The shape of `manage.py obligations --json` (docs/design.md section 13)."""
        return {
            "incident": self.incident,
            "agent": self.agent,
            "regime": self.regime,
            "obligation": self.obligation,
            "aware_at": format_time(self.aware_at),
            "deadline": format_time(self.deadline),
            "status": self.status(at),
            "filed_at": format_time(self.filed_at) if self.filed_at else None,
        }

    @property
    def sort_key(self) -> tuple:
        # Keys are INC-<n>: by their number, so INC-2 comes before INC-10.
        number = self.incident.removeprefix("INC-")
        return (
            self.deadline,
            int(number) if number.isdigit() else 0,
            self.incident,
            self.obligation,
            self.regime,
        )


def obligations_from_events(
    incident_key: str, agent_key: str, profile: dict[str, Any], events: Iterable[Any]
) -> list[Obligation]:
    """What one incident owes, from its `assessed` and `report_filed` events in seq order
    (Event objects or dicts with "type" and "data")."""
    table = rules()
    started: dict[tuple[str, str], datetime] = {}
    latest: dict[str, Any] | None = None
    filings: dict[tuple[str, str], dict[str, Any]] = {}
    for ev in events:
        etype, data = (ev["type"], ev["data"]) if isinstance(ev, dict) else (ev.type, ev.data)
        if etype == EventType.ASSESSED:
            latest = data
            aware_at = _time(data.get("aware_at"))
            for rule in table.obligations:
                name = (rule.regime, rule.obligation)
                if name not in started and aware_at and rule.applies(profile, data):
                    started[name] = aware_at
        elif etype == EventType.REPORT_FILED:
            filings.setdefault((data.get("regime"), data.get("obligation")), data)
    if latest is None:
        return []
    out = []
    for rule in table.obligations:
        name = (rule.regime, rule.obligation)
        if not rule.applies(profile, latest) or name not in started:
            continue
        filing = filings.get(name)
        out.append(
            Obligation(
                incident=incident_key,
                agent=agent_key,
                regime=rule.regime,
                obligation=rule.obligation,
                aware_at=started[name],
                deadline=started[name] + rule.period(latest),
                filed_at=_time(filing.get("filed_at")) if filing else None,
                reference=(filing or {}).get("reference", ""),
                title=rule.title,
                authority=rule.authority,
                blocks_repair=rule.blocks_repair,
            )
        )
    return sorted(out, key=lambda o: o.sort_key)


OBLIGATION_EVENT_TYPES = (EventType.ASSESSED, EventType.REPORT_FILED)


def obligations_for(incident: Incident, events: Iterable[Any] | None = None) -> list[Obligation]:
    """One incident's obligations (one query, none when its events are given)."""
    if events is None:
        events = Event.objects.filter(
            incident_id=incident.pk, type__in=OBLIGATION_EVENT_TYPES
        ).order_by("seq")
    return obligations_from_events(
        incident.key, incident.agent.key, agent_profile(incident.agent), events
    )


def obligations_by_incident(incidents: Iterable[Incident]) -> dict[int, list[Obligation]]:
    """Obligations of several incidents (load `agent` with them) in one query."""
    incidents = list(incidents)
    rows: dict[int, list[dict]] = {i.pk: [] for i in incidents}
    if rows:
        for row in (
            Event.objects.filter(incident_id__in=list(rows), type__in=OBLIGATION_EVENT_TYPES)
            .order_by("incident_id", "seq")
            .values("incident_id", "type", "data")
        ):
            rows[row["incident_id"]].append(row)
    return {
        i.pk: obligations_from_events(i.key, i.agent.key, agent_profile(i.agent), rows[i.pk])
        for i in incidents
    }


def all_obligations(incidents=None) -> list[Obligation]:
    """Every obligation of the given incidents (a queryset; default: every incident that was
    ever assessed), sorted by deadline, incident number, obligation. Two queries."""
    qs = incidents if incidents is not None else Incident.objects.all()
    assessed = Event.objects.filter(type=EventType.ASSESSED).values("incident_id")
    qs = qs.filter(pk__in=assessed).select_related("agent").order_by()
    found = [o for items in obligations_by_incident(qs).values() for o in items]
    return sorted(found, key=lambda o: o.sort_key)


def repair_blockers(incident: Incident) -> list[Obligation]:
    """Unfiled obligations that forbid altering the system before the authority is informed
    (EU AI Act Article 73(6))."""
    return [o for o in obligations_for(incident) if o.blocks_repair and o.filed_at is None]


# ---------------------------------------------------------------- state changes


def _flag_label(flag: str) -> str:
    return flag.replace("_", " ")


def _past_time(value: Any, problems: list[str], *, missing: str, future: str) -> str | None:
    """A time given for a step (UTC, not in the future) as the event records it; `missing` or
    `future` is appended to `problems` when it is not one."""
    if not isinstance(value, datetime) or timezone.is_naive(value):
        problems.append(missing)
        return None
    if value > timezone.now() + timedelta(seconds=5):
        problems.append(future)
    return format_time(value)


def assess_incident(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    expected_version: int | None = None,
    flags: dict[str, bool],
    aware_at: datetime,
    note: str = "",
    at: datetime | None = None,
) -> Event:
    """Record an assessment (event `assessed`), in any state, by an incident manager or risk
    (`by=None` is the system). Its flags replace the previous assessment's; `aware_at` is when
    the organisation became aware and may not be in the future."""
    note = (note or "").strip()
    table = rules()
    with locked_incident(incident, expected_version=expected_version) as inc:
        problems: list[str] = []
        if by is not None and not can(by, "assess_obligations"):
            problems.append("Only an incident manager or risk may record an assessment.")
        unknown = sorted(set(flags) - set(table.flags))
        if unknown:
            problems.append(f"Unknown assessment flags: {', '.join(unknown)}.")
        aware = _past_time(
            aware_at,
            problems,
            missing="Give the time the organisation became aware (UTC).",
            future="The time of awareness cannot be in the future.",
        )
        data: dict[str, Any] = {flag: bool(flags.get(flag)) for flag in table.flags}
        data.update(aware_at=aware, note=note)
        event = append_step(inc, problems, type=EventType.ASSESSED, by=by, data=data, at=at)
        schedule_metrics_refresh(inc)
    return event


def file_report(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    regime: str,
    obligation: str,
    reference: str,
    sha256: str,
    filed_at: datetime,
    at: datetime | None = None,
) -> Event:
    """Record that a report was filed with the authority (event `report_filed`): the obligation
    must apply to the incident and not be filed yet; `sha256` is the digest of the report as
    filed; `filed_at` is when it reached the authority (not in the future)."""
    reference = (reference or "").strip()
    sha256 = (sha256 or "").strip().lower()
    with locked_incident(incident) as inc:
        problems: list[str] = []
        if by is not None and not can(by, "file_reports"):
            problems.append("Only an incident manager or risk may record a filed report.")
        current = {(o.regime, o.obligation): o for o in obligations_for(inc)}
        found = current.get((regime, obligation))
        if found is None:
            problems.append(
                f"{inc.key} owes no {regime} {obligation} report under its latest assessment."
            )
        elif found.filed_at is not None:
            problems.append(
                f"The {regime} {obligation} report of {inc.key} was already filed "
                f"({found.reference}, {format_time(found.filed_at)})."
            )
        if not reference:
            problems.append("Give the authority's reference (or your submission number).")
        elif len(reference) > 300:
            problems.append("The reference is longer than 300 characters.")
        if len(sha256) != SHA_LENGTH or any(ch not in "0123456789abcdef" for ch in sha256):
            problems.append("The report's SHA-256 must be 64 hexadecimal digits.")
        filed = _past_time(
            filed_at,
            problems,
            missing="Give the time the report was filed (UTC).",
            future="A report cannot be filed in the future.",
        )
        data = {
            "regime": regime,
            "obligation": obligation,
            "reference": reference,
            "sha256": sha256,
            "filed_at": filed,
        }
        event = append_step(inc, problems, type=EventType.REPORT_FILED, by=by, data=data, at=at)
        schedule_metrics_refresh(inc)
    return event


# ---------------------------------------------------------------- alerts (beat)


def publish_obligation_alerts(at: datetime | None = None) -> int:
    """Publish `obligation.due_soon` and `obligation.overdue` once per obligation and status
    (the ObligationAlert row is the memory). Returns how many were published."""
    from django.db import IntegrityError, transaction
    from django.urls import reverse

    from trustdesk.incidents.models import ObligationAlert

    at = at or timezone.now()
    sent = 0
    # Every incident, open or not: a report owed on a closed incident is still owed.
    for ob in all_obligations():
        status = ob.status(at)
        if status not in ("due_soon", "overdue"):
            continue
        try:
            with transaction.atomic():
                ObligationAlert.objects.create(
                    incident_key=ob.incident,
                    regime=ob.regime,
                    obligation=ob.obligation,
                    status=status,
                )
                publish(
                    f"obligation.{status}",
                    {
                        "incident": ob.incident,
                        "agent": ob.agent,
                        "regime": ob.regime,
                        "obligation": ob.obligation,
                        "deadline": format_time(ob.deadline),
                        "url": reverse("incident_detail", args=[ob.incident]),
                    },
                )
        except IntegrityError:
            continue  # already announced
        sent += 1
    return sent


def flag_labels(data: dict[str, Any]) -> list[str]:
    return [_flag_label(f) for f in rules().flags if data.get(f)]
