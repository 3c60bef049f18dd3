"""Every state change of agents, pacts, evaluations, disputes and API tokens lives here, one
function each (docs/design.md section 2). Views, the API, the commands, the demo and the tasks call
these; none re-implements a rule.

Each function runs in one transaction, locks what it changes, and raises PactError (with every
reason) when it refuses; a refused call changes nothing. An active version is never changed: the
only writes to a version that left draft are its status (superseded) and its review bookkeeping;
the database refuses anything else (migration 0003).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from trustdesk.core import hooks
from trustdesk.core.bounds import past_time_problem
from trustdesk.core.canonical import format_decimal, format_time, sha256_hex
from trustdesk.core.effects import agent_changed, publish, run_task_on_commit
from trustdesk.core.errors import Refused
from trustdesk.core.roles import can
from trustdesk.pacts.document import (
    canonical_document,
    canonical_text,
    document_sha256,
    window_seconds,
    without_version,
)
from trustdesk.pacts.errors import DocumentError, PactError
from trustdesk.pacts.models import (
    AGENT_SCOPE_PREFIX,
    TOKEN_SCOPES,
    Agent,
    ApiToken,
    Clause,
    Consequence,
    Dispute,
    DisputeStatus,
    Evaluation,
    EvaluationLog,
    Pact,
    PactVersion,
    VersionStatus,
)

__all__ = [
    "DocumentError",
    "PactError",
    "activate_version",
    "register_agent",
    "create_api_token",
    "create_draft",
    "import_pact_documents",
    "mark_reviewed",
    "open_dispute",
    "record_evaluations",
    "resolve_dispute",
    "revoke_api_token",
    "update_draft",
]


MAX_EVALUATIONS_PER_BATCH = 1000
# Clocks of evaluation sources drift a little; a measurement further ahead is refused.
FUTURE_TOLERANCE = timedelta(minutes=5)
VALUE_QUANTUM = Decimal("0.00000001")  # Evaluation.value has 8 decimal places
MAX_VALUE = Decimal("1e16")
TOKEN_PREFIX = "tdk_"
SOURCE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/")


def _require_role(by: AbstractBaseUser | None, action: str, doing: str) -> None:
    """`by` may do `action` (core.roles.PERMISSIONS). `by=None` is the system (commands, the demo
    seed)."""
    if not can(by, action):
        raise PactError(f"Your role does not allow you to {doing}.")


# ---------------------------------------------------------------- agents and versions


def register_agent(
    *, key: str, name: str, owner: str = "", description: str = "", by: AbstractBaseUser | None
) -> Agent:
    """Add an agent with its profile, or return the existing one unchanged (idempotent).

    Importing a pact creates a missing agent with a name made from its key; this gives it a real
    name and description first. Scope is never set here (the incident lifecycle owns it).
    """
    _require_role(by, "author_pacts", "add agents")
    problems = []
    if not key or not set(key) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_") or len(key) > 80:
        problems.append("key: lowercase letters, digits, '-' and '_' only, at most 80")
    if not (name or "").strip():
        problems.append("name: give the agent a name")
    if problems:
        raise PactError(problems)
    agent, _created = Agent.objects.get_or_create(
        key=key,
        defaults={"name": name.strip(), "owner": owner.strip(), "description": description.strip()},
    )
    return agent


def set_agent_profile(
    agent: Agent,
    *,
    by: AbstractBaseUser | None,
    high_risk_ai: bool,
    personal_data: bool,
    nis2: str,
) -> Agent:
    """Set the agent's regulatory profile (which reporting obligations its incidents can owe:
    trustdesk/incidents/obligations.json). Risk only; an unchanged profile is refused."""
    from trustdesk.pacts.models import Nis2Entity

    _require_role(by, "set_agent_profiles", "set an agent's regulatory profile")
    if nis2 not in Nis2Entity.values:
        raise PactError(f"nis2: must be one of {', '.join(Nis2Entity.values)}")
    with transaction.atomic():
        current = Agent.objects.select_for_update().get(pk=agent.pk)
        new = (bool(high_risk_ai), bool(personal_data), nis2)
        if (current.high_risk_ai, current.personal_data, current.nis2) == new:
            raise PactError(f"The profile of {agent.key} already says that; nothing changed.")
        Agent.objects.filter(pk=agent.pk).update(
            high_risk_ai=new[0], personal_data=new[1], nis2=new[2]
        )
    agent.high_risk_ai, agent.personal_data, agent.nis2 = new
    return agent


def _agent_name(key: str) -> str:
    return key.replace("-", " ").replace("_", " ").capitalize()


def _agent_and_pact(doc: dict, *, create: bool) -> tuple[Agent, Pact]:
    """The agent and pact a canonical document names, created when missing; the pact is locked."""
    meta = doc["metadata"]
    agent = Agent.objects.filter(key=meta["agent"]).first()
    if agent is None:
        if not create:
            raise PactError(f"metadata.agent: no agent '{meta['agent']}'")
        agent = Agent.objects.create(
            key=meta["agent"], name=_agent_name(meta["agent"]), owner=meta.get("owner", "")
        )
    pact = Pact.objects.select_for_update().select_related("agent").filter(key=meta["key"]).first()
    if pact is None:
        pact = Pact.objects.create(
            key=meta["key"], agent=agent, title=meta["title"], owner=meta.get("owner", "")
        )
        pact = Pact.objects.select_for_update().select_related("agent").get(pk=pact.pk)
    elif pact.agent_id != agent.pk:
        raise PactError(
            f"metadata.agent: pact '{pact.key}' belongs to agent '{pact.agent.key}'; "
            "a pact cannot move to another agent (write a new pact instead)"
        )
    return agent, pact


def _document_fields(doc: dict) -> dict[str, Any]:
    """The columns of a version that its canonical document decides."""
    spec = doc["spec"]
    review = spec["review"]
    last_reviewed = (
        date.fromisoformat(review["last_reviewed"]) if review.get("last_reviewed") else None
    )
    canonical = canonical_text(doc)
    return {
        "document": doc,
        "canonical": canonical,
        "sha256": sha256_hex(canonical),
        "risk_tier": spec["risk_tier"],
        "review_cadence_days": review["cadence_days"],
        "last_reviewed": last_reviewed,
        "review_due": PactVersion.compute_review_due(
            last_reviewed, review["cadence_days"], timezone.now().date()
        ),
        "evidence_required": list(spec.get("evidence_required", [])),
    }


def _create_version(
    pact: Pact, doc: dict, *, by: AbstractBaseUser | None, status: str = VersionStatus.DRAFT
) -> PactVersion:
    """Store a canonical document (with its metadata.version) and its clauses as a new version."""
    version = PactVersion.objects.create(
        pact=pact,
        number=doc["metadata"]["version"],
        status=VersionStatus.DRAFT,
        created_by=by,
        **_document_fields(doc),
    )
    _create_clauses(version, doc)
    if status != VersionStatus.DRAFT:
        PactVersion.objects.filter(pk=version.pk).update(status=status)
        version.status = status
    return version


def _create_clauses(version: PactVersion, doc: dict) -> None:
    Clause.objects.bulk_create(
        Clause(
            version=version,
            position=position,
            key=c["key"],
            statement=c["statement"],
            assumption=c["assumption"],
            metric=c["metric"],
            op=c["objective"]["op"],
            target=Decimal(c["objective"]["target"]),
            window=c["window"],
            window_seconds=window_seconds(c["window"]),
            method=c["evaluation"]["method"],
            source=c["evaluation"].get("source", ""),
            on_breach=c["on_breach"],
            contain=c.get("contain", "propose"),
        )
        for position, c in enumerate(doc["spec"]["clauses"])
    )


def _activate(pact: Pact, version: PactVersion, *, by: AbstractBaseUser | None) -> None:
    """Make a (locked) draft the pact's active version, superseding the current one."""
    now = timezone.now()
    today = now.date()
    pact.versions.filter(status=VersionStatus.ACTIVE).exclude(pk=version.pk).update(
        status=VersionStatus.SUPERSEDED
    )
    # Never reviewed: the review clock starts at activation.
    review_due = PactVersion.compute_review_due(
        version.last_reviewed, version.review_cadence_days, today
    )
    stale_since = now if review_due < today else None
    PactVersion.objects.filter(pk=version.pk).update(
        status=VersionStatus.ACTIVE,
        activated_at=now,
        activated_by=by,
        review_due=review_due,
        stale_since=stale_since,
    )
    version.status, version.activated_at, version.activated_by = VersionStatus.ACTIVE, now, by
    version.review_due, version.stale_since = review_due, stale_since
    # The pact's title and owner follow its active version.
    meta = version.document["metadata"]
    Pact.objects.filter(pk=pact.pk).update(title=meta["title"], owner=meta.get("owner", ""))
    pact.title, pact.owner = meta["title"], meta.get("owner", "")


