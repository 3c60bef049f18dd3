"""The event types TrustDesk announces (docs/design.md section 12), and what each one means.

Domain actions announce them with `trustdesk.core.effects.publish(type, data, severity=...)` after
their transaction commits; `notify.tasks.fan_out` turns each into messages for the webhook
subscriptions, notification channels and people concerned.
"""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "incident.opened": "An incident was opened (by a person, the API or a breach).",
    "incident.state_changed": "An incident moved to another lifecycle state.",
    "agent.scope_changed": "An agent's scope changed (containment, decision, reopening).",
    "review.requested": "An incident asks for a recovery review.",
    "decision.recorded": "A recovery decision was recorded.",
    "attestation.needed": "A decision waits for attestations by other stakeholders.",
    "pact.stale": "A pact version passed its review date.",
    "obligation.due_soon": "A regulatory obligation is due within 24 hours.",
    "obligation.overdue": "A regulatory obligation passed its deadline unfiled.",
    "sharelink.viewed": "A buyer opened a diligence share link.",
}
EVENT_CHOICES = [(key, key) for key in EVENT_TYPES]

SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
# Lower is more severe: a rule with minimum sev2 hears sev1 and sev2.
SEVERITY_RANK = {s: n for n, s in enumerate(SEVERITIES)}


def parse_event_types(text: str | list[str]) -> tuple[list[str], list[str]]:
    """Split "a,b" (or a list) into (known types in the given order, problems)."""
    items = text if isinstance(text, list) else str(text or "").split(",")
    wanted: list[str] = []
    problems: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item not in EVENT_TYPES:
            problems.append(f"unknown event type '{item}': one of {', '.join(EVENT_TYPES)}")
        elif item not in wanted:
            wanted.append(item)
    if not wanted and not problems:
        problems.append("name at least one event type")
    return wanted, problems


def severity_passes(minimum: str, severity: str | None) -> bool:
    """Whether an event of `severity` reaches a rule with `minimum` ("" = every severity).

    Events that carry no severity (a stale pact, a viewed share link) are not filtered by it: the
    rule's event types decide for them.
    """
    if not minimum or not severity or severity not in SEVERITY_RANK:
        return True
    return SEVERITY_RANK[severity] <= SEVERITY_RANK.get(minimum, len(SEVERITIES))
