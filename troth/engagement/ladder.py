"""Added Value's engagement ladder: inform, entice, activate, reciprocate, advocate.

Each rung is read from the customer's own events before `as_of` (contacts the company started,
COMPANY_CONTACTS, are never the customer's doing):

- inform: took in what the company offers (RUNG_EVENTS["inform"], page and screen calls);
- entice: answered an invitation (clicked, searched, signed up, started a trial);
- activate: first transaction (Order Completed);
- reciprocate: gave something back: bought again in a second calendar month (UTC), answered a
  survey, reviewed, gave feedback or ideas, shared data, posted in the community;
- advocate: recommended: sent a referral, shared content, had a community answer accepted, or
  posted a review rated at least ADVOCATE_MIN_RATING.

The ladder is cumulative: a customer on rung k stands on every rung below it, so counts never
rise up the ladder. Evidence of a higher rung counts for the lower ones (nobody buys, answers a
survey or refers a friend without having been informed and enticed, though those early touches
are often untracked: store sales, imported transactions). Rungs from activate up also need a
transaction: a survey answer or a shared post from someone who never bought is enticement, not
reciprocation by a customer. A rung is reached at the first moment all of its conditions held
(`first_<rung>_at`), so the times rise up the ladder too and conversion reads as a funnel over
time. On the demo data a strict reading (own evidence on every lower rung) would drop 18 of
3,481 buyers for a missing early touch, and would leave a transactions-only store empty;
counting any higher evidence as activation would add 98 people who never bought.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import ibis
import ibis.expr.types as ir

from troth.engagement.features import COMPANY_CONTACTS
from troth.errors import TrothError
from troth.store import Database

__all__ = [
    "ADVOCATE_MIN_RATING",
    "LADDER_DOCS",
    "RUNGS",
    "RUNG_EVENTS",
    "STEPS",
    "customer_ladder",
    "ladder_distribution",
    "ladder_report",
    "ladder_summary",
]

RUNGS = ("inform", "entice", "activate", "reciprocate", "advocate")
# Each rung and the one above it: the steps whose conversion the report measures.
STEPS = tuple(pairwise(RUNGS))

# Track events that are direct evidence of each rung (DESIGN §2 taxonomy names).
RUNG_EVENTS: dict[str, tuple[str, ...]] = {
    "inform": ("Email Opened", "Article Read", "Product Viewed", "Ethics Content Viewed"),
    "entice": (
        "Email Link Clicked",
        "Products Searched",
        "Signed Up",
        "Account Created",
        "Trial Started",
    ),
    "activate": ("Order Completed",),
    "reciprocate": (
        "Survey Responded",
        "Review Posted",
        "Feedback Given",
        "Idea Submitted",
        "Data Shared",
        "Community Post",
    ),
    "advocate": (
        "Referral Sent",
        "Referral Converted",
        "Content Shared",
        "Community Answer Accepted",
    ),
}
# A review rated this high (1-5) recommends the company to whoever reads it.
ADVOCATE_MIN_RATING = 4
# Distinct purchase months that make a repeat purchase (the second month's first order counts).
REPEAT_MONTHS = 2

LADDER_DOCS: dict[str, str] = {
    "customer_id": "the customer",
    "rung": "highest rung reached (inform … advocate), null when none",
    "rung_rank": "position of that rung, 1 (inform) to 5 (advocate); 0 when none",
    **{f"reached_{rung}": f"whether the customer stands on {rung} (cumulative)" for rung in RUNGS},
    **{f"first_{rung}_at": f"when {rung} was first reached (UTC), null if never" for rung in RUNGS},
    "acquisition_channel": "context.campaign.source (else .medium, lower-cased) of the first own "
    "event, else that event's channel; 'unknown' without one",
    "segment": "the latest traits.plan from identify calls; 'unknown' without one",
}


def customer_ladder(events: ir.Table, as_of: datetime) -> ir.Table:
    """Return one row per customer with the LADDER_DOCS columns, from events before `as_of`.

    `events` must carry `customer_id` (troth.identity.events_with_customer).
    """
    cutoff = ibis.literal(as_of, type="timestamp('UTC')")
    e = events.filter(events.timestamp < cutoff)
    name, ts = e.event, e.timestamp
    own = name.isnull() | ~name.isin(COMPANY_CONTACTS)
    evidence = {rung: name.isin(events_) for rung, events_ in RUNG_EVENTS.items()}
    evidence["inform"] = evidence["inform"] | e.type.isin(["page", "screen"])
    # Read the rating only on reviews: parsing every event's JSON would double the cost.
    is_review = name == "Review Posted"
    rating = is_review.ifelse(e.properties["rating"].float, ibis.null("float64"))
    evidence["advocate"] = evidence["advocate"] | (is_review & (rating >= ADVOCATE_MIN_RATING))
    # Parse JSON once per customer, not per event: keep the first own event's context and
    # channel together (one row, so ties cannot mix two events) and only identify calls' traits.
    is_identify = e.type == "identify"
    plan = is_identify.ifelse(e.traits["plan"].str.strip().nullif(""), ibis.null("string"))
    first_touch = ibis.struct({"context": e.context, "channel": e.channel})
    per_customer = e.group_by("customer_id").aggregate(
        _first_touch=first_touch.argmin(ts, where=own),
        segment=plan.argmax(ts, where=is_identify & plan.notnull()),
        **{f"_seen_{rung}": ts.min(where=evidence[rung]) for rung in RUNGS},
    )
    campaign = per_customer._first_touch["context"]["campaign"]
    per_customer = per_customer.mutate(
        acquisition_channel=ibis.coalesce(
            campaign["source"].str.strip().lower().nullif(""),
            campaign["medium"].str.strip().lower().nullif(""),
            per_customer._first_touch["channel"],
        )
    ).drop("_first_touch")
    repeat = _repeat_purchases(e)
    t = per_customer.left_join(repeat, "customer_id").drop("customer_id_right")
    seen = {rung: t[f"_seen_{rung}"] for rung in RUNGS}
    seen["reciprocate"] = _earliest(seen["reciprocate"], t.repeat_at)
    activated = seen["activate"]
    first = {
        "inform": _earliest(*seen.values()),
        "entice": _earliest(*(seen[r] for r in RUNGS[1:])),
        "activate": activated,
        "reciprocate": _both(activated, _earliest(seen["reciprocate"], seen["advocate"])),
        "advocate": _both(activated, seen["advocate"]),
    }
    # The same rules as `first` on null tests alone: the compiled SQL stays small.
    has = {rung: t[f"_seen_{rung}"].notnull() for rung in RUNGS}
    has["reciprocate"] = has["reciprocate"] | t.repeat_at.notnull()
    reached = {
        "inform": ibis.or_(*has.values()),
        "entice": ibis.or_(*(has[r] for r in RUNGS[1:])),
        "activate": has["activate"],
        "reciprocate": has["activate"] & (has["reciprocate"] | has["advocate"]),
        "advocate": has["activate"] & has["advocate"],
    }
    top_down = [(reached[rung], i, rung) for i, rung in reversed(list(enumerate(RUNGS, 1)))]
    rank = ibis.cases(*((held, i) for held, i, _ in top_down), else_=0)
    rung_name = ibis.cases(*((held, rung) for held, _, rung in top_down), else_=None)
    return t.select(
        "customer_id",
        rung=rung_name,
        rung_rank=rank,
        **{f"reached_{rung}": reached[rung] for rung in RUNGS},
        **{f"first_{rung}_at": first[rung] for rung in RUNGS},
        acquisition_channel=t.acquisition_channel.fill_null("unknown"),
        segment=t.segment.fill_null("unknown"),
    )


def _repeat_purchases(e: ir.Table) -> ir.Table:
    """Return customer_id, repeat_at: the first order in the customer's second purchase month."""
    orders = e.filter(e.event == "Order Completed")
    months = orders.group_by(
        ["customer_id", orders.timestamp.truncate("M").name("month")]
    ).aggregate(at=orders.timestamp.min())
    nth = ibis.row_number().over(group_by=months.customer_id, order_by=months.month)
    numbered = months.mutate(nth=nth)
    # row_number counts from 0: REPEAT_MONTHS - 1 is the second distinct month.
    return numbered.filter(numbered.nth == REPEAT_MONTHS - 1).select(
        "customer_id", repeat_at=numbered.at
    )


