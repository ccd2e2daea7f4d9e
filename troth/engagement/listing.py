"""Lists of customers by stage, phase, cognitive loyalty, ladder rung, last move and risk,
from the last scoring."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir

from troth.engagement.attributes import ATTRIBUTES
from troth.engagement.ladder import RUNGS
from troth.engagement.stages import PHASES, STAGES
from troth.engagement.transitions import MOVED_TO, STATES, latest_moves
from troth.errors import TrothError
from troth.store import Database, Session

__all__ = ["LIST_COLUMNS", "RANGES", "SORTS", "example_customers", "list_customers"]

LIST_COLUMNS = (
    "customer_id",
    "stage",
    "phase",
    "cognitive_loyalty",
    "last_seen",
    "recency_days",
    "events",
    "orders",
    "revenue",
    "two_way_interactions",
    *ATTRIBUTES,
    "card_balance",
)
# Sort keys, largest first, except recency_days: the most recent first.
SORTS = (
    "recency_days",
    "events",
    "orders",
    "revenue",
    "two_way_interactions",
    "stage",
    *ATTRIBUTES,
)
# Columns a list can be narrowed to a range of (besides `extra`'s): from <= value < to.
RANGES = (
    "recency_days",
    "events",
    "orders",
    "revenue",
    "two_way_interactions",
    *ATTRIBUTES,
    "card_balance",
)
Range = tuple[float | None, float | None]


def list_customers(
    db: Database,
    *,
    stage: str | None = None,
    phase: str | None = None,
    cognitive_loyalty: bool = False,
    sort: str = "revenue",
    limit: int = 50,
    offset: int = 0,
    extra: tuple[str, tuple[str, ...]] | None = None,
    ranges: Mapping[str, Range] | None = None,
    rung: str | None = None,
    moved_from: str | None = None,
    moved_to: str | None = None,
    at_risk: bool = False,
) -> dict[str, Any]:
    """Return {"total", "customers"}: the matching customers, sorted, one page of them.

    `extra` names a stored per-customer table and columns of it (e.g. the value step's
    `customer_value` and clv, cev, p_alive) to show too, to sort by (largest first) and to
    narrow. `ranges` maps a column of RANGES or `extra` to (from, to): from <= value < to,
    either end None for open; a customer without a value (no P(alive)) is then left out.

    `rung` keeps the customers who reached that rung of the ladder (at least: the ladder's
    counts are cumulative). `moved_from`/`moved_to` keep the customers by their move between
    the last two snapshots, in the states of the transition matrix: both given, that matrix
    cell (equal: those who stayed); one alone, a change of state (the stage's outflow or
    inflow). `at_risk` keeps the at-risk customers of `extra`'s table (customer_value).
    """
    extra_table, extra_columns = extra or ("", ())
    if stage is not None and stage not in STAGES:
        raise TrothError(f"unknown stage '{stage}'; choose one of {', '.join(STAGES)}")
    phases = tuple(dict.fromkeys(PHASES.values()))
    if phase is not None and phase not in phases:
        raise TrothError(f"unknown phase '{phase}'; choose one of {', '.join(phases)}")
    if sort not in SORTS + extra_columns:
        raise TrothError(
            f"cannot sort by '{sort}'; choose one of {', '.join(SORTS + extra_columns)}"
        )
    if limit < 1 or offset < 0:
        raise TrothError("limit must be at least 1 and offset at least 0")
    _check_rung_and_moves(rung, moved_from, moved_to)
    if at_risk and not extra_table:
        raise TrothError("at_risk needs the value scores (customer_value): run `troth score`")
    ranges = dict(ranges or {})
    unknown = sorted(set(ranges) - set(RANGES + extra_columns))
    if unknown:
        raise TrothError(
            f"cannot filter on '{unknown[0]}'; choose one of {', '.join(RANGES + extra_columns)}"
        )
    with db.session() as session:
        try:
            stages = session.table("customer_stage")
            features = session.table("customer_features")
            scores = session.table("customer_attributes")
            balances = session.table("card_balance")
        except TrothError as exc:
            raise TrothError("no scores yet: run `troth score` first") from exc
        cards = balances.select(_card_id=balances.customer_id, card_balance=balances.balance)
        joined = (
            stages.join(features, "customer_id")
            .left_join(scores.select("customer_id", *ATTRIBUTES), "customer_id")
            .left_join(cards, stages.customer_id == cards._card_id)
        )
        if extra_columns:
            try:
                stored = session.table(extra_table)
                more = stored.select(*extra_columns, _extra_id=stored.customer_id)
            except TrothError as exc:
                raise TrothError(f"no {extra_table} yet: run `troth score` first") from exc
            joined = joined.left_join(more, joined.customer_id == more._extra_id)
        # No activity in the window: every attribute is 0, as `customer_attributes` reads it.
        rows = joined.mutate(
            card_balance=joined.card_balance.fill_null(0),
            **{a: joined[a].fill_null(0.0) for a in ATTRIBUTES},
        )
        if stage is not None:
            rows = rows.filter(rows.stage == stage)
        if phase is not None:
            rows = rows.filter(rows.phase == phase)
        if cognitive_loyalty:
            rows = rows.filter(rows.cognitive_loyalty)
        if rung is not None:
            rows = rows.filter(rows.customer_id.isin(_reached(session, rung)))
        if moved_from is not None or moved_to is not None:
            rows = rows.filter(rows.customer_id.isin(_moved(session, moved_from, moved_to)))
        if at_risk:
            risky = session.table(extra_table)
            rows = rows.filter(rows.customer_id.isin(risky.filter(risky.at_risk).customer_id))
        for column, (low, high) in ranges.items():
            if low is not None:
                rows = rows.filter(rows[column] >= low)
            if high is not None:
                rows = rows.filter(rows[column] < high)
        key = {"stage": rows.stage_rank}.get(sort, rows[sort])
        order = (
            key.asc(nulls_first=False) if sort == "recency_days" else key.desc(nulls_first=False)
        )
        page = (
            rows.order_by([order, "customer_id"])
            .select(*LIST_COLUMNS, *extra_columns)
            .limit(limit, offset=offset)
        )
        total = int(session.scalar(rows.count()))
        customers = session.fetch_dicts(page)
    for row in customers:
        row["last_seen"] = row["last_seen"].isoformat() if row["last_seen"] else None
    return {"total": total, "customers": customers}


def _check_rung_and_moves(rung: str | None, moved_from: str | None, moved_to: str | None) -> None:
    """Raise TrothError unless the rung and move filters name a rung and matrix states."""
    if rung is not None and rung not in RUNGS:
        raise TrothError(f"unknown rung '{rung}'; choose one of {', '.join(RUNGS)}")
    if moved_from is not None and moved_from not in STATES:
        raise TrothError(
            f"unknown state to move from '{moved_from}'; choose one of {', '.join(STATES)}"
        )
    if moved_to is not None and moved_to not in MOVED_TO:
        raise TrothError(
            f"unknown state to move to '{moved_to}'; choose one of {', '.join(MOVED_TO)}"
        )


def _reached(session: Session, rung: str) -> ir.Column:
    """Return the ids of the customers who reached `rung`, as ladder_report counts them."""
    try:
        ladder = session.table("customer_ladder")
    except TrothError as exc:
        raise TrothError("no ladder yet: run `troth score` first") from exc
    return ladder.filter(ladder[f"reached_{rung}"]).customer_id


def _moved(session: Session, moved_from: str | None, moved_to: str | None) -> ir.Column:
    """Return the ids of the customers who moved so between the last two snapshots."""
    moves = latest_moves(session)
    if moves is None:
        # One snapshot: nobody moved, as the transitions show no matrix.
        moves = ibis.memtable(
            {"customer_id": [], "from_state": [], "to_state": []},
            schema={"customer_id": "string", "from_state": "string", "to_state": "string"},
        )
    if moved_from is not None:
        moves = moves.filter(moves.from_state == moved_from)
    if moved_to is not None:
        moves = moves.filter(moves.to_state == moved_to)
    if moved_from is None or moved_to is None:
        # One end alone asks for a move (inflow, outflow): those who stayed did not move.
        moves = moves.filter(moves.from_state != moves.to_state)
    return moves.customer_id


def example_customers(db: Database, per_stage: int = 1) -> list[dict[str, Any]]:
    """Return the most active customers of each stage, highest stage first: id, stage, events."""
    with db.session() as session:
        try:
            stages = session.table("customer_stage")
            features = session.table("customer_window_features")
        except TrothError as exc:
            raise TrothError("no scores yet: run `troth score` first") from exc
        rows = stages.filter(stages.stage.notnull()).join(features, "customer_id")
        ranked = rows.mutate(
            n=ibis.row_number().over(
                group_by=rows.stage, order_by=[rows.events.desc(), rows.customer_id]
            )
        )
        picked = ranked.filter(ranked.n < per_stage).order_by([ranked.stage_rank.desc(), ranked.n])
        return session.fetch_dicts(picked.select("customer_id", "stage", "events"))
