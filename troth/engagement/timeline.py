"""A customer's latest interactions, newest first: what they did and what the company did."""

from __future__ import annotations

import json
from typing import Any

from troth.engagement.features import COMPANY_CONTACTS
from troth.identity import events_with_customer
from troth.store import Database

__all__ = ["TIMELINE_PROPERTIES", "customer_timeline"]

# Properties worth a glance in a timeline line, in the order they are shown.
TIMELINE_PROPERTIES = (
    "revenue",
    "nps",
    "csat",
    "rating",
    "topic",
    "purpose",
    "solicited",
    "customer_local_time",
    "resolution",
    "reason_given",
    "granted",
    "kind",
    "name",
    "category",
    "text",
    "title",
    "path",
    "query",
)
_TEXT_MAX = 60  # characters of free text kept in a summary line


def customer_timeline(db: Database, customer_id: str, limit: int = 15) -> list[dict[str, Any]]:
    """Return the customer's `limit` latest events: time, what, channel, who started it, details."""
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        mine = events.filter(events.customer_id == customer_id)
        latest = mine.order_by([mine.timestamp.desc(), mine.seq.desc()]).limit(limit)
        rows = session.fetch_dicts(
            latest.select("timestamp", "type", "event", "channel", "properties")
        )
    return [
        {
            "at": row["timestamp"].isoformat(),
            "what": row["event"] or row["type"],
            "channel": row["channel"],
            "by": "company" if row["event"] in COMPANY_CONTACTS else "customer",
            "details": _details(row["properties"]),
        }
        for row in rows
    ]


def _details(properties: str | None) -> dict[str, Any]:
    """Return the properties worth showing in a timeline line, free text cut short."""
    if not properties:
        return {}
    values = json.loads(properties)
    if not isinstance(values, dict):
        return {}
    shown = {}
    for key in TIMELINE_PROPERTIES:
        value = values.get(key)
        if value is None:
            continue
        if isinstance(value, str) and len(value) > _TEXT_MAX:
            value = value[: _TEXT_MAX - 1] + "…"
        shown[key] = value
    return shown
