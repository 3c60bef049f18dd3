"""Response targets: time to containment per severity (docs/design.md section 13).

Defaults sev1 15 min, sev2 1 h, sev3 4 h, sev4 24 h; a pact version may set its own as ISO 8601
durations under `spec.response_targets` (e.g. `{sev1: PT10M}`); severities it does not name keep
the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_duration

DEFAULT_TARGETS = {
    "sev1": timedelta(minutes=15),
    "sev2": timedelta(hours=1),
    "sev3": timedelta(hours=4),
    "sev4": timedelta(hours=24),
}


def parse_target(text: object) -> timedelta | None:
    """A positive ISO 8601 duration in days, hours, minutes, seconds (PT15M, PT1H, P1D)."""
    if not isinstance(text, str) or not text.startswith("P"):
        return None
    value = parse_duration(text)
    return value if value is not None and value > timedelta(0) else None


def targets_of(document: dict | None) -> dict[str, timedelta]:
    """The containment targets of a pact document (defaults where it names none)."""
    out = dict(DEFAULT_TARGETS)
    spec = (document or {}).get("spec") or {}
    for severity, text in (spec.get("response_targets") or {}).items():
        value = parse_target(text)
        if severity in out and value is not None:
            out[severity] = value
    return out


@dataclass(frozen=True)
class ContainmentClock:
    target: timedelta
    elapsed: timedelta
    running: bool  # not contained yet

    @property
    def overrun(self) -> bool:
        return self.elapsed > self.target

    @property
    def remaining(self) -> timedelta:
        return self.target - self.elapsed

    @property
    def deadline_seconds(self) -> int:
        return math.floor(self.remaining.total_seconds())  # -0.5 s is overrun, as -1

    @property
    def elapsed_seconds(self) -> int:
        return int(self.elapsed.total_seconds())


def containment_clock(incident, now: datetime | None = None) -> ContainmentClock:
    """The incident's containment clock: running until contained, then stopped at the first
    containment. Reads the pact version's document when it is loaded with the incident."""
    version = incident.pact_version
    targets = targets_of(version.document if version is not None else None)
    target = targets.get(incident.severity, DEFAULT_TARGETS["sev4"])
    end = incident.contained_at or (now or timezone.now())
    return ContainmentClock(
        target=target, elapsed=end - incident.detected_at, running=incident.contained_at is None
    )


def format_span(value: timedelta) -> str:
    """A duration in the two largest units: '2 d 3 h', '4 h 10 min', '12 min', '40 s'."""
    seconds = int(abs(value.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"