def _import_one(doc: dict, *, by: AbstractBaseUser | None, activate: bool) -> PactVersion:
    _agent, pact = _agent_and_pact(doc, create=True)
    number = doc["metadata"].get("version")
    if number is not None:
        existing = pact.versions.filter(number=number).first()
        if existing is not None:
            if existing.sha256 == document_sha256(doc):
                return existing  # the same document again: nothing to do
            raise PactError(
                f"metadata.version: {pact.key}@{number} already exists with different content "
                f"(sha256 {existing.sha256[:12]}…); a stored version is never overwritten, "
                "import the change as a new version"
            )
    else:
        latest = pact.versions.order_by("-number").first()
        if latest is not None and without_version(latest.document) == doc:
            return latest  # re-importing the same unnumbered file is a no-op
        number = latest.number + 1 if latest is not None else 1
        doc = {**doc, "metadata": {**doc["metadata"], "version": number}}
    if not activate:
        return _create_version(pact, doc, by=by)
    current = pact.versions.filter(status=VersionStatus.ACTIVE).first()
    if current is not None and current.number > number:
        # History arriving late (v1 after v3): keep it, as the superseded version it was.
        return _create_version(pact, doc, by=by, status=VersionStatus.SUPERSEDED)
    version = _create_version(pact, doc, by=by)
    _activate(pact, version, by=by)
    return version


