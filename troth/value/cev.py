"""Customer engagement value: CEV = CLV + CRV + CIV + CKV (Kumar et al. 2010).

Kumar, Aksoy, Donkers, Venkatesan, Wiesel and Tillmanns (2010), "Undervalued or overvalued
customers: capturing total customer engagement value", J. Service Research 13(3), value a
customer by four contributions: their own purchases (customer lifetime value, CLV), the
customers they bring through referral (CRV), their influence on other customers through
word of mouth (CIV), and the knowledge they give the company (CKV). The paper defines the
components; it leaves their measurement to each business. Troth measures them from events
over one horizon H (`[value] horizon_months`), the same as CLV's, all in the currency of the
order revenues:

- **CLV_i**: the discounted margin of i's expected purchases over the next H months
  (BG/NBD or Pareto/NBD times Gamma-Gamma, `troth.value.clv`), times `margin`.
- **CRV_i = incrementality * Σ_j CLV_j**, over the customers j whose `Referral Converted`
  names i as the referrer (its `referred_user_id` resolved to a customer). A customer referred
  more than once is credited to the earliest converted referral only, and self-referrals are
  ignored. `incrementality` (`referral_incrementality`) is the share of referred customers who
  would not have joined without the referral (Kumar, Petersen & Leone 2007 ask them); the
  referred customers' own CLV already discounts for their churn and the horizon.
- **CIV_i = V_new * conversion * Σ_e valence_e * reach_e** over i's `Review Posted` and
  `Content Shared` events in the trailing H months, taken as the rate of the next H months.
  valence is (rating - 3) / 2 for a review (a 5-star review +1, a 1-star review -1: negative
  word of mouth loses customers) and +1 for a share; reach is the event's `reach` property, or
  `default_reach` people when it has none. conversion (`influence_conversion`) is the number
  of new customers won per person reached, and V_new the expected CLV of a new customer
  (first purchase plus the model's expected repeat purchases of a new customer).
- **CKV_i = idea_value * adopted ideas + feedback_value * feedback given**, over the trailing
  H months: an idea counts once (by `idea_id`) when any of its `Idea Submitted` events says
  `adopted: true`; feedback is each `Feedback Given`.
- **CEV_i = CLV_i + CRV_i + CIV_i + CKV_i**. CIV may be negative; the others are not.

The Ibis expressions below gather each component's evidence per customer; `engagement_value`
combines them with the CLVs in pandas (the CLVs come from NumPy models).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from troth.identity import node_key

__all__ = [
    "CEV_EVENTS",
    "REFERRAL_COLUMNS",
    "engagement_value",
    "influence",
    "knowledge",
    "referrals",
]

CEV_EVENTS = (
    "Referral Converted",
    "Review Posted",
    "Content Shared",
    "Idea Submitted",
    "Feedback Given",
)
REFERRAL_COLUMNS = ("referrer_id", "referred_id", "converted_at")


def referrals(events: ir.Table, identifiers: ir.Table) -> ir.Table:
    """Return referrer_id, referred_id, converted_at: each referred customer's referrer.

    `events` carry `customer_id` (the referrer: the one who sent the `Referral Converted`). The
    referred customer is the owner of `properties.referred_user_id`; referrals naming a user id
    Troth has not seen yet are left out until it has.
    """
    converted = events.filter(events.event == "Referral Converted")
    pairs = converted.select(
        referrer_id=converted.customer_id,
        _node=node_key("user_id", converted.properties["referred_user_id"].str),
        converted_at=converted.timestamp,
    )
    owners = identifiers.select(_node=identifiers.node, referred_id=identifiers.customer_id)
    joined = pairs.join(owners, "_node")
    joined = joined.filter(joined.referrer_id != joined.referred_id)
    # First converted referral wins: one referred customer is brought once.
    return joined.group_by("referred_id").aggregate(
        referrer_id=joined.referrer_id.argmin(joined.converted_at),
        converted_at=joined.converted_at.min(),
    )


def influence(events: ir.Table, since: datetime, default_reach: float) -> ir.Table:
    """Return customer_id, reviews, shares, reach and net_reach (people) since `since`.

    net_reach is Σ valence * reach over the customer's reviews and shares (see module doc).
    """
    start = ibis.literal(since, type="timestamp('UTC')")
    said = events.filter(
        events.event.isin(("Review Posted", "Content Shared")) & (events.timestamp >= start)
    )
    is_review = said.event == "Review Posted"
    rating = said.properties["rating"].float
    valence = is_review.ifelse(((rating - 3.0) / 2.0).clip(-1.0, 1.0).fill_null(0.0), 1.0)
    reach = said.properties["reach"].float
    reach = (reach.notnull() & (reach >= 0)).ifelse(reach, float(default_reach))
    return said.group_by("customer_id").aggregate(
        reviews=is_review.sum(),
        shares=(~is_review).sum(),
        reach=reach.sum(),
        net_reach=(valence * reach).sum(),
    )


def knowledge(events: ir.Table, since: datetime) -> ir.Table:
    """Return customer_id, adopted_ideas and feedback (counts) since `since`."""
    start = ibis.literal(since, type="timestamp('UTC')")
    recent = events.filter(events.timestamp >= start)
    ideas = recent.filter(recent.event == "Idea Submitted")
    adopted = ideas.filter(ideas.properties["adopted"].bool.fill_null(False))
    idea_key = adopted.properties["idea_id"].str.coalesce(adopted.message_id)
    adopted_ideas = adopted.group_by("customer_id").aggregate(adopted_ideas=idea_key.nunique())
    given = recent.filter(recent.event == "Feedback Given")
    feedback = given.group_by("customer_id").aggregate(feedback=given.count())
    both = adopted_ideas.outer_join(feedback, "customer_id")
    return both.select(
        customer_id=both.customer_id.coalesce(both.customer_id_right),
        adopted_ideas=both.adopted_ideas.fill_null(0),
        feedback=both.feedback.fill_null(0),
    )


def engagement_value(
    customers: pd.DataFrame,
    referred: pd.DataFrame,
    influenced: pd.DataFrame,
    known: pd.DataFrame,
    new_customer_value: float,
    settings: Mapping[str, float],
) -> pd.DataFrame:
    """Return `customers` (indexed by customer_id, with `clv`) plus the CEV columns, currency.

    Adds referred_customers, crv, reviews, shares, reach, net_reach, civ, adopted_ideas,
    feedback, ckv and cev. `referred` has REFERRAL_COLUMNS, `influenced` and `known` the
    columns of `influence` and `knowledge`; `settings` is `[value]`.
    """
    out = customers.copy()
    clv = out["clv"].fillna(0.0)
    referred = referred[referred["referred_id"].isin(out.index)]
    brought = referred.assign(value=clv.reindex(referred["referred_id"]).to_numpy())
    by_referrer = brought.groupby("referrer_id")["value"].agg(["count", "sum"])
    out["referred_customers"] = by_referrer["count"].reindex(out.index).fillna(0).astype("int64")
    out["crv"] = float(settings["referral_incrementality"]) * by_referrer["sum"].reindex(
        out.index
    ).fillna(0.0)

    said = influenced.set_index("customer_id").reindex(out.index)
    for column in ("reviews", "shares"):
        out[column] = said[column].fillna(0).astype("int64")
    out["reach"] = said["reach"].fillna(0.0)
    out["net_reach"] = said["net_reach"].fillna(0.0)
    per_person = float(settings["influence_conversion"]) * new_customer_value
    out["civ"] = per_person * out["net_reach"]

    ideas = known.set_index("customer_id").reindex(out.index)
    out["adopted_ideas"] = ideas["adopted_ideas"].fillna(0).astype("int64")
    out["feedback"] = ideas["feedback"].fillna(0).astype("int64")
    out["ckv"] = (
        float(settings["idea_value"]) * out["adopted_ideas"]
        + float(settings["feedback_value"]) * out["feedback"]
    )
    out["cev"] = clv + out["crv"] + out["civ"] + out["ckv"]
    parts = out[["crv", "civ", "ckv", "cev"]].to_numpy()
    if not np.all(np.isfinite(parts)):
        raise ValueError("engagement value is not finite: a CLV or a setting is NaN or infinite")
    return out
