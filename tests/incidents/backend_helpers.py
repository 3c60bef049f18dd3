"""Helpers for the incidents backend tests: walk an incident through the lifecycle."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tests import builders
from tests.builders import fresh, walk
from trustdesk.incidents.models import Incident

__all__ = ["advance", "fresh", "incident_in"]


def advance(incident: Incident, to: str, *, by=None, at=None) -> Incident:
    """Walk an incident forward to state `to` through the lifecycle (tests/builders.py)."""
    return walk(incident, to, by=by, at=at)


def incident_in(state: str, *, by=None, version=None, detected_at=None, **kw) -> Incident:
    """builders.incident_in, detected a day ago unless told."""
    detected_at = detected_at or timezone.now() - timedelta(days=1)
    return builders.incident_in(state, by=by, version=version, detected_at=detected_at, **kw)