def import_pact_documents(
    docs: Sequence[Any],
    *,
    by: AbstractBaseUser | None,
    activate: bool = True,
    labels: Sequence[str] | None = None,
) -> list[PactVersion]:
    """Import pact documents, all or nothing; return one version per document, in order.

    A missing agent (metadata.agent) is created. Without metadata.version the next number is
    taken; with it, an existing version with the same SHA-256 is a no-op and one with a different
    SHA-256 is refused. With `activate`, each new version becomes active unless a newer one
    already is. `labels` (e.g. file names) prefix the problems of each document.
    """
    _require_role(by, "author_pacts", "import pacts")
    if labels is None:
        labels = [f"document {i}" for i in range(1, len(docs) + 1)] if len(docs) > 1 else [""]
    labels = list(labels)

    def prefixed(label: str, problems: list[str]) -> list[str]:
        return [f"{label}: {p}" if label else p for p in problems]

    problems: list[str] = []
    canonical: list[dict] = []
    for doc, label in zip(docs, labels, strict=True):
        try:
            canonical.append(canonical_document(doc))
        except DocumentError as exc:
            problems.extend(prefixed(label, exc.problems))
    if problems:
        raise DocumentError(problems)
    if not canonical:
        raise DocumentError("(file): holds no pact document")
    try:
        with transaction.atomic():
            versions = []
            for doc, label in zip(canonical, labels, strict=True):
                try:
                    with transaction.atomic():
                        versions.append(_import_one(doc, by=by, activate=activate))
                except PactError as exc:
                    problems.extend(prefixed(label, exc.problems))
            if problems:
                raise PactError(problems)  # rolls the whole import back
    except IntegrityError:
        raise PactError(
            "Another change to these pacts was saved at the same time; nothing was imported. "
            "Try again."
        ) from None
    return versions


def create_draft(document: Any, *, by: AbstractBaseUser | None) -> PactVersion:
    """Store a document as a new draft version (the next number; metadata.version is replaced).

    A new pact, and its agent, are created when missing. A document identical to the latest
    version is refused: there is nothing to draft.
    """
    _require_role(by, "author_pacts", "author pacts")
    doc = canonical_document(document)
    try:
        with transaction.atomic():
            _agent, pact = _agent_and_pact(doc, create=True)
            latest = pact.versions.order_by("-number").first()
            if latest is not None and without_version(latest.document) == without_version(doc):
                raise PactError(
                    f"This document is identical to {latest.label} ({latest.status}); "
                    "change something to draft a new version."
                )
            number = latest.number + 1 if latest is not None else 1
            doc = canonical_document(doc, version=number)
            return _create_version(pact, doc, by=by)
    except IntegrityError:
        raise PactError("Another version was saved at the same time; try again.") from None


