"""factory_boy factories shared by every app's tests.

Pact versions are built as documents in the shape of docs/design.md section 4; incidents are opened
through the lifecycle, never by writing rows directly.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from trustdesk.core.canonical import canonical_json, sha256_hex
from trustdesk.pacts.models import Agent, Clause, Pact, PactVersion


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(*(Group.objects.get_or_create(name=role)[0] for role in extracted))
        self.save()


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    key = factory.Sequence(lambda n: f"agent-{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("-", " ").title())
    owner = "payments-risk"


DEFAULT_CLAUSE = {
    "key": "refund-limit",
    "statement": "Never issues a refund above 200 EUR without human approval.",
    "assumption": "authority",
    "metric": "refunds_over_limit_without_approval",
    "objective": {"op": "<=", "target": "0"},
    "window": "7d",
    "evaluation": {"method": "automated", "source": "refund-audit"},
    "on_breach": "suspend",
}


def _window_seconds(window: str) -> int:
    return int(window[:-1]) * (86400 if window.endswith("d") else 3600)


def make_pact_version(
    *,
    agent: Agent | None = None,
    pact_key: str | None = None,
    number: int | None = None,
    status: str = "active",
    clauses: list[dict] | None = None,
    evidence_required: list[str] | None = None,
    risk_tier: str = "high",
    cadence_days: int = 30,
    last_reviewed: date | None = None,
) -> PactVersion:
    """A pact version with its clauses, its canonical document and SHA-256."""
    agent = agent or AgentFactory()
    pact_key = pact_key or f"{agent.key}-pact"
    pact, _ = Pact.objects.get_or_create(
        key=pact_key, defaults={"agent": agent, "title": f"Pact of {agent.name}"}
    )
    if number is None:
        number = pact.versions.count() + 1
    clauses = clauses if clauses is not None else [DEFAULT_CLAUSE]
    evidence_required = (
        evidence_required
        if evidence_required is not None
        else ["transcript", "tool_calls", "evaluation_result", "impact_assessment"]
    )
    last_reviewed = last_reviewed or timezone.now().date()
    document = {
        "apiVersion": "trustdesk/v1",
        "kind": "Pact",
        "metadata": {
            "key": pact.key,
            "agent": agent.key,
            "title": pact.title,
            "owner": pact.owner or agent.owner,
            "version": number,
        },
        "spec": {
            "risk_tier": risk_tier,
            "review": {"cadence_days": cadence_days, "last_reviewed": last_reviewed.isoformat()},
            "evidence_required": evidence_required,
            "clauses": clauses,
        },
    }
    canonical = canonical_json(document)
    if status == "active":
        pact.versions.filter(status="active").update(status="superseded")
    version = PactVersion.objects.create(
        pact=pact,
        number=number,
        status=status,
        document=document,
        canonical=canonical,
        sha256=sha256_hex(canonical),
        risk_tier=risk_tier,
        review_cadence_days=cadence_days,
        last_reviewed=last_reviewed,
        review_due=PactVersion.compute_review_due(last_reviewed, cadence_days, date.today()),
        evidence_required=evidence_required,
        activated_at=timezone.now() if status == "active" else None,
    )
    for position, c in enumerate(clauses):
        Clause.objects.create(
            version=version,
            position=position,
            key=c["key"],
            statement=c["statement"],
            assumption=c["assumption"],
            metric=c["metric"],
            op=c["objective"]["op"],
            target=Decimal(str(c["objective"]["target"])),
            window=c["window"],
            window_seconds=_window_seconds(c["window"]),
            method=c["evaluation"]["method"],
            source=c["evaluation"].get("source", ""),
            on_breach=c["on_breach"],
        )
    return version


def make_incident(
    *,
    agent: Agent | None = None,
    version: PactVersion | None = None,
    by=None,
    severity: str = "sev2",
    title: str = "Refund over limit",
    detected_at=None,
):
    """Open an incident through the lifecycle (state `detected`)."""
    from trustdesk.incidents.journal import open_incident

    version = version or make_pact_version(agent=agent)
    agent = agent or version.pact.agent
    return open_incident(
        agent=agent,
        by=by,
        title=title,
        severity=severity,
        detected_at=detected_at,
        pact_version=version,
        clauses=list(version.clauses.all()),
    )


def upload(content: bytes, name: str = "transcript.txt", content_type: str = "text/plain"):
    """A file as a form or an action receives it."""
    return SimpleUploadedFile(name, content, content_type=content_type)
