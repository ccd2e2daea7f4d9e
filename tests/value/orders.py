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
    """Return customer_id, timestamp (UTC), revenue of each `Order Completed`.

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
    frame = frame.to_pandas()
    revenue = [float(json.loads(p or "{}").get("revenue") or 0.0) for p in frame["properties"]]
    return frame.drop(columns="properties").assign(revenue=revenue)
