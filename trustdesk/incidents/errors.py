"""The refusals of the incidents app: a refused step (GateError) and a lost race (ConflictError).

Both are `core.errors.Refused`; callers import them from here.
"""

from __future__ import annotations

from trustdesk.core.errors import Refused
from trustdesk.incidents.models import Incident


class GateError(Refused):
    """A refused step. `problems` lists every unmet gate or bad input, in plain words."""


class ConflictError(GateError):
    """Someone else changed the incident since the form was shown (optimistic lock)."""

    status_code = 409

    def __init__(self, incident: Incident, seen_version: int, changes: list[str]):
        self.incident = incident
        self.seen_version = seen_version
        self.changes = changes
        summary = ", ".join(changes) if changes else "another step"
        super().__init__(
            f"{incident.key} changed while you were working on it ({summary}). "
            "Review the current state; nothing you submitted was saved."
        )
