"""Store-wide counts shown by `troth demo` and the API."""

from __future__ import annotations

from typing import Any

from troth.store.database import Database

__all__ = ["store_summary"]


def store_summary(db: Database, top: int = 40) -> dict[str, Any]:
    """Return counts of customers, identifiers, events (by name, by channel), merges, rejects."""
    cur = db.cursor()
    customers, identifiers = cur.execute(
        "SELECT count(DISTINCT customer_id), count(*) FILTER (WHERE first_seen IS NOT NULL) "
        "FROM identifiers"
    ).fetchone()
    events, first, last = cur.execute(
        "SELECT count(*), min(timestamp), max(timestamp) FROM events"
    ).fetchone()
    by_name = cur.execute(
        "SELECT coalesce(event, type) AS label, count(*) AS n FROM events "
        "GROUP BY label ORDER BY n DESC, label LIMIT ?",
        [top],
    ).fetchall()
    by_channel = cur.execute(
        "SELECT coalesce(channel, '(none)') AS c, count(*) AS n FROM events "
        "GROUP BY c ORDER BY n DESC, c"
    ).fetchall()
    merges, merged_customers = cur.execute(
        "SELECT count(*), count(DISTINCT from_customer_id) FROM identity_merges"
    ).fetchone()
    multi = cur.execute(
        "SELECT count(*) FROM (SELECT customer_id FROM identifiers "
        "WHERE kind = 'anonymous_id' AND first_seen IS NOT NULL GROUP BY customer_id) a "
        "JOIN (SELECT DISTINCT customer_id FROM identifiers WHERE kind = 'user_id' "
        "AND first_seen IS NOT NULL) u USING (customer_id)"
    ).fetchone()[0]
    rejects = cur.execute("SELECT count(*) FROM rejects").fetchone()[0]
    # Customers with the most identifiers make the best examples of identity resolution.
    examples = cur.execute(
        "SELECT min(value) FILTER (WHERE kind = 'user_id') AS user_id, count(*) AS n "
        "FROM identifiers WHERE first_seen IS NOT NULL GROUP BY customer_id "
        "HAVING user_id IS NOT NULL ORDER BY n DESC, user_id LIMIT 3"
    ).fetchall()
    return {
        "customers": int(customers),
        "identifiers": int(identifiers),
        "events": int(events),
        "first_event": None if first is None else first.isoformat(),
        "last_event": None if last is None else last.isoformat(),
        "events_by_name": {k: int(v) for k, v in by_name},
        "events_by_channel": {k: int(v) for k, v in by_channel},
        "identity_merges": int(merges),
        "customers_merged_away": int(merged_customers),
        "customers_anonymous_then_identified": int(multi),
        "rejects": int(rejects),
        "example_user_ids": [row[0] for row in examples],
    }
