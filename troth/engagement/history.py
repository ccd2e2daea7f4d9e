"""Stage history: every customer's stage at the end of each recent period (week or month).

Each snapshot's window features are those `customer_features(events, end, since=end - window)`
gives for the stage rules — the same aggregates, over the same event facts — computed for all
period ends in one range join over the facts materialised once (`stage_inputs`). The tests hold
both to the same stages. The latest snapshot is the scoring run itself, as of its date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir

from troth.engagement.features import event_facts, feature_aggregates
from troth.engagement.stages import StageRule, assign_stages
from troth.errors import TrothError

__all__ = ["PERIODS", "period_label", "period_starts", "stage_inputs", "stage_snapshots"]

PERIODS = ("month", "week")


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
    """Return the event facts before `until` (features.event_facts): what snapshots aggregate.

    Materialise it once per scoring run: every snapshot reads it.
    """
    return event_facts(events, until)


def stage_snapshots(
    inputs: ir.Table,
    ends: list[datetime],
    window_days: int,
    rules: tuple[StageRule, ...],
) -> ir.Table:
    """Return customer_id, snapshot_at and the stage columns at each end in `ends`.

    `inputs` is `stage_inputs(...)`. Each snapshot aggregates the features its rules read
    exactly as `customer_features` does, over the window before its end. A customer with no own
    event in that window has no row for that end.
    """
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
    aggregates = feature_aggregates(e)
    # What the rules and the cognitive-loyalty flag read; unresolved tickets are derived.
    read = {c.feature for rule in rules for req in rule.requirements for c in req}
    read |= {"events", "nps_last", "csat_mean", "rating_mean"}
    if "tickets_unresolved" in read:
        read = (read - {"tickets_unresolved"}) | {"tickets_opened", "tickets_resolved"}
    unknown = read - set(aggregates)
    if unknown:
        raise TrothError(f"stage history cannot compute {sorted(unknown)}")
    counted = e.group_by("customer_id", "snapshot_at").aggregate(
        **{name: aggregates[name] for name in sorted(read)}
    )
    features = counted.filter(counted.events > 0)
    if "tickets_opened" in read:
        features = features.mutate(
            tickets_unresolved=ibis.greatest(features.tickets_opened - features.tickets_resolved, 0)
        )
    return assign_stages(features, rules, keys=("customer_id", "snapshot_at"))