def update_draft(
    version: PactVersion, document: Any, *, by: AbstractBaseUser | None
) -> PactVersion:
    """Replace a draft's document and clauses. Anything but a draft is refused: an active
    version is immutable (amend = new version)."""
    _require_role(by, "author_pacts", "author pacts")
    doc = canonical_document(document, version=version.number)
    with transaction.atomic():
        current = (
            PactVersion.objects.select_for_update().select_related("pact__agent").get(pk=version.pk)
        )
        if current.status != VersionStatus.DRAFT:
            raise PactError(
                f"{current.label} is {current.status}: only a draft can be edited. "
                "Draft a new version to amend it."
            )
        problems = []
        if doc["metadata"]["key"] != current.pact.key:
            problems.append(f"metadata.key: must stay '{current.pact.key}' (this draft's pact)")
        if doc["metadata"]["agent"] != current.pact.agent.key:
            problems.append(f"metadata.agent: must stay '{current.pact.agent.key}'")
        if problems:
            raise PactError(problems)
        fields = _document_fields(doc)
        if fields["sha256"] == current.sha256:
            return current
        PactVersion.objects.filter(pk=current.pk).update(**fields)
        current.clauses.all().delete()  # a draft's clauses have no evaluations yet
        current.refresh_from_db()
        _create_clauses(current, doc)
        return current


def activate_version(version: PactVersion, *, by: AbstractBaseUser | None) -> PactVersion:
    """Make a draft the active version of its pact; the previous active one is superseded."""
    _require_role(by, "author_pacts", "activate pacts")
    with transaction.atomic():
        pact = Pact.objects.select_for_update().select_related("agent").get(pk=version.pact_id)
        current = PactVersion.objects.select_for_update().get(pk=version.pk)
        current.pact = pact
        if current.status == VersionStatus.ACTIVE:
            raise PactError(f"{current.label} is already the active version.")
        if current.status != VersionStatus.DRAFT:
            raise PactError(
                f"{current.label} is {current.status}: only a draft can be activated. "
                "Draft a new version from it to bring it back."
            )
        _activate(pact, current, by=by)
    return current


def mark_reviewed(
    version: PactVersion, *, by: AbstractBaseUser | None, on: date | None = None
) -> PactVersion:
    """Record a review of the active version on `on` (default today): its review clock restarts.

    The document keeps the review date it was written with (it is immutable); the version's
    `last_reviewed` is the review on record.
    """
    _require_role(by, "author_pacts", "review pacts")
    now = timezone.now()
    today = now.date()
    on = on or today
    if on > today:
        raise PactError("A review date cannot be in the future.")
    with transaction.atomic():
        current = PactVersion.objects.select_for_update().select_related("pact").get(pk=version.pk)
        if current.status != VersionStatus.ACTIVE:
            raise PactError(
                f"{current.label} is {current.status}: only the active version is reviewed."
            )
        if current.last_reviewed is not None and on < current.last_reviewed:
            raise PactError(
                f"{current.label} was last reviewed on {current.last_reviewed.isoformat()}; "
                "a review cannot be recorded before that."
            )
        review_due = on + timedelta(days=current.review_cadence_days)
        stale_since = None if review_due >= today else (current.stale_since or now)
        PactVersion.objects.filter(pk=current.pk).update(
            last_reviewed=on, last_reviewed_by=by, review_due=review_due, stale_since=stale_since
        )
        current.refresh_from_db()
    return current


