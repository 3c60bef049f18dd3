"""The incident exchange format "trustdesk.incidents/v1" (docs/design.md section 7): import and
export.

Import is all or nothing: `validate_document` walks the whole file and returns every problem with
its JSON path (`incidents[3].events[1].type: unknown event type 'x'`) before anything is stored;
`import_document` then replays each incident's history through `append_event`, so the chains are
real and verifiable, and derives the denormalized fields from the events. The importer checks
structure, references, known types and values and time order; it does not check the live gates
(history is taken as it happened).

`export_document(queryset)` writes the same format; for a file in canonical form (what export
writes), export(import(x)) == x. With `with_hashes=True` each event also carries its seq, hash,
prev_hash and the exact canonical text that was hashed (the evidence bundle builds on that).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone

from trustdesk.core import hooks
from trustdesk.core.bounds import past_time_problem, text_problems
from trustdesk.core.canonical import ZERO_HASH, format_time, strict_json_loads, to_canonical_value
from trustdesk.incidents.chain import canonical_event, event_hash
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.exchange_ownership import (
    OWNERSHIP_EVENT_TYPES,
    agent_profile_out,
    validate_agent_profile,
    validate_ownership_data,
)
from trustdesk.incidents.gates import evidence_completeness, present_evidence_kinds
from trustdesk.incidents.journal import append_event, locked_incident, schedule_metrics_refresh
from trustdesk.incidents.lifecycle import ACTION_SCOPE, find_recurrence_of
from trustdesk.incidents.models import (
    ContainmentAction,
    Event,
    EventType,
    Incident,
    Severity,
)
from trustdesk.incidents.transitions import fold
from trustdesk.pacts.actions import import_pact_documents
from trustdesk.pacts.document import canonical_document, document_sha256
from trustdesk.pacts.document import validate_document as validate_pact
from trustdesk.pacts.errors import PactError
from trustdesk.pacts.models import (
    SCOPE_RANK,
    Agent,
    Clause,
    Dispute,
    DisputeStatus,
    EvidenceKind,
    PactVersion,
    Scope,
)
from trustdesk.taxonomy import ASSUMPTION_BY_KEY, CONFIDENCE_CHOICES, HARM_CHOICES

FORMAT = "trustdesk.incidents/v1"
MAX_FILE_BYTES = 50 * 1024 * 1024

KEY_RE = re.compile(r"^INC-([1-9][0-9]{0,8})$")
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
USERNAME_RE = re.compile(r"^[\w.@+-]+$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")

DECISIONS = ("reopen_full", "reopen_partial", "keep_restricted", "retire")
OPERATING_MODEL_KINDS = (
    "pact_amended",
    "control_added",
    "monitoring_added",
    "human_oversight",
    "scope_reduced",
    "other",
)
CONDITION_KINDS = (
    "evaluation_pass_rate",
    "no_incidents",
    "signoffs",
    "evidence_complete",
    "operating_model_changed",
    "dispute_free",
    "actions_done",
)
DISPUTE_STATUSES = ("upheld", "rejected")
SIGNOFF_ROLES = ("risk", "incident_manager", "operator")


class ExchangeError(GateError):
    """An exchange file that cannot be imported. `problems` lists every one, with its JSON path.
    Nothing was stored."""


# ---------------------------------------------------------------- parsing


def parse(data: bytes | str) -> Any:
    """Parse the JSON text of an exchange file (decimals kept exact, duplicate keys refused)."""
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise ExchangeError(f"(file): larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ExchangeError(f"(file): not UTF-8 text (byte {exc.start})") from None
    try:
        return strict_json_loads(data)
    except json.JSONDecodeError as exc:
        raise ExchangeError(
            f"(file): not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ExchangeError(f"(file): not valid JSON: {exc}") from None


# ---------------------------------------------------------------- validation

_TYPE_NAMES = {
    str: "a string",
    int: "a whole number",
    bool: "true or false",
    dict: "an object",
    list: "a list",
}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float | Decimal):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


@dataclass
class _Checker:
    problems: list[str] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def typed(self, obj: dict, key: str, path: str, kind: type, *, required: bool = True) -> Any:
        """The value at obj[key] when it has the right type; records a problem otherwise."""
        where = f"{path}.{key}" if path else key
        if key not in obj:
            if required:
                self.add(where, "missing")
            return None
        value = obj[key]
        if not _is(value, kind):
            self.add(where, f"must be {_TYPE_NAMES[kind]}, not {_json_kind(value)}")
            return None
        return value

    def text(self, obj: dict, key: str, path: str, *, required: bool = True, empty=False):
        value = self.typed(obj, key, path, str, required=required)
        if value is not None and not empty and not value.strip():
            self.add(f"{path}.{key}", "must not be empty")
            return None
        return value

    def choice(self, obj: dict, key: str, path: str, choices, what: str, *, required=True):
        value = self.typed(obj, key, path, str, required=required)
        if value is not None and value not in choices:
            self.add(
                f"{path}.{key}",
                f"unknown {what} '{value}' (one of {', '.join(choices)})",
            )
            return None
        return value


def parse_time(value: str) -> datetime | None:
    if not TIME_RE.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed


@dataclass
class _PactRef:
    agent: str
    clause_keys: set[str]
    evidence_required: list[str]


@dataclass
class Plan:
    """What a valid file will store: computed by validation, used by the import."""

    document: dict
    new_agents: list[dict] = field(default_factory=list)
    new_pacts: list[tuple[int, dict]] = field(default_factory=list)
    pact_refs: dict[tuple[str, int], _PactRef] = field(default_factory=dict)
    usernames: set[str] = field(default_factory=set)


def _existing_pact_refs(keys: set[str]) -> dict[tuple[str, int], tuple[_PactRef, str]]:
    """Pact versions in the database for these pact keys: (ref, sha256) by (key, number)."""
    refs: dict[tuple[str, int], tuple[_PactRef, str]] = {}
    if not keys:
        return refs
    versions = (
        PactVersion.objects.filter(pact__key__in=keys)
        .select_related("pact__agent")
        .prefetch_related(Prefetch("clauses", queryset=Clause.objects.only("key", "version_id")))
    )
    for v in versions:
        refs[(v.pact.key, v.number)] = (
            _PactRef(v.pact.agent.key, {c.key for c in v.clauses.all()}, v.evidence_required),
            v.sha256,
        )
    return refs


def validate_document(doc: Any, *, now: datetime | None = None) -> tuple[list[str], Plan | None]:
    """Every problem of an exchange document (each starting with its JSON path), and the plan
    of what importing it would store (None when there are problems)."""
    now = now or timezone.now()
    c = _Checker()
    if not isinstance(doc, dict):
        return [f"(document): must be an object, not {_json_kind(doc)}"], None
    # Text no database can store (NUL, lone surrogates) is refused before any lookup uses it.
    if unstorable := text_problems(doc):
        return unstorable, None
    fmt = doc.get("format")
    if fmt != FORMAT:
        c.add("format", f"must be '{FORMAT}'" + ("" if fmt is None else f", not {fmt!r}"))
    for key in doc:
        if key not in ("format", "agents", "pacts", "incidents"):
            c.add(key, "unknown key")
    agents = c.typed(doc, "agents", "", list, required=False) or []
    pacts = c.typed(doc, "pacts", "", list, required=False) or []
    incidents = c.typed(doc, "incidents", "", list)
    plan = Plan(document=doc)

    # agents
    file_agents: dict[str, dict] = {}
    for i, agent in enumerate(agents):
        path = f"agents[{i}]"
        if not isinstance(agent, dict):
            c.add(path, f"must be an object, not {_json_kind(agent)}")
            continue
        key = c.text(agent, "key", path)
        for name, required in (("name", True), ("owner", False)):
            value = c.text(agent, name, path, required=required, empty=not required)
            if value is not None and len(value) > 200:
                c.add(f"{path}.{name}", "longer than 200 characters")
        c.typed(agent, "description", path, str, required=False)
        validate_agent_profile(c, agent, path)
        for extra in agent:
            if extra not in ("key", "name", "owner", "description", *AGENT_PROFILE_KEYS):
                c.add(f"{path}.{extra}", "unknown key")
        if key is None:
            continue
        if not SLUG_RE.match(key) or len(key) > 80:
            c.add(f"{path}.key", f"'{key}' is not a valid agent key (letters, digits, - and _)")
        elif key in file_agents:
            c.add(f"{path}.key", f"duplicate agent '{key}'")
        else:
            file_agents[key] = agent
    db_agents = set(
        Agent.objects.filter(key__in=_referenced_agents(doc)).values_list("key", flat=True)
    )
    known_agents = db_agents | set(file_agents)
    plan.new_agents = [a for k, a in file_agents.items() if k not in db_agents]

    # pacts
    pact_keys = {
        d["metadata"]["key"]
        for d in pacts
        if isinstance(d, dict)
        and isinstance(d.get("metadata"), dict)
        and isinstance(d["metadata"].get("key"), str)
    }
    for inc in incidents or []:
        if isinstance(inc, dict) and isinstance(inc.get("pact"), str):
            pact_keys.add(inc["pact"])
    existing = _existing_pact_refs(pact_keys)
    refs: dict[tuple[str, int], _PactRef] = {key: ref for key, (ref, _) in existing.items()}
    _validate_pacts(c, pacts, known_agents, existing, refs, plan)

    # incidents
    keys_in_file: dict[str, str] = {}
    candidate_keys = [
        inc["key"]
        for inc in incidents or []
        if isinstance(inc, dict) and isinstance(inc.get("key"), str)
    ]
    keys_in_db = set(Incident.objects.filter(key__in=candidate_keys).values_list("key", flat=True))
    duplicates: list[tuple[str, str, str | None]] = []
    for i, inc in enumerate(incidents or []):
        path = f"incidents[{i}]"
        if not isinstance(inc, dict):
            c.add(path, f"must be an object, not {_json_kind(inc)}")
            continue
        state: dict[str, Any] = {}
        _validate_incident(
            c, inc, path, known_agents, refs, keys_in_file, keys_in_db, now, plan, state
        )
        own = inc.get("key") if isinstance(inc.get("key"), str) else None
        duplicates.extend((where, dup, own) for where, dup in state.get("duplicates", []))
    if duplicates:
        wanted = {dup for _, dup, _ in duplicates}
        existing_keys = set(
            Incident.objects.filter(key__in=wanted).values_list("key", flat=True)
        ) | set(keys_in_file)
        for where, dup, own in duplicates:
            if dup == own:
                c.add(where, "an incident cannot duplicate itself")
            elif dup not in existing_keys:
                c.add(where, f"unknown incident '{dup}'")
    plan.pact_refs = refs
    if c.problems:
        return c.problems, None
    return [], plan


def _referenced_agents(doc: dict) -> set[str]:
    names: set[str] = set()
    for section, getter in (
        ("agents", lambda x: x.get("key")),
        ("incidents", lambda x: x.get("agent")),
        (
            "pacts",
            lambda x: (
                (x.get("metadata") or {}).get("agent")
                if isinstance(x.get("metadata"), dict)
                else None
            ),
        ),
    ):
        items = doc.get(section)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    value = getter(item)
                    if isinstance(value, str):
                        names.add(value)
    return names


def _validate_pacts(c, pacts, known_agents, existing, refs, plan) -> None:

    seen: set[tuple[str, int]] = set()
    for i, raw in enumerate(pacts):
        path = f"pacts[{i}]"
        problems = validate_pact(raw)
        if problems:
            for p in problems:
                where, _, message = p.partition(": ")
                where = "" if where == "(document)" else f".{where}"
                c.add(f"{path}{where}", message)
            continue
        doc = canonical_document(raw)
        meta = doc["metadata"]
        version = meta.get("version")
        if version is None:
            c.add(f"{path}.metadata.version", "missing (an exchange file names each version)")
            continue
        key = (meta["key"], int(version))
        if key in seen:
            c.add(f"{path}.metadata", f"duplicate pact version {key[0]}@{key[1]}")
            continue
        seen.add(key)
        if meta["agent"] not in known_agents:
            c.add(f"{path}.metadata.agent", f"unknown agent '{meta['agent']}'")
            continue
        if key in existing:
            ref, sha = existing[key]
            if ref.agent != meta["agent"]:
                c.add(
                    f"{path}.metadata.agent",
                    f"{key[0]} belongs to agent '{ref.agent}' here, not '{meta['agent']}'",
                )
            elif sha != document_sha256(doc):
                c.add(
                    f"{path}",
                    f"{key[0]}@{key[1]} already exists with different content",
                )
            continue
        other = next((r for (k, _), (r, _) in existing.items() if k == key[0]), None)
        if other is not None and other.agent != meta["agent"]:
            c.add(
                f"{path}.metadata.agent",
                f"{key[0]} belongs to agent '{other.agent}' here, not '{meta['agent']}'",
            )
            continue
        refs[key] = _PactRef(
            meta["agent"],
            {cl["key"] for cl in doc["spec"]["clauses"]},
            list(doc["spec"].get("evidence_required") or []),
        )
        plan.new_pacts.append((i, doc))


AGENT_PROFILE_KEYS = ("high_risk_ai", "personal_data", "nis2")
INCIDENT_KEYS = (
    "key",
    "agent",
    "pact",
    "pact_version",
    "severity",
    "title",
    "summary",
    "clauses",
    "events",
)


def _validate_incident(
    c, inc, path, known_agents, refs, keys_in_file, keys_in_db, now, plan, state=None
):
    for extra in inc:
        if extra not in INCIDENT_KEYS:
            c.add(f"{path}.{extra}", "unknown key")
    key = c.text(inc, "key", path)
    if key is not None:
        if not KEY_RE.match(key):
            c.add(f"{path}.key", f"'{key}' is not an incident key like INC-42")
        elif key in keys_in_file:
            c.add(f"{path}.key", f"duplicate incident key '{key}' (also {keys_in_file[key]})")
        elif key in keys_in_db:
            c.add(f"{path}.key", f"incident '{key}' already exists")
        else:
            keys_in_file[key] = path
    agent = c.text(inc, "agent", path)
    if agent is not None and agent not in known_agents:
        c.add(f"{path}.agent", f"unknown agent '{agent}'")
    c.choice(inc, "severity", path, Severity.values, "severity")
    title = c.text(inc, "title", path)
    if title is not None and len(title) > 300:
        c.add(f"{path}.title", "longer than 300 characters")
    c.typed(inc, "summary", path, str, required=False)
    ref = None
    has_pact = "pact" in inc or "pact_version" in inc
    if has_pact:
        pact = c.text(inc, "pact", path)
        number = c.typed(inc, "pact_version", path, int)
        if pact is not None and number is not None:
            ref = refs.get((pact, number))
            if ref is None:
                c.add(f"{path}.pact_version", f"unknown pact version {pact}@{number}")
            elif agent is not None and ref.agent != agent:
                c.add(f"{path}.pact", f"{pact} is a pact of '{ref.agent}', not of '{agent}'")
    clauses = c.typed(inc, "clauses", path, list, required=False)
    for j, clause in enumerate(clauses or []):
        _clause_ref(c, clause, f"{path}.clauses[{j}]", ref, has_pact)
    events = c.typed(inc, "events", path, list)
    if events is None:
        return
    if not events:
        c.add(f"{path}.events", "must hold at least the detected event")
        return
    before = len(c.problems)
    _validate_events(c, events, f"{path}.events", ref, has_pact, now, plan, state)
    if key is not None and len(c.problems) == before:
        _check_stated_hashes(c, key, events, f"{path}.events")


HASH_KEYS = ("seq", "hash", "prev_hash", "canonical")


def _check_stated_hashes(c, key: str, events: list[dict], path: str) -> None:
    """A file exported `with_hashes` states each event's chain link: replaying must reproduce it
    exactly, or the history was altered on the way (checked before anything is stored)."""
    prev = ZERO_HASH
    for j, ev in enumerate(events):
        where = f"{path}[{j}]"
        canonical = canonical_event(
            incident_key=key,
            seq=j + 1,
            type=ev["type"],
            at=parse_time(ev["at"]),
            by=ev.get("by") or None,
            data=to_canonical_value(ev.get("data") or {}),
        )
        digest = event_hash(prev, canonical)
        stated = {
            "seq": j + 1,
            "prev_hash": prev,
            "canonical": canonical,
            "hash": digest,
        }
        for name, expected in stated.items():
            if name in ev and ev[name] != expected:
                c.add(
                    f"{where}.{name}",
                    "does not match the replayed event"
                    + (f" (expected {expected})" if name in ("seq", "hash", "prev_hash") else ""),
                )
        prev = digest


def _clause_ref(c, clause, where, ref, has_pact) -> None:
    if not isinstance(clause, str):
        c.add(where, f"must be a clause key (a string), not {_json_kind(clause)}")
    elif not has_pact:
        c.add(where, "an incident without a pact names no clauses")
    elif ref is not None and clause not in ref.clause_keys:
        c.add(where, f"unknown clause '{clause}' of this pact version")


def _validate_events(c, events, path, ref, has_pact, now, plan, state=None) -> None:
    state = {} if state is None else state
    previous: datetime | None = None
    shas: set[str] = set()
    disputes: set[int] = set()
    for j, ev in enumerate(events):
        where = f"{path}[{j}]"
        if not isinstance(ev, dict):
            c.add(where, f"must be an object, not {_json_kind(ev)}")
            continue
        for extra in ev:
            if extra not in ("type", "at", "by", "data", *HASH_KEYS):
                c.add(f"{where}.{extra}", "unknown key")
        etype = c.typed(ev, "type", where, str)
        if etype is not None and etype not in EventType.values:
            c.add(f"{where}.type", f"unknown event type '{etype}'")
            etype = None
        if etype is not None:
            if j == 0 and etype != EventType.DETECTED:
                c.add(f"{where}.type", f"the first event must be 'detected', not '{etype}'")
            elif j > 0 and etype == EventType.DETECTED:
                c.add(f"{where}.type", "only the first event is 'detected'")
        at_text = c.typed(ev, "at", where, str)
        if at_text is not None:
            at = parse_time(at_text)
            if at is None:
                c.add(
                    f"{where}.at",
                    f"bad time '{at_text}' (use UTC ISO 8601 like 2026-11-02T10:00:00Z)",
                )
            else:
                if at > now:
                    c.add(f"{where}.at", f"{at_text} is in the future")
                elif problem := past_time_problem(at, now=now):
                    c.add(f"{where}.at", f"{at_text}: {problem}")
                if previous is not None and at < previous:
                    c.add(
                        f"{where}.at",
                        f"{at_text} is before the previous event ({format_time(previous)}); "
                        "events must be in time order",
                    )
                previous = at
        if "by" in ev and ev["by"] is not None:
            by = ev["by"]
            if not isinstance(by, str):
                c.add(f"{where}.by", f"must be a username (a string) or null, not {_json_kind(by)}")
            elif not USERNAME_RE.match(by) or len(by) > 150:
                c.add(f"{where}.by", f"'{by}' is not a valid username")
            else:
                plan.usernames.add(by)
        data = ev.get("data", {})
        if not isinstance(data, dict):
            c.add(f"{where}.data", f"must be an object, not {_json_kind(data)}")
            continue
        if etype in OWNERSHIP_EVENT_TYPES and etype != EventType.RECLASSIFIED:
            validate_ownership_data(
                c, etype, data, f"{where}.data", events, j, plan, state, parse_time
            )
        elif etype is not None:
            _validate_data(
                c, etype, data, f"{where}.data", events, j, ref, has_pact, shas, disputes
            )
        if etype == EventType.DECISION_RECORDED:
            state["decided"] = True


def _validate_data(c, etype, data, path, events, index, ref, has_pact, shas, disputes) -> None:
    kinds = EvidenceKind.values
    if etype == EventType.CONTAINED:
        action = c.choice(data, "action", path, ContainmentAction.values, "containment action")
        scope = c.choice(data, "scope_after", path, Scope.values, "scope value")
        c.typed(data, "reason", path, str, required=False)
        if action in ACTION_SCOPE and scope is not None and ACTION_SCOPE[action] != scope:
            c.add(f"{path}.scope_after", f"'{action}' leaves the agent {ACTION_SCOPE[action]}")
    elif etype == EventType.EVIDENCE_ADDED:
        c.choice(data, "kind", path, kinds, "evidence kind")
        sha = c.typed(data, "sha256", path, str)
        c.typed(data, "description", path, str)
        if sha is not None:
            if not SHA_RE.match(sha):
                c.add(f"{path}.sha256", "must be 64 lowercase hex digits")
            elif sha in shas:
                c.add(f"{path}.sha256", "the same content was already added to this incident")
            else:
                shas.add(sha)
        c.typed(data, "late", path, bool, required=False)
        old = c.typed(data, "supersedes", path, str, required=False)
        if old is not None and old not in shas - {sha}:
            c.add(f"{path}.supersedes", "does not name earlier evidence of this incident")
    elif etype == EventType.EVIDENCE_PRESERVED:
        gaps = c.typed(data, "acknowledged_gaps", path, list)
        for k, gap in enumerate(gaps or []):
            if gap not in kinds:
                c.add(f"{path}.acknowledged_gaps[{k}]", f"unknown evidence kind {gap!r}")
        c.typed(data, "reason", path, str)
    elif etype in (EventType.CLASSIFIED, EventType.RECLASSIFIED):
        c.choice(data, "assumption", path, list(ASSUMPTION_BY_KEY), "assumption class")
        c.text(data, "statement", path)
        clauses = c.typed(data, "clauses", path, list)
        for k, clause in enumerate(clauses or []):
            _clause_ref(c, clause, f"{path}.clauses[{k}]", ref, has_pact)
        c.choice(
            data,
            "confidence",
            path,
            [k for k, _ in CONFIDENCE_CHOICES],
            "confidence",
            required=False,
        )
        c.choice(
            data,
            "harm_category",
            path,
            [k for k, _ in HARM_CHOICES],
            "harm category",
            required=False,
        )
        secondary = c.typed(data, "secondary", path, list, required=False)
        for k, extra in enumerate(secondary or []):
            if extra not in ASSUMPTION_BY_KEY:
                c.add(f"{path}.secondary[{k}]", f"unknown assumption class {extra!r}")
    elif etype == EventType.REPAIRED:
        c.text(data, "summary", path)
        c.text(data, "reference", path)
        if c.typed(data, "override", path, bool, required=False):
            c.text(data, "justification", path)
    elif etype == EventType.OPERATING_MODEL_CHANGED:
        c.choice(data, "kind", path, OPERATING_MODEL_KINDS, "operating-model change")
        c.text(data, "summary", path)
        c.typed(data, "pact_version", path, str, required=False)
    elif etype == EventType.REENTRY_CONDITION_SET:
        c.choice(data, "kind", path, CONDITION_KINDS, "re-entry condition")
        c.typed(data, "params", path, dict)
        c.text(data, "statement", path)
    elif etype == EventType.DECISION_RECORDED:
        c.choice(data, "decision", path, DECISIONS, "decision")
        c.choice(data, "scope_after", path, Scope.values, "scope value")
        c.typed(data, "rationale", path, str)
        c.typed(data, "override", path, bool)
        c.typed(data, "justification", path, str)
    elif etype == EventType.ATTESTED:
        seq = c.typed(data, "decision_seq", path, int)
        if seq is not None:
            target = events[seq - 1] if 1 <= seq <= index else None
            if not (isinstance(target, dict) and target.get("type") == EventType.DECISION_RECORDED):
                c.add(
                    f"{path}.decision_seq",
                    f"event {seq} is not an earlier decision_recorded event of this incident",
                )
        c.typed(data, "can_explain", path, bool)
        c.typed(data, "comment", path, str)
    elif etype == EventType.REOPENED:
        c.choice(data, "scope_after", path, Scope.values, "scope value")
    elif etype == EventType.CLOSED:
        c.text(data, "outcome", path)
    elif etype == EventType.NOTE:
        c.text(data, "text", path)
        c.typed(data, "internal", path, bool)
    elif etype == EventType.SIGNED_OFF:
        c.choice(data, "role", path, SIGNOFF_ROLES, "sign-off role")
        c.typed(data, "comment", path, str)
        c.typed(data, "internal", path, bool)
    elif etype == EventType.DISPUTE_OPENED:
        dispute = c.typed(data, "dispute", path, int)
        c.typed(data, "reason", path, str)
        if dispute is not None:
            disputes.add(dispute)
    elif etype == EventType.DISPUTE_RESOLVED:
        dispute = c.typed(data, "dispute", path, int)
        c.choice(data, "status", path, DISPUTE_STATUSES, "dispute status")
        c.typed(data, "resolution", path, str)
        if dispute is not None and dispute not in disputes:
            c.add(f"{path}.dispute", f"dispute {dispute} was not opened earlier in this incident")


# ---------------------------------------------------------------- import


@dataclass(frozen=True)
class ImportResult:
    agents: int
    pacts: int
    users: int
    incidents: int
    events: int


def _import_pacts(docs: list[tuple[int, dict]]) -> None:
    """Store the file's new pact versions through the pacts app (one place for that rule).

    They are activated as the pacts app does for an import: each becomes active unless a newer
    version of its pact already is, so history arriving late is kept as superseded.
    """
    if not docs:
        return
    try:
        import_pact_documents(
            [doc for _, doc in docs],
            by=None,
            activate=True,
            labels=[f"pacts[{index}]" for index, _ in docs],
        )
    except PactError as exc:
        raise ExchangeError(exc.problems) from None


def import_document(doc: Any, *, now: datetime | None = None) -> ImportResult:
    """Validate the whole document, then store it in one transaction. Raises ExchangeError
    listing every problem (with its path) and stores nothing, not even agents or users."""
    problems, plan = validate_document(doc, now=now)
    if problems:
        raise ExchangeError(problems)
    assert plan is not None
    try:
        return _store(doc, plan)
    except IntegrityError:
        # Someone opened an incident with one of these keys (or created these rows) while the
        # file was being stored: the transaction rolled back, so nothing of it remains.
        raise ExchangeError(
            "(file): the database changed while importing (an incident key or agent was taken "
            "at the same time); nothing was imported, try again"
        ) from None


def _store(doc: dict, plan: Plan) -> ImportResult:
    User = get_user_model()
    with transaction.atomic():
        for a in plan.new_agents:
            Agent.objects.create(
                key=a["key"],
                name=a["name"],
                owner=a.get("owner", ""),
                description=a.get("description", ""),
                **{k: a[k] for k in AGENT_PROFILE_KEYS if k in a},
            )
        _import_pacts(plan.new_pacts)
        users = {u.username: u for u in User.objects.filter(username__in=plan.usernames)}
        created_users = 0
        for name in sorted(plan.usernames - set(users)):
            user = User(username=name)
            user.set_unusable_password()
            user.save()
            users[name] = user
            created_users += 1
        agents = {a.key: a for a in Agent.objects.filter(key__in=_referenced_agents(doc))}
        versions = {
            (v.pact.key, v.number): v
            for v in PactVersion.objects.filter(
                pact__key__in={k for k, _ in plan.pact_refs}
            ).select_related("pact")
        }
        new_agent_keys = {a["key"] for a in plan.new_agents}
        imported: list[Incident] = []
        total_events = 0
        for raw in doc["incidents"]:
            incident = _replay(raw, agents, versions, users)
            imported.append(incident)
            total_events += len(raw["events"])
        for incident in sorted(imported, key=lambda i: i.detected_at):
            if incident.assumption:
                found = find_recurrence_of(incident, incident.assumption)
                if found is not None:
                    incident.recurrence_of = found
                    incident.save(update_fields=["recurrence_of"])
        _derive_new_agent_scopes(imported, new_agent_keys)
        # One refresh per agent, not per incident: a large file is one burst of changes.
        for incident in {i.agent_id: i for i in imported}.values():
            schedule_metrics_refresh(incident)
    return ImportResult(
        agents=len(plan.new_agents),
        pacts=len(plan.new_pacts),
        users=created_users,
        incidents=len(imported),
        events=total_events,
    )


def _replay(raw: dict, agents, versions, users) -> Incident:
    number = int(KEY_RE.match(raw["key"]).group(1))
    version = versions.get((raw["pact"], raw["pact_version"])) if "pact" in raw else None
    events = raw["events"]
    incident = Incident.objects.create(
        number=number,
        key=raw["key"],
        agent=agents[raw["agent"]],
        pact_version=version,
        title=raw["title"],
        summary=raw.get("summary", ""),
        severity=raw["severity"],
        detected_at=parse_time(events[0]["at"]),
    )
    if raw.get("clauses") and version is not None:
        incident.clauses.set(version.clauses.filter(key__in=raw["clauses"]))
    with locked_incident(incident) as inc:
        for ev in events:
            name = ev.get("by") or ""
            append_event(
                inc,
                type=ev["type"],
                by=users.get(name) if name else None,
                data=ev.get("data") or {},
                at=parse_time(ev["at"]),
                by_name=name,
            )
        inc.save(update_fields=derive_fields(inc, list(inc.events.order_by("seq"))))
    # The events are the record; the reviews rows (decisions, attestations, conditions) make the
    # imported history readable on the incident page.
    hooks.answers(hooks.INCIDENT_IMPORTED, inc)
    from trustdesk.incidents.ownership import record_imported_ownership

    record_imported_ownership(inc)
    _record_imported_disputes(inc, events, users)
    return inc


def _record_imported_disputes(incident: Incident, events: list[dict], users) -> None:
    """The classification disputes an imported history opens and resolves become Dispute rows,
    as the live steps write them: `dispute_free` conditions and reclassification read the rows.

    The file numbers its disputes (`data.dispute`); the rows take this database's numbers. A
    dispute whose opener is not named gets no row (a row names who opened it), and only an open
    dispute is resolved, as live.
    """
    rows: dict[int, Dispute] = {}
    for ev in events:
        data = ev.get("data") or {}
        by = users.get(ev.get("by") or "")
        at = parse_time(ev["at"])
        if ev["type"] == EventType.DISPUTE_OPENED and by is not None:
            rows[data["dispute"]] = Dispute.objects.create(
                incident=incident, reason=data["reason"], opened_by=by, opened_at=at
            )
        elif ev["type"] == EventType.DISPUTE_RESOLVED:
            row = rows.get(data["dispute"])
            if row is not None and row.status == DisputeStatus.OPEN:
                row.status, row.resolution = data["status"], data["resolution"]
                row.resolved_by, row.resolved_at = by, at
                row.save(update_fields=["status", "resolution", "resolved_by", "resolved_at"])


def derive_fields(incident: Incident, events: list[Event]) -> list[str]:
    """Set the denormalized columns of `incident` (in memory) from its events, with the same
    `advance` the live steps use, and return their names: the state of the last state-changing
    event, milestones at the first occurrence, the latest classification and scope, and the
    evidence completeness at the (last) preservation."""
    fields = fold(incident, events)
    evidence: list[dict] = []
    required = list(incident.pact_version.evidence_required) if incident.pact_version else []
    for ev in events:
        if ev.type == EventType.EVIDENCE_ADDED:
            evidence.append({"data": ev.data})
        elif ev.type == EventType.EVIDENCE_PRESERVED:
            incident.evidence_completeness = evidence_completeness(
                required, present_evidence_kinds(evidence)
            )
            fields.append("evidence_completeness")
    return sorted(set(fields))


def _derive_new_agent_scopes(incidents: list[Incident], new_agent_keys: set[str]) -> None:
    """An agent created by this import takes the scope its history leaves it in. Existing agents
    keep their scope: the file describes history, not the agent's present.

    The agent's events are replayed in time order: containments and reopenings set the scope they
    name; a decision sets its scope unless another open incident holds the agent stricter (as
    `reviews.actions.record_recovery_decision`); a closing as not an incident restores it as the
    live step does (`ownership.close_not_incident`): to the strictest scope another incident still
    held at that moment, else full, and only ever wider.
    """
    mine: dict[int, list[Incident]] = {}
    for incident in incidents:
        if incident.agent.key in new_agent_keys:
            mine.setdefault(incident.agent_id, []).append(incident)
    for agent_id, own in mine.items():
        events = [
            (ev, incident)
            for incident in own
            for ev in incident.events.filter(type__in=_SCOPE_EVENT_TYPES).order_by("seq")
        ]
        # A stable sort: at the same time, the later incident of the file comes last.
        events.sort(key=lambda pair: pair[0].at)
        scope: str | None = None
        changed: tuple[datetime, Incident] | None = None
        held: dict[int, str] = {}  # open incidents whose containment holds the agent
        for ev, incident in events:
            if ev.type == EventType.CLOSED_NOT_INCIDENT:
                held.pop(incident.pk, None)
                target = max(held.values(), key=SCOPE_RANK.__getitem__, default=Scope.FULL)
                if scope is not None and SCOPE_RANK[target] < SCOPE_RANK[scope]:
                    scope, changed = target, (ev.at, incident)
                continue
            if ev.type == EventType.CLOSED or ev.type == EventType.REOPENED:
                held.pop(incident.pk, None)
            elif ev.data.get("action") != ContainmentAction.NO_SCOPE_CHANGE and (
                ev.type == EventType.CONTAINED or incident.pk in held
            ):
                held[incident.pk] = ev.data["scope_after"]
            if ev.type == EventType.DECISION_RECORDED:
                # As live (reviews.actions.record_recovery_decision): a decision never lifts the
                # agent past what another open incident holds; a reopening held that way has its
                # `reopened` event later, when the hold lifts.
                others = [s for pk, s in held.items() if pk != incident.pk]
                target = max([ev.data["scope_after"], *others], key=SCOPE_RANK.__getitem__)
                if target != scope:
                    scope, changed = target, (ev.at, incident)
            elif ev.type != EventType.CLOSED:
                scope, changed = ev.data["scope_after"], (ev.at, incident)
        if changed is not None:
            at, incident = changed
            Agent.objects.filter(pk=agent_id).update(
                scope=scope,
                scope_changed_at=at,
                scope_reason=f"Imported history of {incident.key}.",
                scope_incident=incident,
            )


_SCOPE_EVENT_TYPES = (
    EventType.CONTAINED,
    EventType.DECISION_RECORDED,
    EventType.REOPENED,
    EventType.CLOSED,
    EventType.CLOSED_NOT_INCIDENT,
)


# ---------------------------------------------------------------- export


def _event_out(ev: Event, *, with_hashes: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ev.type, "at": format_time(ev.at)}
    if ev.actor_name:
        out["by"] = ev.actor_name
    if ev.data:
        out["data"] = copy.deepcopy(ev.data)
    if with_hashes:
        out.update(seq=ev.seq, hash=ev.hash, prev_hash=ev.prev_hash, canonical=ev.canonical)
    return out


def export_document(incidents, *, with_hashes: bool = False) -> dict[str, Any]:
    """The exchange document of a queryset of incidents: their agents, the pact versions in
    force, and every incident with its events in order. Five queries whatever the size.

    With `with_hashes`, each event also has "seq", "hash", "prev_hash" and "canonical" (the exact
    text hashed), so a verifier can recompute the chain without the database.
    """
    qs = (
        incidents.order_by("number")
        .select_related("agent", "pact_version__pact")
        .prefetch_related(
            Prefetch("events", queryset=Event.objects.order_by("seq")),
            Prefetch("clauses", queryset=Clause.objects.order_by("position", "key")),
        )
    )
    agents: dict[str, Agent] = {}
    versions: dict[tuple[str, int], PactVersion] = {}
    out_incidents: list[dict[str, Any]] = []
    for inc in qs:
        agents[inc.agent.key] = inc.agent
        item: dict[str, Any] = {
            "key": inc.key,
            "agent": inc.agent.key,
            "severity": inc.severity,
            "title": inc.title,
        }
        if inc.pact_version is not None:
            v = inc.pact_version
            versions[(v.pact.key, v.number)] = v
            item["pact"] = v.pact.key
            item["pact_version"] = v.number
        if inc.summary:
            item["summary"] = inc.summary
        clause_keys = [cl.key for cl in inc.clauses.all()]
        if clause_keys:
            item["clauses"] = clause_keys
        item["events"] = [_event_out(ev, with_hashes=with_hashes) for ev in inc.events.all()]
        out_incidents.append(item)
    out_agents = []
    for key in sorted(agents):
        a = agents[key]
        entry = {"key": a.key, "name": a.name, "owner": a.owner}
        if a.description:
            entry["description"] = a.description
        entry.update(agent_profile_out(a))
        out_agents.append(entry)
    out_pacts = []
    for key in sorted(versions):
        doc = to_canonical_value(copy.deepcopy(versions[key].document))
        doc.setdefault("metadata", {})["version"] = key[1]
        out_pacts.append(doc)
    return {
        "format": FORMAT,
        "agents": out_agents,
        "pacts": out_pacts,
        "incidents": out_incidents,
    }


def dumps(document: dict[str, Any]) -> str:
    """The text written by export_incidents: sorted keys, two-space indent, final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


__all__ = [
    "FORMAT",
    "ExchangeError",
    "ImportResult",
    "derive_fields",
    "dumps",
    "export_document",
    "import_document",
    "parse",
    "validate_document",
]
