"""Canonical JSON (docs/design.md section 4): UTF-8, sorted keys, no insignificant whitespace,
no floats (decimals as strings), times in UTC ISO 8601 with `Z`.

The same bytes feed the event hash chain, pact document hashes and the evidence bundle, so this
is the one place that decides how a value is written.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

ZERO_HASH = "0" * 64


def format_time(value: datetime) -> str:
    """UTC ISO 8601 with a trailing Z; microseconds only when present."""
    if value.tzinfo is None:
        raise ValueError("canonical times must be timezone-aware")
    value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def format_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written canonically")
    # Normalize so that 1.50 and 1.5 hash the same, without switching to exponent notation.
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", "0"} else text


def to_canonical_value(value: Any) -> Any:
    """Recursively convert a value into the JSON subset that canonical form allows."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # Shortest round-trip repr, then as a decimal string: 0.95 -> "0.95".
        return format_decimal(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON keys must be strings, not {type(key).__name__}")
            out[key] = to_canonical_value(item)
        return out
    if isinstance(value, list | tuple):
        return [to_canonical_value(item) for item in value]
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(value: Any) -> str:
    return json.dumps(
        to_canonical_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def strict_json_loads(text: str | bytes) -> Any:
    """Parse JSON the way every document TrustDesk takes in is read: decimals stay exact (0.1 is
    Decimal("0.1"), never a float) and a key given twice in one object is refused (ValueError),
    since which of the two values counts would otherwise be a guess."""
    return json.loads(text, parse_float=Decimal, object_pairs_hook=_refuse_duplicate_keys)