# Stands in for "never" so LEAST skips missing times on every engine (ClickHouse's LEAST
# returns NULL when any argument is NULL).
_NEVER = datetime(9999, 12, 31, tzinfo=UTC)


def _earliest(*times: ir.TimestampValue) -> ir.TimestampValue:
    """Return the earliest non-null time, null when all are null."""
    never = ibis.literal(_NEVER, type="timestamp('UTC')")
    return ibis.least(*(t.fill_null(never) for t in times)).nullif(never)


def _both(a: ir.TimestampValue, b: ir.TimestampValue) -> ir.TimestampValue:
    """Return when both had happened (the later time), null unless both did."""
    return ibis.ifelse(a.isnull() | b.isnull(), ibis.null("timestamp('UTC')"), ibis.greatest(a, b))


def ladder_report(ladder: ir.Table) -> ir.Table:
    """Return the ladder per group: customers and counts per rung, conversions, median days.

    Rows: grouping 'overall' (group 'all'), 'segment' and 'channel' (acquisition channel).
    `<a>_to_<b>` is reached b / reached a (0-1), null when nobody reached a;
    `days_<a>_to_<b>` is the median days from reaching a to reaching b among those who did.
    """
    parts = [
        _funnel(ladder, "overall", ibis.literal("all")),
        _funnel(ladder, "segment", ladder.segment),
        _funnel(ladder, "channel", ladder.acquisition_channel),
    ]
    return ibis.union(*parts)


