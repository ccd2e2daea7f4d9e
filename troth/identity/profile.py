"""What is known about one customer: found by any identifier, assembled from the store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import msgspec

from troth.errors import CustomerNotFound
from troth.identity.resolution import event_node
from troth.store import Database, Session

__all__ = ["customer_events", "customer_profile", "event_counts", "find_customer", "latest_traits"]


def customer_events(
    events: ir.Table, user_ids: Sequence[str], anonymous_ids: Sequence[str]
) -> ir.Table:
    """Return the events carrying any of the customer's userIds or anonymousIds."""
    condition = ibis.literal(False)
    if user_ids:
        condition = condition | events.user_id.isin(list(user_ids))
    if anonymous_ids:
        condition = condition | events.anonymous_id.isin(list(anonymous_ids))
    return events.filter(condition)


def event_counts(events: ir.Table) -> ir.Table:
    """Return the count of events per name (track event name, else the call type)."""
    named = events.mutate(label=events.event.coalesce(events.type))
    return named.group_by("label").agg(count=named.count()).order_by(ibis.desc("count"), "label")


def latest_traits(traits_in_time_order: Iterable[str | None]) -> dict:
    """Return traits merged oldest to newest, so each trait holds its latest value."""
    merged: dict = {}
    for text in traits_in_time_order:
        if text:
            value = msgspec.json.decode(text)
            if isinstance(value, dict):
                merged.update(value)
    return merged


def _holders(session: Session, identifier: str) -> list[str]:
    """Return the customers holding `identifier` as an id, a seen identifier, or an email/phone."""
    ids = session.table("identifiers")
    text = identifier.strip()
    direct = ids.filter(
        (ids.customer_id == text)
        | ((ids.value == text) & ids.first_seen.notnull())
        | ((ids.kind == "email") & (ids.value == text.lower()))
    ).select("customer_id")
    found = [row[0] for row in session.fetch(direct.distinct())]
    if found:
        return found
    # Emails and phones are graph nodes only when merging on them: otherwise look in traits.
    events = session.table("events")
    identify = events.filter(events.type == "identify")
    email = identify.traits["email"].str.strip().lower()
    phone = identify.traits["phone"].str.strip()
    owners = identify.filter((email == text.lower()) | (phone == text)).select(
        node=event_node(identify)
    )
    matched = ids.semi_join(owners, ids.node == owners.node).select("customer_id").distinct()
    return [row[0] for row in session.fetch(matched)]


def find_customer(db: Database, identifier: str) -> str:
    """Return the customer_id holding `identifier` (a customer id, userId, anonymousId, email…)."""
    with db.session() as session:
        found = _holders(session, identifier)
    if not found:
        raise CustomerNotFound(f"no customer has the identifier '{identifier}'")
    if len(found) > 1:
        raise CustomerNotFound(
            f"'{identifier}' belongs to several customers ({', '.join(sorted(found))}); "
            "ask for one of them by id"
        )
    return found[0]


def customer_profile(db: Database, identifier: str) -> dict[str, Any]:
    """Return the customer's id, identifiers, latest traits, event counts and merge history."""
    customer_id = find_customer(db, identifier)
    with db.session() as session:
        ids = session.table("identifiers")
        idents = session.fetch_dicts(
            ids.filter((ids.customer_id == customer_id) & ids.first_seen.notnull())
            .select("kind", "value", "first_seen", "last_seen")
            .order_by(["kind", "value"])
        )
        user_ids = [i["value"] for i in idents if i["kind"] == "user_id"]
        anonymous_ids = [i["value"] for i in idents if i["kind"] == "anonymous_id"]
        events = customer_events(session.table("events"), user_ids, anonymous_ids)
        count, first, last = session.fetch(
            events.aggregate(
                n=events.count(), first=events.timestamp.min(), last=events.timestamp.max()
            )
        )[0]
        counts = session.fetch(event_counts(events))
        with_traits = events.filter(events.traits.notnull()).order_by(["timestamp", "seq"])
        traits = session.fetch(with_traits.select(traits=with_traits.traits.cast("string")))
        history = session.table("identity_merges")
        merges = session.fetch_dicts(
            history.filter(
                (history.into_customer_id == customer_id)
                | (history.from_customer_id == customer_id)
            ).order_by("merged_at")
        )
    return {
        "customer_id": customer_id,
        "identifiers": [
            {**i, "first_seen": _iso(i["first_seen"]), "last_seen": _iso(i["last_seen"])}
            for i in idents
        ],
        "traits": latest_traits(row[0] for row in traits),
        "event_count": int(count),
        "first_seen": _iso(first),
        "last_seen": _iso(last),
        "events_by_name": {label: int(n) for label, n in counts},
        "merges": [{**m, "merged_at": _iso(m["merged_at"])} for m in merges],
    }


def _iso(value: Any) -> str | None:
    """Return a timestamp as ISO-8601 text (UTC), or None."""
    return None if value is None else value.isoformat()
