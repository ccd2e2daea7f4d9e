"""Insert hand-written events for the engagement tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from troth.events.schema import EVENT_COLUMNS, EVENT_SCHEMA, rows_to_table
from troth.store import Database


def add_events(
    db: Database,
    rows: list[dict],
    default_at: datetime,
    message_id: Callable[[int, dict, datetime], str] | None = None,
) -> None:
    """Insert `rows` as events.

    Keys: event, type (track), user (u1), anonymous (none), at (`default_at`), channel, and
    properties, traits and context as dicts. Message ids are unique per row unless `message_id`
    says otherwise.
    """
    full = []
    for n, r in enumerate(rows):
        when = r.get("at", default_at)
        values = {
            "message_id": (
                message_id(n, r, when)
                if message_id
                else f"m{n}-{r.get('event')}-{r.get('user', 'u1')}-{when}"
            ),
            "type": r.get("type", "track"),
            "event": r.get("event"),
            "user_id": r.get("user", "u1"),
            "anonymous_id": r.get("anonymous"),
            "timestamp": when,
            "received_at": when,
            "channel": r.get("channel"),
            **{k: json.dumps(r[k]) for k in ("properties", "traits", "context") if k in r},
        }
        full.append(tuple(values.get(c) for c in EVENT_COLUMNS))
    db.insert_events(rows_to_table(full, EVENT_SCHEMA))
