"""The broken-assumption taxonomy of docs/design.md section 5: the one list, with its
explanations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AssumptionClass:
    key: str
    label: str
    assumption: str
    maps_to: str


ASSUMPTIONS: tuple[AssumptionClass, ...] = (
    AssumptionClass(
        "capability",
        "Capability",
        "Output quality or accuracy is what was promised.",
        "NIST AI 600-1 confabulation; OWASP LLM09",
    ),
    AssumptionClass(
        "authority",
        "Authority",
        "The agent acts only within its granted task, permissions and spend.",
        "OWASP LLM06 excessive agency; agentic ASI03",
    ),
    AssumptionClass(
        "tool_use",
        "Tool use",
        "The tools it may call are called safely, with sane arguments.",
        "agentic ASI02; MITRE ATLAS AML.T0053; LLM05",
    ),
    AssumptionClass(
        "input_integrity",
        "Input integrity",
        "Untrusted input cannot change its goal (prompt injection).",
        "LLM01; ASI01; ATLAS AML.T0051",
    ),
    AssumptionClass(
        "context_integrity",
        "Context integrity",
        "Its memory, retrieval data and peer messages are not poisoned.",
        "ASI06; LLM04, LLM08",
    ),
    AssumptionClass(
        "data_handling",
        "Data handling",
        "It does not disclose personal data, secrets or other tenants' data.",
        "LLM02, LLM07; NIST 600-1 data privacy",
    ),
    AssumptionClass(
        "safety",
        "Safety",
        "It produces no harmful, dangerous or biased content.",
        "NIST 600-1; CSET AI harm taxonomy",
    ),
    AssumptionClass(
        "honesty",
        "Honesty",
        "It reports truthfully what it did, and its actions can be reconstructed.",
        "agentic T7, T8; ASI09",
    ),
    AssumptionClass(
        "reliability",
        "Reliability",
        "It stays available, bounded in cost, and does not loop or cascade.",
        "LLM10; ASI08; SRE SLOs",
    ),
    AssumptionClass(
        "drift",
        "Drift",
        "The model, prompt, tools or vendor are the ones that were evaluated.",
        "LLM03; ASI04; NIST AI RMF MANAGE 3",
    ),
    AssumptionClass(
        "oversight",
        "Oversight",
        "The kill switch and approval gates exist and cannot be bypassed.",
        "NIST AI RMF MANAGE 2.4, 4.1",
    ),
    AssumptionClass(
        "measurement",
        "Measurement",
        "The pact's own evaluation measures what it claims and is not gamed.",
        "NIST CSF 2.0 RS.AN-07",
    ),
)
ASSUMPTION_BY_KEY = {a.key: a for a in ASSUMPTIONS}
ASSUMPTION_CHOICES = [(a.key, a.label) for a in ASSUMPTIONS]

CONFIDENCE_CHOICES = [("known", "Known"), ("likely", "Likely"), ("potential", "Potential")]
HARM_CHOICES = [
    ("health", "Health"),
    ("critical_infrastructure", "Critical infrastructure"),
    ("fundamental_rights", "Fundamental rights"),
    ("property_or_environment", "Property or environment"),
]
