"""`troth score`: features and stages for every customer as of a date, written to tables.

Tables: `customer_features` (lifetime, as of the date), `customer_window_features` (the
trailing evidence window) and `customer_stage` (stage, phase, cognitive loyalty and every
condition's result).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis

from troth.engagement.features import customer_features
from troth.engagement.stages import PHASES, STAGES, assign_stages, stage_rules
from troth.errors import TrothError
from troth.identity import events_with_customer
from troth.store import Database

__all__ = ["ScoreSummary", "score_customers", "stage_distribution"]


@dataclass(frozen=True)
class ScoreSummary:
    """What one scoring run wrote: customers scored, and how many stand at each stage."""

    as_of: datetime
    customers: int
    by_stage: dict[str, int]
    cognitive_loyalty: int


def score_customers(
    db: Database,
    as_of: datetime,
    thresholds: Mapping[str, float],
    progress: Callable[[str], None] | None = None,
) -> ScoreSummary:
    """Compute features and stages as of `as_of`; replace the derived tables; return counts."""
    say = progress or (lambda _step: None)
    window_days = int(thresholds["window_days"])
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        stamp = ibis.literal(as_of, type="timestamp('UTC')")
        say("features")
        lifetime = customer_features(events, as_of)
        window = customer_features(events, as_of, since=as_of - timedelta(days=window_days))
        lifetime, window = lifetime.mutate(as_of=stamp), window.mutate(as_of=stamp)
        with session.transaction():
            customers = session.replace_table("customer_features", lifetime)
            session.replace_table("customer_window_features", window)
            say("stages")
            # Read back what was just written (inside this transaction), not recomputed.
            known = ibis.table(lifetime.schema(), name="customer_features").select("customer_id")
            recent = ibis.table(window.schema(), name="customer_window_features").drop("as_of")
            # Everyone scored for life, with window features where they were active lately.
            joined = known.left_join(recent, "customer_id").drop("customer_id_right")
            stages = assign_stages(joined, stage_rules(thresholds))
            session.replace_table("customer_stage", stages.mutate(as_of=stamp))
        stage_table = session.table("customer_stage")
        counts = dict(session.fetch(stage_table.group_by("stage").aggregate(n=stage_table.count())))
        loyal = session.scalar(stage_table.cognitive_loyalty.sum())
    by_stage = {stage: int(counts.get(stage, 0)) for stage in STAGES}
    by_stage["none"] = int(counts.get(None, 0))
    return ScoreSummary(as_of, int(customers), by_stage, int(loyal or 0))


def stage_distribution(db: Database) -> dict:
    """Return customers per stage and per phase from the last `troth score`, with its date."""
    with db.session() as session:
        try:
            stages = session.table("customer_stage")
        except TrothError as exc:
            raise TrothError("no scores yet: run `troth score` first") from exc
        rows = session.fetch(
            stages.group_by("stage").aggregate(
                n=stages.count(), loyal=stages.cognitive_loyalty.sum(), as_of=stages.as_of.max()
            )
        )
    by_stage = {stage: 0 for stage in STAGES}
    by_phase = {phase: 0 for phase in dict.fromkeys(PHASES.values())}
    none, loyal, as_of = 0, 0, None
    for stage, n, loyal_n, when in rows:
        loyal += int(loyal_n or 0)
        as_of = when or as_of
        if stage is None:
            none += int(n)
            continue
        by_stage[stage] += int(n)
        by_phase[PHASES[stage]] += int(n)
    return {
        "as_of": None if as_of is None else as_of.isoformat(),
        "customers": sum(by_stage.values()) + none,
        "by_stage": by_stage,
        "by_phase": by_phase,
        "no_stage": none,
        "cognitive_loyalty": loyal,
    }
