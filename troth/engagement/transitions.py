"""How customers move through the cycle: transition matrices, inflow and outflow, cohort flows.

Read from `customer_stage_history` (one row per customer and snapshot where the customer had
activity in the window). Between two consecutive snapshots a customer moves from one stage to
another; `none` means no stage (no activity in the window) and `new` a customer first seen after
the earlier snapshot.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from troth.engagement.stages import STAGES
from troth.errors import TrothError
from troth.privacy.consent import personalised_only
from troth.store import Database, Session

__all__ = ["MOVED_TO", "STATES", "latest_moves", "stage_movers", "stage_transitions"]

# Row and column states of a transition matrix, in the order they are shown.
STATES = ("new", "none", *STAGES)
# States a customer can move to: nobody becomes new (the matrix's "new" column stays empty).
MOVED_TO = ("none", *STAGES)


def _history(session: Session) -> tuple[ir.Table, ir.Table, list[tuple[Any, str]]]:
    """Return the stored history, lifetime features and (snapshot_at, period) oldest first."""
    try:
        history, features = (
            session.table("customer_stage_history"),
            session.table("customer_features"),
        )
        periods = session.table("stage_history_periods")
    except TrothError as exc:
        raise TrothError("no stage history yet: run `troth score` first") from exc
    return history, features, session.fetch(periods.order_by("snapshot_at"))


def _pairs(history: ir.Table, features: ir.Table, snapshots: list[tuple[Any, str]]) -> ir.Table:
    """Return one row per customer and consecutive snapshot pair: from_state, to_state."""
    steps = ibis.memtable(
        {
            "from_at": [at for at, _ in snapshots[:-1]],
            "to_at": [at for at, _ in snapshots[1:]],
            "to_period": [period for _, period in snapshots[1:]],
        },
        schema={"from_at": "timestamp('UTC')", "to_at": "timestamp('UTC')", "to_period": "string"},
    )
    before = history.join(steps, history.snapshot_at == steps.from_at).select(
        "customer_id", "to_at", "to_period", from_stage=history.stage
    )
    later, later_steps = history.view(), steps.view()
    after = later.join(later_steps, later.snapshot_at == later_steps.to_at).select(
        "customer_id", "to_at", "to_period", to_stage=later.stage
    )
    moved = (
        before.outer_join(
            after,
            (before.customer_id == after.customer_id) & (before.to_at == after.to_at),
        )
        .select(
            customer_id=ibis.coalesce(before.customer_id, after.customer_id),
            to_at=ibis.coalesce(before.to_at, after.to_at),
            period=ibis.coalesce(before.to_period, after.to_period),
            was_there=before.customer_id.notnull(),
            from_stage=before.from_stage.fill_null("none"),
            to_stage=after.to_stage.fill_null("none"),
        )
        .view()
    )  # a new relation: the joins below are on these columns, not the chain's tables
    # Absent before: "new" when first seen after the earlier snapshot, else "none" (lapsed).
    first = features.select("customer_id", first_seen=features.first_seen)
    joined = moved.left_join(first, "customer_id")
    starts = steps.view().select(step_to="to_at", step_from="from_at")
    joined = joined.join(starts, joined.to_at == starts.step_to)
    was_new = joined.first_seen.isnull() | (joined.first_seen >= joined.step_from)
    return joined.select(
        "customer_id",
        "period",
        from_state=joined.was_there.ifelse(joined.from_stage, was_new.ifelse("new", "none")),
        to_state=joined.to_stage,
    )


def latest_moves(session: Session) -> ir.Table | None:
    """Return customer_id, from_state, to_state between the last two snapshots (the states of
    stage_transitions' latest matrix), None when the history has fewer than two snapshots."""
    history, features, snapshots = _history(session)
    if len(snapshots) < 2:
        return None
    return _pairs(history, features, snapshots[-2:]).select("customer_id", "from_state", "to_state")


def stage_transitions(db: Database) -> dict[str, Any]:
    """Return transition matrices, inflow/outflow per stage and cohort flows, per period.

    Counts are customers. `matrices[period][from][to]`: customers moving from one state at the
    previous snapshot to another at this one. `cohorts[first-seen month][period][stage]`.
    """
    with db.session() as session:
        history, features, snapshots = _history(session)
        periods = [period for _, period in snapshots]
        counts: list[tuple] = []
        if len(snapshots) > 1:
            pairs = _pairs(history, features, snapshots)
            counts = session.fetch(
                pairs.group_by("period", "from_state", "to_state").aggregate(n=pairs.count())
            )
        cohort = features.first_seen.truncate("M")
        flows = history.join(features.select("customer_id", cohort=cohort), "customer_id")
        cohort_rows = session.fetch(
            flows.group_by("cohort", "period", "stage").aggregate(n=flows.count())
        )
    matrices = {period: {s: dict.fromkeys(STATES, 0) for s in STATES} for period in periods[1:]}
    for period, from_state, to_state, n in counts:
        matrices[period][from_state][to_state] += int(n)
    flows_out: dict[str, dict[str, dict[str, int]]] = {}
    for period, matrix in matrices.items():
        flows_out[period] = {
            stage: {
                "inflow": sum(matrix[s][stage] for s in STATES if s != stage),
                "outflow": sum(matrix[stage][s] for s in STATES if s != stage),
                "stayed": matrix[stage][stage],
            }
            for stage in STAGES
        }
    cohorts: dict[str, dict[str, dict[str, int]]] = {}
    for month, period, stage, n in sorted(cohort_rows, key=lambda r: (str(r[0]), r[1])):
        label = "unknown" if month is None else f"{month:%Y-%m}"
        by_stage = cohorts.setdefault(label, {}).setdefault(period, {})
        by_stage[stage or "none"] = int(n)
    return {
        "periods": periods,
        "snapshots": [at.isoformat() for at, _ in snapshots],
        "matrices": matrices,
        "flows": flows_out,
        "cohorts": cohorts,
    }


def stage_movers(db: Database, limit: int = 5) -> dict[str, list[dict[str, Any]]]:
    """Return the customers who climbed and fell the most stages between the last two snapshots."""
    with db.session() as session:
        history, _features, snapshots = _history(session)
        if len(snapshots) < 2:
            return {"up": [], "down": []}
        (before_at, _), (after_at, _) = snapshots[-2], snapshots[-1]
        before = history.filter(history.snapshot_at == before_at).select(
            "customer_id", from_stage=history.stage, from_rank=history.stage_rank
        )
        later = history.view()
        after = later.filter(later.snapshot_at == after_at).select(
            "customer_id", to_stage=later.stage, to_rank=later.stage_rank
        )
        both = before.outer_join(after, before.customer_id == after.customer_id)
        moves = both.select(
            customer_id=ibis.coalesce(before.customer_id, after.customer_id),
            from_stage=before.from_stage,
            to_stage=after.to_stage,
            change=after.to_rank.fill_null(0) - before.from_rank.fill_null(0),
        )
        moves = personalised_only(session, moves)
        up = moves.filter(moves.change > 0).order_by([moves.change.desc(), "customer_id"])
        down = moves.filter(moves.change < 0).order_by([moves.change.asc(), "customer_id"])
        up, down = session.fetch_dicts(up.limit(limit)), session.fetch_dicts(down.limit(limit))
    return {"up": up, "down": down}
