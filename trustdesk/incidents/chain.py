"""The event hash chain (docs/design.md section 4).

An event's canonical form is the canonical JSON of
    {"incident": key, "seq": n, "type": t, "at": "...Z", "by": username or null, "data": {...}}
and hash = sha256("trustdesk-event-v1\\n" + prev_hash + canonical), hex; the first prev_hash is
64 zeros. `recorded_at` is deliberately outside the hash so that an import replays history into
the same chain it was exported from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trustdesk.core.canonical import ZERO_HASH, canonical_json, sha256_hex

HASH_PREFIX = "trustdesk-event-v1\n"


def event_document(
    *, incident_key: str, seq: int, type: str, at: datetime, by: str | None, data: dict[str, Any]
) -> dict[str, Any]:
    return {"incident": incident_key, "seq": seq, "type": type, "at": at, "by": by, "data": data}


def canonical_event(**fields: Any) -> str:
    return canonical_json(event_document(**fields))


def event_hash(prev_hash: str, canonical: str) -> str:
    return sha256_hex(HASH_PREFIX + prev_hash + canonical)


@dataclass(frozen=True)
class BrokenLink:
    incident_key: str
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"{self.incident_key}: event {self.seq}: {self.problem}"


def first_broken_link(incident_key: str, events: Iterable[Any]) -> BrokenLink | None:
    """Check one incident's events (ordered by seq) and return the first broken link, if any.

    Each event must carry seq, type, at, actor_name, data, prev_hash, hash and canonical. Every
    column is checked against the stored canonical text, and the text against the hash.
    """
    prev = ZERO_HASH
    expected_seq = 1
    for ev in events:
        if ev.seq != expected_seq:
            return BrokenLink(incident_key, ev.seq, f"expected seq {expected_seq} (a gap or swap)")
        if ev.prev_hash != prev:
            return BrokenLink(incident_key, ev.seq, "prev_hash does not match the previous hash")
        if event_hash(ev.prev_hash, ev.canonical) != ev.hash:
            return BrokenLink(
                incident_key, ev.seq, "hash does not match the stored canonical bytes"
            )
        try:
            rebuilt = canonical_event(
                incident_key=incident_key,
                seq=ev.seq,
                type=ev.type,
                at=ev.at,
                by=ev.actor_name or None,
                data=ev.data,
            )
        except (TypeError, ValueError) as exc:
            return BrokenLink(incident_key, ev.seq, f"fields cannot be written canonically: {exc}")
        if rebuilt != ev.canonical:
            return BrokenLink(
                incident_key, ev.seq, "fields do not match the stored canonical bytes"
            )
        prev = ev.hash
        expected_seq += 1
    return None


CHAIN_FIELDS = ("incident_id", "seq", "type", "at", "actor_name", "data", "prev_hash", "hash")


def verify_incidents(incidents) -> tuple[int, int, list[BrokenLink]]:
    """Check the chains of a queryset of incidents in a constant number of streamed queries.

    Beyond each link, the chain's end must match the incident's recorded head (`event_count`,
    `last_hash`), so a deleted last event is caught too. Returns (incidents checked, events
    checked, the first broken link of each broken incident).
    """
    from itertools import groupby

    from trustdesk.incidents.models import Event

    heads = {
        pk: (key, count, last)
        for pk, key, count, last in incidents.order_by().values_list(
            "pk", "key", "event_count", "last_hash"
        )
    }
    broken: list[BrokenLink] = []
    seen: set[int] = set()
    total = 0
    rows = (
        Event.objects.filter(incident_id__in=incidents.order_by().values("pk"))
        .order_by("incident_id", "seq")
        .only(*CHAIN_FIELDS, "canonical")
        .iterator(chunk_size=2000)
    )
    for incident_id, group in groupby(rows, key=lambda e: e.incident_id):
        key, count, last_hash = heads[incident_id]
        seen.add(incident_id)
        events = list(group)
        total += len(events)
        link = first_broken_link(key, events)
        if link is None and (events[-1].seq != count or events[-1].hash != last_hash):
            link = BrokenLink(
                key,
                events[-1].seq,
                f"the chain ends here but the incident records {count} events "
                "ending at another hash (events missing or head altered)",
            )
        if link is not None:
            broken.append(link)
    for pk, (key, count, _) in heads.items():
        if pk not in seen:
            broken.append(BrokenLink(key, 1, f"no events, but the incident records {count}"))
    broken.sort(key=lambda b: (len(b.incident_key), b.incident_key))
    return len(heads), total, broken