def mark_stale_versions(today: date | None = None) -> tuple[int, int]:
    """Set stale_since on active versions past their review date, clear it on the others.

    Idempotent; returns (newly stale, no longer stale). Called by the beat task.
    """
    now = timezone.now()
    today = today or now.date()
    stale = PactVersion.objects.stale(today)
    with transaction.atomic():
        newly = list(
            stale.filter(stale_since__isnull=True)
            .select_for_update(of=("self",))
            .values_list("pk", "pact__key", "pact__agent__key", "number", "review_due")
        )
        marked = PactVersion.objects.filter(pk__in=[row[0] for row in newly]).update(
            stale_since=now
        )
        for _pk, pact_key, agent_key, number, review_due in newly:
            publish(
                "pact.stale",
                {
                    "pact": pact_key,
                    "version": number,
                    "agent": agent_key,
                    "review_due": review_due.isoformat() if review_due else None,
                    "url": reverse("pact_version", args=[pact_key, number]),
                },
            )
        cleared = (
            PactVersion.objects.filter(stale_since__isnull=False)
            .exclude(pk__in=stale.values("pk"))
            .update(stale_since=None)
        )
    return marked, cleared


# ---------------------------------------------------------------- evaluations


def _schedule_breach_incident(evaluation_id: int) -> None:
    """After commit, ask the incidents app to open (or attach to) the incident for a breach."""
    run_task_on_commit("trustdesk.incidents.tasks.open_incident_for_breach", evaluation_id)


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(value) if isinstance(value, int | str | Decimal) else None
    except InvalidOperation:
        return None
    if number is None or not number.is_finite():
        return None
    return number


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = parse_datetime(value.strip())
        except ValueError:
            return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        return None
    return value


def _clean_items(items: Sequence[Any], source_name: str, prefix: str) -> tuple[list, list[str]]:
    """Check the shape and values of every item; return (cleaned items, problems)."""
    now = timezone.now()
    cleaned, problems = [], []
    for i, item in enumerate(items):
        at = f"{prefix}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{at}: must be an object")
            continue
        item_problems = []
        for field in ("pact", "clause", "external_id"):
            text = item.get(field)
            if text is None:
                item_problems.append(f"{at}.{field}: is required")
            elif not isinstance(text, str) or not text.strip():
                item_problems.append(f"{at}.{field}: must be non-empty text")
            elif len(text) > 200:
                item_problems.append(f"{at}.{field}: must be at most 200 characters")
        value = _as_decimal(item.get("value"))
        if "value" not in item or item.get("value") is None:
            item_problems.append(f"{at}.value: is required")
        elif value is None or isinstance(item.get("value"), str):
            item_problems.append(f"{at}.value: must be a number")
        elif abs(value) >= MAX_VALUE:
            item_problems.append(f"{at}.value: must be below 10^16 in size")
        measured_at = _as_time(item.get("measured_at"))
        if item.get("measured_at") is None:
            item_problems.append(f"{at}.measured_at: is required")
        elif measured_at is None:
            item_problems.append(
                f"{at}.measured_at: must be an ISO 8601 time with a time zone "
                "(like 2026-11-02T10:00:00Z)"
            )
        elif measured_at > now + FUTURE_TOLERANCE:
            item_problems.append(f"{at}.measured_at: cannot be in the future")
        elif problem := past_time_problem(measured_at, now=now):
            item_problems.append(f"{at}.measured_at: {problem}")
        source = item.get("source")
        if source is not None and source != source_name:
            item_problems.append(
                f"{at}.source: must be '{source_name}', the source of this token (or left out)"
            )
        unknown = sorted(
            set(item) - {"pact", "clause", "value", "measured_at", "external_id", "source"}
        )
        item_problems.extend(f"{at}.{name}: is not a known field" for name in unknown)
        if item_problems:
            problems.extend(item_problems)
            continue
        cleaned.append(
            {
                "index": i,
                "pact": item["pact"],
                "clause": item["clause"],
                # 8 decimal places is what is stored and judged; half-even like the database.
                "value": value.quantize(VALUE_QUANTUM, rounding=ROUND_HALF_EVEN),
                "measured_at": measured_at,
                "external_id": item["external_id"],
            }
        )
    return cleaned, problems