def _funnel(t: ir.Table, grouping: str, key: ir.StringValue) -> ir.Table:
    """Return one grouping's ladder rows (see ladder_report)."""
    day = 86_400.0
    days = {
        f"days_{a}_to_{b}": (
            (t[f"first_{b}_at"].epoch_seconds() - t[f"first_{a}_at"].epoch_seconds()) / day
        ).median()
        for a, b in STEPS
    }
    counts = t.group_by(group=key.cast("string")).aggregate(
        customers=t.count(), **{rung: t.count(where=t[f"reached_{rung}"]) for rung in RUNGS}, **days
    )
    rates = {
        f"{a}_to_{b}": ibis.ifelse(
            counts[a] == 0, ibis.null("float64"), counts[b].cast("float64") / counts[a]
        )
        for a, b in STEPS
    }
    return counts.select(
        grouping=ibis.literal(grouping),
        group=counts.group,
        customers=counts.customers,
        **{rung: counts[rung] for rung in RUNGS},
        **rates,
        **{column: counts[column] for column in days},
    )


def ladder_summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Return fetched ladder_report rows as {"overall", "by_segment", "by_channel"} for JSON.

    Each group: customers, reached (count per rung), conversion (`a_to_b`, 0-1 rounded to 4
    places, null when nobody reached a) and median_days (`a_to_b`, days, 1 place).
    """
    groups: dict[str, dict[str, dict[str, Any]]] = {"overall": {}, "segment": {}, "channel": {}}
    for row in sorted(rows, key=lambda r: (-int(r["customers"]), str(r["group"]))):
        groups[row["grouping"]][row["group"]] = _shape(row)
    overall = groups["overall"].get("all") or _shape({"customers": 0})
    return {"overall": overall, "by_segment": groups["segment"], "by_channel": groups["channel"]}


def _shape(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return one group's counts, conversions and median days (missing counts read as 0)."""
    reached = {rung: int(row.get(rung) or 0) for rung in RUNGS}
    conversion = {
        f"{a}_to_{b}": None if not reached[a] else round(reached[b] / reached[a], 4)
        for a, b in STEPS
    }
    days = {f"{a}_to_{b}": _days(row.get(f"days_{a}_to_{b}")) for a, b in STEPS}
    return {
        "customers": int(row.get("customers") or 0),
        "reached": reached,
        "conversion": conversion,
        "median_days": days,
    }


def _days(value: Any) -> float | None:
    """Return a median in days rounded to one place, None when there was none."""
    return None if value is None or value != value else round(float(value), 1)


def ladder_distribution(db: Database) -> dict[str, Any]:
    """Return ladder_summary of the stored `customer_ladder` table, with its as_of date."""
    with db.session() as session:
        try:
            ladder = session.table("customer_ladder")
        except TrothError as exc:
            raise TrothError("no ladder yet: run `troth score` first") from exc
        rows = session.fetch_dicts(ladder_report(ladder))
        as_of = session.scalar(ladder.as_of.max()) if "as_of" in ladder.columns else None
    return {"as_of": None if as_of is None else as_of.isoformat(), **ladder_summary(rows)}
