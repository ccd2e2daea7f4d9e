"""Histograms of the last scoring: attributes and card balances, counted in the database.

A dashboard must stay fast and legible at any number of customers, so it is given counts per
bin, never the customers. A bin holds the values `from` <= value < `to`; a bin without `from`
or `to` is open on that side, so the bins of a histogram hold every customer with a value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ibis.expr.types as ir

from troth.engagement.attributes import ATTRIBUTES
from troth.errors import TrothError
from troth.store import Database, Session

__all__ = [
    "ATTRIBUTE_EDGES",
    "attribute_histograms",
    "bin_counts",
    "card_histogram",
    "nice_edges",
    "scored_customers",
]

# Attribute scores are 0-100: ten bins of ten points, the last holding 90 to 100.
ATTRIBUTE_EDGES = tuple(float(edge) for edge in range(0, 100, 10))


def bin_counts(
    session: Session, table: ir.Table, columns: dict[str, Sequence[float]]
) -> dict[str, list[dict[str, Any]]]:
    """Return, per column, the customers in each bin of its edges, counted in one scan.

    Edges e0 < e1 < ... give the bins [e0, e1), ..., [e_last, +inf); values below e0 and
    missing values are not counted.
    """
    counts: dict[str, ir.Scalar] = {}
    for name, edges in columns.items():
        column = table[name]
        for i, low in enumerate(edges):
            inside = column >= low
            if i + 1 < len(edges):
                inside = inside & (column < edges[i + 1])
            counts[f"{name}__{i}"] = table.count(where=inside)
    if not counts:
        return {}
    row = session.fetch_dicts(table.aggregate(**counts))[0]
    return {
        name: [
            {
                "from": low,
                "to": edges[i + 1] if i + 1 < len(edges) else None,
                "customers": int(row[f"{name}__{i}"] or 0),
            }
            for i, low in enumerate(edges)
        ]
        for name, edges in columns.items()
    }


def nice_edges(low: float, high: float, bins: int = 10) -> list[float]:
    """Return about `bins` round-numbered edges (steps of 1, 2 or 5 x 10^k) from `low` to `high`."""
    if high <= low:
        return [math.floor(low)]
    raw = (high - low) / bins
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    count = math.floor((high - start) / step) + 1
    return [float(start + i * step) for i in range(count)]


def scored_customers(session: Session) -> ir.Table:
    """Return the last scoring's customers with their attributes (0 without activity)."""
    try:
        stages = session.table("customer_stage")
        scores = session.table("customer_attributes")
    except TrothError as exc:
        raise TrothError("no scores yet: run `troth score` first") from exc
    joined = stages.select("customer_id").left_join(
        scores.select("customer_id", *ATTRIBUTES), "customer_id"
    )
    # As `list_customers` reads them: no activity in the window means every attribute is 0.
    return joined.select("customer_id", **{a: joined[a].fill_null(0.0) for a in ATTRIBUTES})


def attribute_histograms(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Return, per attribute (0-100), the scored customers in each ten-point bin."""
    with db.session() as session:
        rows = scored_customers(session)
        return bin_counts(session, rows, dict.fromkeys(ATTRIBUTES, ATTRIBUTE_EDGES))


def card_histogram(db: Database, bins: int = 12) -> dict[str, Any]:
    """Return the card balances (points) of the scored customers in round-numbered bins.

    A customer without card entries has a balance of 0.
    """
    with db.session() as session:
        rows = _card_balances(session)
        extent = session.fetch_dicts(
            rows.aggregate(low=rows.card_balance.min(), high=rows.card_balance.max())
        )[0]
        low, high = extent["low"] or 0, extent["high"] or 0
        edges = nice_edges(float(low), float(high), bins)
        counted = bin_counts(session, rows, {"card_balance": edges})["card_balance"]
    return {"min": int(low), "max": int(high), "bins": counted}


def _card_balances(session: Session) -> ir.Table:
    """Return the scored customers with their card balance (0 without entries)."""
    try:
        stages = session.table("customer_stage")
        balances = session.table("card_balance")
    except TrothError as exc:
        raise TrothError("no scores yet: run `troth score` first") from exc
    joined = stages.select("customer_id").left_join(
        balances.select("customer_id", "balance"), "customer_id"
    )
    return joined.select("customer_id", card_balance=joined.balance.fill_null(0))