def record_evaluations(
    items: Sequence[Any],
    *,
    token: ApiToken | None = None,
    source: str | None = None,
    log: EvaluationLog | None = None,
    prefix: str = "evaluations",
) -> list[Evaluation]:
    """Record measured values for clauses of active pact versions, all or nothing.

    Each item: pact (key), clause (key), value (number), measured_at (aware time or ISO 8601),
    external_id, optional source (must be the token's). A clause whose document names an
    evaluation source accepts only that source's token. Pass/fail comes from Clause.passes; a
    failure of a restrict/suspend clause is a breach, handed to the incidents app on commit.
    Idempotent on (source, external_id): a repeat returns the stored evaluation (with
    `.duplicate = True`). Raises PactError naming every bad item by its path.

    Give either the API `token` that posted them, or (trusted callers on the server, like
    `manage.py ingest_eval_log`) the `source` name itself. `log` is the file that produced them
    (pacts.eval_sources); new evaluations link to it.
    """
    if (token is None) == (source is None):
        raise ValueError("record_evaluations takes a token or a source, not both or neither")
    if token is not None and token.revoked_at is not None:
        raise PactError("This API token was revoked.")
    source_name = token.source if token is not None else source
    if token is not None and not token.has_scope("evaluations:write"):
        raise PactError("This API token does not have the scope evaluations:write.")
    where = prefix or "(body)"
    if len(items) > MAX_EVALUATIONS_PER_BATCH:
        raise PactError(f"{where}: at most {MAX_EVALUATIONS_PER_BATCH} evaluations per request")
    if not items:
        raise PactError(f"{where}: give at least one evaluation")
    cleaned, problems = _clean_items(items, source_name, prefix)
    # Clauses of the active versions, in one query.
    pact_keys = {c["pact"] for c in cleaned}
    clauses = {
        (c.version.pact.key, c.key): c
        for c in Clause.objects.filter(
            version__status=VersionStatus.ACTIVE, version__pact__key__in=pact_keys
        ).select_related("version__pact")
    }
    known_pacts = set(Pact.objects.filter(key__in=pact_keys).values_list("key", flat=True))
    active_pacts = {pact for pact, _ in clauses}
    first_by_id: dict[str, dict] = {}
    for c in cleaned:
        at = f"{prefix}[{c['index']}]"
        if c["pact"] not in known_pacts:
            problems.append(f"{at}.pact: no pact '{c['pact']}'")
        elif c["pact"] not in active_pacts:
            problems.append(f"{at}.pact: pact '{c['pact']}' has no active version")
        elif (c["pact"], c["clause"]) not in clauses:
            problems.append(
                f"{at}.clause: the active version of '{c['pact']}' has no clause '{c['clause']}'"
            )
        else:
            clause = clauses[(c["pact"], c["clause"])]
            # A clause that names its evaluation source takes measurements from that source
            # only: otherwise anyone with a token could grade it (the `measurement` assumption).
            if clause.source and clause.source != source_name:
                problems.append(
                    f"{at}.clause: '{c['clause']}' is evaluated by source '{clause.source}', "
                    f"not '{source_name}'"
                )
            c["clause_obj"] = clause
        earlier = first_by_id.get(c["external_id"])
        if earlier is None:
            first_by_id[c["external_id"]] = c
        elif any(earlier[k] != c[k] for k in ("pact", "clause", "value", "measured_at")):
            problems.append(
                f"{at}.external_id: '{c['external_id']}' is also used by "
                f"{prefix}[{earlier['index']}] with different values"
            )
    if problems:
        raise PactError(problems)

    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _store_evaluations(cleaned, token, source_name, log)
        except IntegrityError:
            # A concurrent request stored one of these idempotency keys first: the second
            # attempt finds it and returns it, as a repeat.
            if attempt == 2:
                raise PactError(
                    "These evaluations collided with a concurrent request; retry it."
                ) from None
    raise AssertionError("unreachable")


def _replay_differences(stored: Evaluation, sent: dict) -> dict[str, dict[str, str]]:
    """What a repeat of (source, external_id) says differently from the stored evaluation, as
    {field: {"stored": ..., "sent": ...}}. The stored one stands (idempotency), but a client
    replaying with another value must be told rather than believe it was recorded."""
    pairs = {
        "pact": (stored.clause.version.pact.key, sent["pact"]),
        "clause": (stored.clause.key, sent["clause"]),
        "value": (format_decimal(stored.value), format_decimal(sent["value"])),
        "measured_at": (format_time(stored.measured_at), format_time(sent["measured_at"])),
    }
    return {name: {"stored": old, "sent": new} for name, (old, new) in pairs.items() if old != new}


