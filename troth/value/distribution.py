"""Histograms of customer value (CLV, CEV) among buyers, counted in the database."""

from __future__ import annotations

import math
from typing import Any

from troth.engagement.distributions import bin_counts
from troth.errors import TrothError
from troth.store import Database

__all__ = ["value_edges", "value_histograms"]

# Round steps of a log scale: value is skewed, a few customers are worth 100x the median.
_STEPS = (1.0, 2.5, 5.0)
_DECADES = 4


def value_edges(low: float, high: float) -> list[float]:
    """Return log-spaced round edges (1, 2.5, 5 x 10^k) from 0 up to `high`, and `low` if < 0."""
    edges = [0.0]
    if high > 0:
        top = math.floor(math.log10(high))
        for k in range(top - _DECADES + 1, top + 1):
            edges += [m * 10**k for m in _STEPS if m * 10**k <= high]
    if low < 0:
        edges.insert(0, float(math.floor(low)))
    return edges


def value_histograms(db: Database) -> dict[str, dict[str, Any]]:
    """Return, for CLV and CEV (currency), the buyers in each bin of log-spaced round edges."""
    with db.session() as session:
        try:
            values = session.table("customer_value")
        except TrothError as exc:
            raise TrothError("no customer values yet: run `troth score` first") from exc
        buyers = values.filter(values.orders > 0)
        extent = session.fetch_dicts(
            buyers.aggregate(
                clv_min=buyers.clv.min(),
                clv_max=buyers.clv.max(),
                cev_min=buyers.cev.min(),
                cev_max=buyers.cev.max(),
            )
        )[0]
        edges = {
            c: value_edges(float(extent[f"{c}_min"] or 0), float(extent[f"{c}_max"] or 0))
            for c in ("clv", "cev")
        }
        counted = bin_counts(session, buyers, edges)
    return {c: {"bins": counted[c]} for c in ("clv", "cev")}
