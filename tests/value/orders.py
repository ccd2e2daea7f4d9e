"""Read a store's orders without the value step's own expressions: the tests' oracle input."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from troth.identity import events_with_customer
from troth.store import Database


def stored_orders(
    db: Database, before: datetime | None = None, through: bool = False
) -> pd.DataFrame:
    """Return customer_id, timestamp (UTC), revenue of each `Order Completed` of a customer
    who consents to being scored.

    Orders at or after `before` are left out, or only those after it with `through`. Revenue
    is read from the properties JSON in Python; an order without one is worth 0.
    """
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        orders = events.filter(events.event == "Order Completed")
        if before is not None:
            orders = orders.filter(
                orders.timestamp <= before if through else orders.timestamp < before
            )
        frame = session.fetch_arrow(orders.select("customer_id", "timestamp", "properties"))
        consents = session.fetch_arrow(
            events.filter(events.event == "Consent Updated").select(
                "customer_id", "timestamp", "seq", "properties"
            )
        ).to_pandas()
    frame = frame.to_pandas()
    frame = frame[~frame["customer_id"].isin(withdrawn(consents))]
    revenue = [float(json.loads(p or "{}").get("revenue") or 0.0) for p in frame["properties"]]
    return frame.drop(columns="properties").assign(revenue=revenue)


def withdrawn(consents: pd.DataFrame) -> set[str]:
    """Return the customers whose latest answer for analytics or profiling is 'no' (opt-out
    regime: both granted without an answer), from Consent Updated events read in Python."""
    answers: dict[tuple[str, str], tuple[object, int, bool]] = {}
    for row in consents.itertuples():
        props = json.loads(row.properties or "{}")
        purpose, granted = str(props.get("purpose", "")).strip().lower(), props.get("granted")
        if purpose not in ("analytics", "profiling") or not isinstance(granted, bool):
            continue
        key = (row.customer_id, purpose)
        if key not in answers or (row.timestamp, row.seq) > answers[key][:2]:
            answers[key] = (row.timestamp, row.seq, granted)
    return {customer for (customer, _), (*_, granted) in answers.items() if not granted}
