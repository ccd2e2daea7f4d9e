"""Stage history: every customer's stage at the end of each recent period (week or month).

Each snapshot's window features are those `customer_features(events, end, since=end - window)`
gives for the stage rules, computed for all period ends in one range join, over a slim copy of
the events (`stage_inputs`) whose few JSON values are read once. The tests hold both to the same
stages. The latest snapshot is the scoring run itself, as of its date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir

from troth.engagement.features import COMPANY_CONTACTS, TWO_WAY, utc_day
from troth.engagement.stages import StageRule, assign_stages
from troth.errors import TrothError

__all__ = ["PERIODS", "period_label", "period_starts", "stage_inputs", "stage_snapshots"]

PERIODS = ("month", "week")

# Window features the stage rules may use that count one event name: feature -> event.
_WINDOW_COUNTS = {
    "tickets_opened": "Ticket Opened",
    "tickets_resolved": "Ticket Resolved",
    "referrals_sent": "Referral Sent",
    "content_shared": "Content Shared",
    "reviews": "Review Posted",
    "community_posts": "Community Post",
    "answers_accepted": "Community Answer Accepted",
    "ideas_submitted": "Idea Submitted",
}
# Every feature a snapshot can carry; a rule naming another feature is refused up front.
SNAPSHOT_FEATURES = frozenset(
    {
        "events",
        "active_days",
        "two_way_interactions",
        "purchase_months",
        "csat_mean",
        "nps_last",
        "rating_mean",
        "tickets_unresolved",
        *_WINDOW_COUNTS,
    }
)


def period_starts(as_of: datetime, period: str, count: int) -> list[datetime]:
    """Return the starts (UTC midnights) of the `count` periods before the one holding as_of.

    Each start is also the end of the period before it: the moment its snapshot is taken.
    """
    if period not in PERIODS:
        raise TrothError(f"unknown history period '{period}'; choose one of {', '.join(PERIODS)}")
    day = as_of.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        current = day - timedelta(days=day.weekday())
        return [current - timedelta(weeks=k) for k in range(count - 1, -1, -1)]
    starts = []
    year, month = day.year, day.month
    for _ in range(count):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def period_label(end: datetime, period: str) -> str:
    """Return the name of the period a snapshot at `end` closes, e.g. '2026-09' or '2026-W39'."""
    last_day = end - timedelta(microseconds=1)
    if period == "week":
        year, week, _ = last_day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{last_day.year}-{last_day.month:02d}"


def stage_inputs(events: ir.Table, until: datetime) -> ir.Table:
    """Return the events before `until` slimmed to what the stage rules read, JSON values parsed.

    Materialise it once per scoring run: every snapshot reads it.
    """
    e = events.filter(events.timestamp < ibis.literal(until, type="timestamp('UTC')"))
    name, props = e.event, e.properties
    survey, review = name == "Survey Responded", name == "Review Posted"
    return e.select(
        "customer_id",
        "timestamp",
        "event",
        own=name.isnull() | ~name.isin(COMPANY_CONTACTS),
        day=utc_day(e.timestamp),
        order_month=(name == "Order Completed").ifelse(e.timestamp.truncate("M"), ibis.null()),
        csat=survey.ifelse(props["csat"].float, ibis.null()),
        nps=survey.ifelse(props["nps"].float, ibis.null()),
        rating=review.ifelse(props["rating"].float, ibis.null()),
    )


def stage_snapshots(
    inputs: ir.Table,
    ends: list[datetime],
    window_days: int,
    rules: tuple[StageRule, ...],
) -> ir.Table:
    """Return customer_id, snapshot_at and the stage columns at each end in `ends`.

    `inputs` is `stage_inputs(...)`. A customer with no own event in the window before an end
    has no row for that end.
    """
    needed = {c.feature for rule in rules for req in rule.requirements for c in req}
    unknown = needed - SNAPSHOT_FEATURES
    if unknown:
        raise TrothError(f"stage history cannot compute {sorted(unknown)}")
    if not ends:
        raise TrothError("stage history needs at least one period end")
    window = timedelta(days=window_days)
    bounds = ibis.memtable(
        {"snapshot_at": ends, "window_from": [end - window for end in ends]},
        schema={"snapshot_at": "timestamp('UTC')", "window_from": "timestamp('UTC')"},
    )
    e = inputs.join(
        bounds, (inputs.timestamp >= bounds.window_from) & (inputs.timestamp < bounds.snapshot_at)
    )
    name = e.event
    counted = e.group_by("customer_id", "snapshot_at").aggregate(
        events=e.count(where=e.own),
        active_days=e.day.nunique(where=e.own),
        two_way_interactions=e.count(where=name.isin(TWO_WAY)),
        purchase_months=e.order_month.nunique(),
        csat_mean=e.csat.mean(),
        nps_last=e.nps.argmax(e.timestamp, where=e.nps.notnull()),
        rating_mean=e.rating.mean(),
        **{col: e.count(where=name == event) for col, event in _WINDOW_COUNTS.items()},
    )
    features = counted.filter(counted.events > 0).mutate(
        tickets_unresolved=ibis.greatest(counted.tickets_opened - counted.tickets_resolved, 0),
    )
    return assign_stages(features, rules, keys=("customer_id", "snapshot_at"))