def _store_evaluations(
    cleaned: list[dict], token: ApiToken | None, source: str, log: EvaluationLog | None
) -> list[Evaluation]:
    now = timezone.now()
    ids = [c["external_id"] for c in cleaned]
    stored = {
        e.external_id: e
        for e in Evaluation.objects.filter(source=source, external_id__in=ids).select_related(
            "clause__version__pact"
        )
    }
    new: dict[str, Evaluation] = {}
    for c in cleaned:
        if c["external_id"] in stored or c["external_id"] in new:
            continue
        clause = c["clause_obj"]
        passed = clause.passes(c["value"])
        new[c["external_id"]] = Evaluation(
            clause=clause,
            value=c["value"],
            passed=passed,
            is_breach=not passed
            and clause.on_breach in (Consequence.RESTRICT, Consequence.SUSPEND),
            measured_at=c["measured_at"],
            source=source,
            external_id=c["external_id"],
            ingested_at=now,
            log=log,
        )
    created = Evaluation.objects.bulk_create(list(new.values()))
    if any(e.pk is None for e in created):  # a backend that cannot return ids from bulk inserts
        created = list(Evaluation.objects.filter(source=source, external_id__in=list(new)))
    by_id = {e.external_id: e for e in created}
    for e in by_id.values():
        e.duplicate = False
        if e.is_breach:
            _schedule_breach_incident(e.pk)
    for e in stored.values():
        e.duplicate = True
        e.differs = {}
    for c in cleaned:
        if (e := stored.get(c["external_id"])) is not None:
            e.differs.update(_replay_differences(e, c))
    if token is not None:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    result = []
    for c in cleaned:
        e = stored.get(c["external_id"]) or by_id[c["external_id"]]
        result.append(e)
    return result


# ---------------------------------------------------------------- disputes


def _schedule_metrics_refresh(agent_id: int) -> None:
    # Evaluation pass rates feed the metrics and re-entry conditions: refresh and re-check them.
    agent_changed(agent_id)


def open_dispute(evaluation: Evaluation, *, by: AbstractBaseUser, reason: str) -> Dispute:
    """Challenge an evaluation. Anyone internal but a viewer may; one open dispute at a time."""
    _require_role(by, "open_dispute", "open disputes")
    reason = (reason or "").strip()
    if not reason:
        raise PactError("reason: say why the evaluation is wrong.")
    with transaction.atomic():
        current = Evaluation.objects.select_for_update().get(pk=evaluation.pk)
        if current.voided_at is not None:
            raise PactError("This evaluation was already voided by an upheld dispute.")
        already = Dispute.objects.filter(evaluation=current, status=DisputeStatus.OPEN).first()
        if already is not None:
            raise PactError(f"This evaluation already has an open dispute (#{already.pk}).")
        return Dispute.objects.create(evaluation=current, reason=reason, opened_by=by)


def resolve_dispute(
    dispute: Dispute, *, by: AbstractBaseUser, status: str, resolution: str
) -> Dispute:
    """Risk resolves a dispute as upheld or rejected, in writing. Upholding a dispute of an
    evaluation voids it for pass rates, scores and metrics. Whoever opened it cannot resolve it.

    A dispute of an incident's classification is resolved by the incidents lifecycle (it writes
    to the incident's log); this function hands it over, so callers need not tell them apart.
    """
    _require_role(by, "resolve_dispute", "resolve disputes")
    if dispute.incident_id is not None:
        # The incidents app owns that rule and registers it here (pacts never import incidents).
        resolve = hooks.the_one(hooks.INCIDENT_DISPUTE_RESOLUTION)
        if resolve is None:
            raise PactError("Disputes of an incident's classification need the incidents app.")
        try:
            return resolve(dispute, by=by, status=status, resolution=resolution)
        except Refused as exc:
            raise PactError(exc.problems) from None
    if status not in (DisputeStatus.UPHELD, DisputeStatus.REJECTED):
        raise PactError("status: must be upheld or rejected")
    resolution = (resolution or "").strip()
    if not resolution:
        raise PactError("resolution: write the resolution others will read.")
    with transaction.atomic():
        current = Dispute.objects.select_for_update().get(pk=dispute.pk)
        if current.status != DisputeStatus.OPEN:
            raise PactError(f"Dispute #{current.pk} was already resolved ({current.status}).")
        if current.opened_by_id == by.pk:
            raise PactError("You opened this dispute: another risk owner must resolve it.")
        now = timezone.now()
        Dispute.objects.filter(pk=current.pk).update(
            status=status, resolution=resolution, resolved_by=by, resolved_at=now
        )
        current.refresh_from_db()
        if status == DisputeStatus.UPHELD:
            Evaluation.objects.filter(pk=current.evaluation_id, voided_at__isnull=True).update(
                voided_at=now
            )
        agent_id = (
            Evaluation.objects.filter(pk=current.evaluation_id)
            .values_list("clause__version__pact__agent_id", flat=True)
            .get()
        )
        _schedule_metrics_refresh(agent_id)
    return current


