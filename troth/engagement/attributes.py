"""The four engagement attributes (DESIGN §4): active, emotional, rational and ethical, 0-100.

Each attribute is a documented formula of features, its drivers. A driver's evidence is the
customer's percentile among the customers who show that behaviour at all: the share of them
whose value is at most the customer's (`cume_dist`). So the most active customer scores 1 on
it, ties share the higher rank (all-equal values all score 1), and a customer without the
behaviour (a value that is null, 0 or below) scores 0 — never a middling rank. Ranks rather
than raw counts make scores comparable across businesses whose customers buy, read or complain
at very different rates, and the share of customers who never do something does not move the
ranks of those who do.

An attribute with P positive drivers gives each driver up to 100 / P points: a positive driver
adds `100 / P * percentile`, a negative one (complaints, withdrawn consent) subtracts as much,
and the sum is clamped to [0, 100]. So 0 means no positive evidence (or negatives outweighing
it), 50 the typical customer among those who do each positive thing, 100 the top of the
population on every positive driver with nothing negative. Each driver's signed points are kept
as column `d_<attribute>_<feature>`, so the evidence behind a score is read, never recomputed.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

import ibis
import ibis.expr.types as ir

from troth.errors import TrothError

__all__ = [
    "ATTRIBUTES",
    "DRIVERS",
    "Driver",
    "attribute_scores",
    "attribute_summary",
    "driver_column",
    "driver_points",
    "top_drivers",
]

ATTRIBUTES = ("active", "emotional", "rational", "ethical")


@dataclass(frozen=True)
class Driver:
    """A feature that raises (sign +1) or lowers (sign -1) an attribute, with a reader's label."""

    feature: str
    sign: int
    label: str


DRIVERS: dict[str, tuple[Driver, ...]] = {
    # Breadth and frequency of participation, self-service and feedback.
    "active": (
        Driver("active_days", +1, "days active"),
        Driver("channels_used", +1, "channels used"),
        Driver("two_way_interactions", +1, "two-way conversations"),
        Driver("bot_chats", +1, "self-service (bot chat messages)"),
        Driver("voice_events", +1, "opinions given (surveys, reviews, feedback, ideas)"),
    ),
    # Compliments against complaints: NPS groups, review stars, complaints left open.
    "emotional": (
        Driver("promoter_answers", +1, "promoter survey answers (NPS 9-10)"),
        Driver("reviews_positive", +1, "praising reviews (4-5 stars)"),
        Driver("detractor_answers", -1, "detractor survey answers (NPS 0-6)"),
        Driver("reviews_negative", -1, "complaining reviews (1-2 stars)"),
        Driver("tickets_unresolved", -1, "tickets left unresolved"),
    ),
    # Research before buying: product information sought and read.
    "rational": (
        Driver("product_views", +1, "products viewed"),
        Driver("searches", +1, "product searches"),
        Driver("articles_read", +1, "articles read"),
    ),
    # Ethics content and causes, and trust shown through consent and data.
    "ethical": (
        Driver("ethics_content_viewed", +1, "ethics content viewed"),
        Driver("causes_supported", +1, "causes supported"),
        Driver("consents_granted", +1, "consents granted"),
        Driver("data_shared", +1, "data shared willingly"),
        Driver("consents_withdrawn", -1, "consents withdrawn"),
    ),
}


def driver_column(attribute: str, feature: str) -> str:
    """Return the name of the column holding a driver's signed points, d_<attribute>_<feature>."""
    return f"d_{attribute}_{feature}"


def driver_points(attribute: str) -> float:
    """Return the most points one driver of `attribute` can add or take away (100 / P)."""
    return 100.0 / sum(1 for d in DRIVERS[attribute] if d.sign > 0)


def _percentiles(features: ir.Table, feature: str, name: str) -> ir.Table:
    """Return (value, percentile `name`) for every value of `feature` above 0.

    The percentile is cume_dist among the customers with a positive value. It is computed over
    the distinct values and joined back: a window over every customer per driver sorts the
    whole table once per driver, several times slower at a million customers.
    """
    shown = features.filter(features[feature] > 0)
    counts = shown.group_by(value=shown[feature]).aggregate(n=shown.count())
    at_most = counts.n.cumsum(order_by=counts.value)
    return counts.select(counts.value, **{name: at_most / counts.n.sum().over()})


def attribute_scores(features: ir.Table) -> ir.Table:
    """Return customer_id, the four attributes (0-100) and every driver's signed points.

    `features` is a feature table (troth.engagement.customer_features; `troth score` passes
    the trailing window's), one row per customer; every customer in it is ranked. It is read
    once per driver, so pass a stored table rather than an expression that recomputes.
    """
    needed = {d.feature for drivers in DRIVERS.values() for d in drivers} | {"customer_id"}
    missing = sorted(needed - set(features.columns))
    if missing:
        raise TrothError(
            f"the feature table lacks {', '.join(missing)}: "
            "compute it with troth.engagement.customer_features (run `troth score` again)"
        )
    joined = features.select("customer_id", *sorted(needed - {"customer_id"}))
    points = {}
    for attribute, drivers in DRIVERS.items():
        for d in drivers:
            column = driver_column(attribute, d.feature)
            lookup = _percentiles(features, d.feature, column).rename(**{f"v_{column}": "value"})
            joined = joined.left_join(lookup, joined[d.feature] == lookup[f"v_{column}"])
            # No row in the lookup means no such behaviour: 0, not a rank.
            points[column] = d.sign * driver_points(attribute) * joined[column].fill_null(0.0)
    ranked = joined.select("customer_id", **points)
    # The points are never null, so plain LEAST/GREATEST clamp (clip() adds null handling).
    scores = {
        attribute: ibis.greatest(
            ibis.least(
                reduce(
                    operator.add, [ranked[driver_column(attribute, d.feature)] for d in drivers]
                ),
                100.0,
            ),
            0.0,
        )
        for attribute, drivers in DRIVERS.items()
    }
    return ranked.select("customer_id", *[s.name(a) for a, s in scores.items()], *points)


def top_drivers(row: Mapping[str, Any], n: int = 3) -> dict[str, list[dict[str, Any]]]:
    """Return, per attribute, the `n` drivers of a stored score row with most points either way.

    Each is {feature, label, contribution (signed points), direction ("raises"/"lowers")};
    drivers that contributed nothing are left out, so a customer without evidence has none.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for attribute, drivers in DRIVERS.items():
        found = []
        for d in drivers:
            points = row.get(driver_column(attribute, d.feature)) or 0.0
            if points:
                found.append(
                    {
                        "feature": d.feature,
                        "label": d.label,
                        "contribution": float(points),
                        "direction": "raises" if points > 0 else "lowers",
                    }
                )
        # sorted() is stable: equal weights keep the DRIVERS order.
        out[attribute] = sorted(found, key=lambda f: -abs(f["contribution"]))[:n]
    return out


def attribute_summary(scores: ir.Table) -> ir.Table:
    """Return one row per attribute: attribute, mean and median score (0-100) over customers."""
    parts = [
        scores.aggregate(
            attribute=ibis.literal(attribute),
            mean=scores[attribute].mean(),
            median=scores[attribute].median(),
        )
        for attribute in ATTRIBUTES
    ]
    return ibis.union(*parts)
