"""What is known about one customer, as Ibis expressions and a pure traits merge."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.types as ir
import msgspec

__all__ = ["customer_events", "event_counts", "latest_traits"]


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
    return named.group_by("label").agg(count=named.count()).order_by(ibis.desc("count"))


def latest_traits(traits_in_time_order: Iterable[str | None]) -> dict:
    """Return traits merged oldest to newest, so each trait holds its latest value."""
    merged: dict = {}
    for text in traits_in_time_order:
        if text:
            value = msgspec.json.decode(text)
            if isinstance(value, dict):
                merged.update(value)
    return merged
