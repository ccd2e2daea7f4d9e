"""Reading one customer: finding them by any identifier and assembling their profile."""

from __future__ import annotations

from typing import Any

import ibis

from troth.errors import CustomerNotFound
from troth.identity.profile import customer_events, event_counts, latest_traits
from troth.store.database import Database

__all__ = ["customer_profile", "find_customer"]


def find_customer(db: Database, identifier: str) -> str:
    """Return the customer_id holding `identifier` (a customer id, userId, anonymousId, email…)."""
    cur = db.cursor()
    text = identifier.strip()
    rows = cur.execute(
        "SELECT DISTINCT customer_id FROM identifiers WHERE customer_id = ? "
        "OR (value = ? AND first_seen IS NOT NULL) OR (kind = 'email' AND value = lower(?))",
        [text, text, text],
    ).fetchall()
    if not rows:
        # Emails and phones are not graph nodes unless merging on them: look in the traits.
        rows = cur.execute(
            "SELECT DISTINCT i.customer_id FROM events e JOIN identifiers i ON i.node = "
            "CASE WHEN e.user_id IS NULL THEN 'anonymous_id:' || e.anonymous_id "
            "ELSE 'user_id:' || e.user_id END "
            "WHERE e.type = 'identify' AND (lower(trim(e.traits->>'email')) = lower(?) "
            "OR trim(e.traits->>'phone') = ?)",
            [text, text],
        ).fetchall()
    if not rows:
        raise CustomerNotFound(f"no customer has the identifier '{identifier}'")
    if len(rows) > 1:
        ids = ", ".join(sorted(r[0] for r in rows))
        raise CustomerNotFound(
            f"'{identifier}' belongs to several customers ({ids}); ask for one of them by id"
        )
    return str(rows[0][0])


def customer_profile(db: Database, identifier: str) -> dict[str, Any]:
    """Return the customer's id, identifiers, latest traits, event counts and merge history."""
    customer_id = find_customer(db, identifier)
    cur = db.cursor()
    idents = cur.execute(
        "SELECT kind, value, first_seen, last_seen FROM identifiers "
        "WHERE customer_id = ? AND first_seen IS NOT NULL ORDER BY kind, value",
        [customer_id],
    ).fetchall()
    user_ids = [v for k, v, *_ in idents if k == "user_id"]
    anonymous_ids = [v for k, v, *_ in idents if k == "anonymous_id"]
    events = customer_events(db.unbound_table("events"), user_ids, anonymous_ids)
    stats = cur.execute(
        "SELECT count(*), min(timestamp), max(timestamp) FROM ("
        + ibis.to_sql(events, dialect="duckdb")
        + ")"
    ).fetchone()
    counts = cur.execute(ibis.to_sql(event_counts(events), dialect="duckdb")).fetchall()
    identify = events.filter(events.traits.notnull()).order_by(["timestamp", "seq"])
    traits_rows = cur.execute(
        ibis.to_sql(identify.select(traits=identify.traits.cast("string")), dialect="duckdb")
    ).fetchall()
    merges = cur.execute(
        "SELECT merged_at, from_customer_id, into_customer_id, identifiers_moved, reasons "
        "FROM identity_merges WHERE into_customer_id = ? OR from_customer_id = ? "
        "ORDER BY merged_at",
        [customer_id, customer_id],
    ).fetchall()
    return {
        "customer_id": customer_id,
        "identifiers": [
            {"kind": k, "value": v, "first_seen": _iso(f), "last_seen": _iso(la)}
            for k, v, f, la in idents
        ],
        "traits": latest_traits(row[0] for row in traits_rows),
        "event_count": int(stats[0]),
        "first_seen": _iso(stats[1]),
        "last_seen": _iso(stats[2]),
        "events_by_name": {label: int(n) for label, n in counts},
        "merges": [
            {
                "merged_at": _iso(at),
                "from_customer_id": src,
                "into_customer_id": dst,
                "identifiers_moved": int(n),
                "reasons": reasons,
            }
            for at, src, dst, n, reasons in merges
        ],
    }


def _iso(value: Any) -> str | None:
    """Return a timestamp as ISO-8601 text (UTC), or None."""
    return None if value is None else value.isoformat()
