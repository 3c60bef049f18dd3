"""Bounds shared by every input: text a database can store, and times that can be true.

PostgreSQL refuses NUL characters in text and UTF-8 cannot encode a lone surrogate (which JSON's
"\\ud800" escape can produce): either would otherwise surface as a 500 deep inside a save. Times
before EARLIEST_TIME are typing mistakes (year 1, 0001-01-01 from an empty date picker) that would
sit outside every metrics window while still counting as open; times after now + FUTURE_TOLERANCE
where the past is required are clock errors. A time typed as text (a command's option, a query
parameter) is read by one rule, `parse_utc_time`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone

EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
#: Clock skew allowed for "not in the future" (a sender's clock a little ahead of ours).
FUTURE_TOLERANCE = timedelta(minutes=5)
#: How far ahead a time that may be in the future (a meeting) can be.
LATEST_FUTURE = timedelta(days=5 * 366)

_BAD_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None when it can."""
    match = _BAD_CHARACTERS.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return f"contains a lone surrogate (\\u{ord(match.group()):04x}), which is not valid Unicode"


def text_problems(value: object, path: str = "") -> list[str]:
    """Every string in a JSON-like value (keys included) that cannot be stored, each as
    "path: problem", paths written as the exchange format writes them (`incidents[0].key`)."""
    found: list[str] = []
    if isinstance(value, str):
        if problem := text_problem(value):
            found.append(f"{path or '(value)'}: {problem}")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (problem := text_problem(key)):
                found.append(f"{path or '(document)'}: a key {problem}")
                continue
            found.extend(text_problems(item, where))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found.extend(text_problems(item, f"{path}[{i}]"))
    return found


def parse_utc_time(raw: str) -> datetime:
    """A time typed on a command line or in a query, in UTC: `YYYY-MM-DD` is midnight UTC and an
    ISO 8601 time without an offset is taken as UTC. ValueError when it is neither."""
    text = raw.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time.min, tzinfo=UTC)
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def past_time_problem(value: datetime, *, now: datetime | None = None) -> str | None:
    """Why `value` cannot be a time that already happened, or None."""
    return _time_problem(value, now, FUTURE_TOLERANCE, "cannot be in the future")


def planned_time_problem(value: datetime, *, now: datetime | None = None) -> str | None:
    """Why `value` cannot be a planned time (past or future, within reason), or None."""
    too_late = f"must be within {LATEST_FUTURE.days // 366} years from now"
    return _time_problem(value, now, LATEST_FUTURE, too_late)


def _time_problem(
    value: datetime, now: datetime | None, ahead: timedelta, too_late: str
) -> str | None:
    if value < EARLIEST_TIME:
        return f"must be on or after {EARLIEST_TIME:%Y-%m-%d} (UTC)"
    if value > (now or timezone.now()) + ahead:
        return too_late
    return None