# ---------------------------------------------------------------- API tokens


def _token_scopes(scopes: Sequence[str] | None, problems: list[str]) -> list[str]:
    """The scopes, checked, without repeats, in the order given. `agent:KEY` names an agent."""
    out: list[str] = []
    for scope in scopes or ():
        scope = (scope or "").strip() if isinstance(scope, str) else ""
        if scope in out:
            continue
        if scope in TOKEN_SCOPES:
            out.append(scope)
        elif scope.startswith(AGENT_SCOPE_PREFIX):
            key = scope.removeprefix(AGENT_SCOPE_PREFIX)
            if not key or not Agent.objects.filter(key=key).exists():
                problems.append(f"scopes: no agent '{key}' for the scope '{scope[:100]}'")
            else:
                out.append(scope)
        else:
            problems.append(
                f"scopes: '{scope[:100]}' is not a scope (evaluations:write, read or agent:KEY)"
            )
    if not out and not problems:
        problems.append("scopes: give the token at least one scope")
    return out


def create_api_token(
    *,
    source: str,
    label: str = "",
    scopes: Sequence[str] | None = ("evaluations:write",),
    by: AbstractBaseUser | None,
) -> tuple[ApiToken, str]:
    """A new bearer token named `source` with `scopes` (docs/design.md section 12:
    `evaluations:write`, `read`, `agent:KEY`). Returns (token, secret): the secret is shown once and
    only its SHA-256 is stored. A name has at most one live token; for `evaluations:write` the name
    is the evaluation source. `by=None` is the system (`manage.py api_token create`)."""
    _require_role(by, "manage_tokens", "manage API tokens")
    source = (source or "").strip()
    problems: list[str] = []
    if not source:
        problems.append("source: name the token (for evaluations, the source, like refund-audit)")
    elif len(source) > 200 or not set(source) <= SOURCE_CHARS:
        problems.append("source: letters, digits and - _ . : / only, at most 200 characters")
    if len(label or "") > 200:
        problems.append("label: at most 200 characters")
    checked = _token_scopes(scopes, problems)
    if problems:
        raise PactError(problems)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            live = ApiToken.objects.select_for_update().filter(
                source=source, revoked_at__isnull=True
            )
            existing = live.first()
            if existing is not None:
                raise PactError(
                    f"source: '{source}' already has a live token ({existing.prefix}…); "
                    "revoke it first"
                )
            token = ApiToken.objects.create(
                source=source,
                label=(label or "").strip(),
                token_hash=sha256_hex(secret),
                prefix=secret[:12],
                scopes=checked,
                created_by=by,
            )
    except IntegrityError:
        raise PactError(f"source: '{source}' already has a live token; revoke it first") from None
    return token, secret


def revoke_api_token(token: ApiToken, *, by: AbstractBaseUser | None) -> ApiToken:
    _require_role(by, "manage_tokens", "manage API tokens")
    with transaction.atomic():
        current = ApiToken.objects.select_for_update().get(pk=token.pk)
        if current.revoked_at is not None:
            raise PactError(f"The token of '{current.source}' was already revoked.")
        ApiToken.objects.filter(pk=current.pk).update(revoked_at=timezone.now(), revoked_by=by)
        current.refresh_from_db()
    return current
