"""`troth score`: features and stages for every customer as of a date, written to tables.

Tables: `customer_features` (lifetime, as of the date), `customer_window_features` (the
trailing evidence window), `customer_stage` (stage, phase, cognitive loyalty and every
condition's result), `customer_attributes` (the four attributes and each driver's points, from
the window features) and `customer_stage_history` (the stage at the end of each recent period,
the last snapshot being this run's) with `stage_history_periods` (when each snapshot was taken),
`card_entries` and `card_balance` (the engagement card's ledger and each customer's balance) and
`customer_ladder` (the rungs of the Added Value ladder each customer reached), and
`consent_snapshot` (every customer's consent per purpose when scored, and why a customer's scores
are withheld). Only customers who consent to `analytics` and `profiling` are scored: the others'
events are read by no step, and they appear in no derived table but the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis

from troth.config import PrivacySettings
from troth.engagement.attributes import attribute_scores
from troth.engagement.card import card_balances, card_entries
from troth.engagement.features import customer_features
from troth.engagement.history import period_label, period_starts, stage_inputs, stage_snapshots
from troth.engagement.ladder import customer_ladder
from troth.engagement.stages import PHASES, STAGES, StageRule, assign_stages, stage_rules
from troth.errors import TrothError
from troth.identity import events_with_customer
from troth.privacy.consent import consent_snapshot
from troth.store import Database, Session

__all__ = ["ScoreSummary", "score_customers", "stage_distribution"]


@dataclass(frozen=True)
class ScoreSummary:
    """What one scoring run wrote: customers scored, and how many stand at each stage."""

    as_of: datetime
    customers: int
    by_stage: dict[str, int]
    cognitive_loyalty: int
    # Customers not scored for lack of consent (counted apart from every distribution).
    withheld: int = 0
    # What later steps of the same run wrote (the value step's summary), keyed by step.
    value: dict[str, Any] | None = None


# The event columns the derived tables read; the rest stay in the store, out of memory.
_SCORED_COLUMNS = (
    "customer_id",
    "message_id",
    "seq",
    "timestamp",
    "type",
    "event",
    "channel",
    "properties",
    "traits",
    "context",
)


def score_customers(
    db: Database,
    as_of: datetime,
    thresholds: Mapping[str, Any],
    card: Mapping[str, Any],
    progress: Callable[[str], None] | None = None,
    privacy: Mapping[str, Any] | None = None,
) -> ScoreSummary:
    """Compute every derived table as of `as_of` in one transaction; return the stage counts.

    `thresholds` is `[stages]`, `card` is `[card]` and `privacy` is `[privacy]` (the settings'
    model_dump(); `privacy` defaults to the documented defaults).
    """
    say = progress or (lambda _step: None)
    window_days = int(thresholds["window_days"])
    consent_settings = privacy or PrivacySettings().model_dump()
    with db.session() as session:
        say("consent")
        consent = session.materialize(
            "scoring_consent",
            consent_snapshot(
                session, consent_settings["purposes"], consent_settings["granted_by_default"]
            ),
        )
        allowed = consent.filter(consent.withheld.isnull()).select("customer_id")
        say("events by customer")
        # Every table below reads the events with their customer: join them once.
        joined_events = events_with_customer(session.table("events"), session.table("identifiers"))
        cutoff = ibis.literal(as_of, type="timestamp('UTC')")
        events = session.materialize(
            "scored_events",
            joined_events.filter(joined_events.timestamp < cutoff)
            .semi_join(allowed, "customer_id")
            .select(*_SCORED_COLUMNS),
        )
        say("features")
        lifetime = customer_features(events, as_of).mutate(as_of=cutoff)
        window = customer_features(events, as_of, since=as_of - timedelta(days=window_days)).mutate(
            as_of=cutoff
        )
        with session.transaction():
            session.replace_table("consent_snapshot", consent.mutate(as_of=cutoff))
            customers = session.replace_table("customer_features", lifetime)
            session.replace_table("customer_window_features", window)
            say("stages")
            # Read back what was just written (inside this transaction), not recomputed.
            known = ibis.table(lifetime.schema(), name="customer_features").select("customer_id")
            recent = ibis.table(window.schema(), name="customer_window_features").drop("as_of")
            # Everyone scored for life, with window features where they were active lately.
            joined = known.left_join(recent, "customer_id").drop("customer_id_right")
            rules = stage_rules(thresholds)
            stages = assign_stages(joined, rules).mutate(as_of=cutoff)
            session.replace_table("customer_stage", stages)
            say("attributes")
            session.replace_table("customer_attributes", attribute_scores(recent))
            say("stage history")
            written = ibis.table(stages.schema(), name="customer_stage")
            current = written.join(recent, "customer_id")
            _write_history(session, events, as_of, thresholds, rules, current)
            say("engagement card")
            entries = card_entries(events, as_of, card)
            session.replace_table("card_entries", entries)
            stored = ibis.table(entries.schema(), name="card_entries")
            balances = card_balances(stored, as_of, int(card["trend_days"])).mutate(as_of=cutoff)
            session.replace_table("card_balance", balances)
            say("ladder")
            session.replace_table(
                "customer_ladder", customer_ladder(events, as_of).mutate(as_of=cutoff)
            )
        stage_table = session.table("customer_stage")
        counts = dict(session.fetch(stage_table.group_by("stage").aggregate(n=stage_table.count())))
        loyal = session.scalar(stage_table.cognitive_loyalty.sum())
        withheld = session.scalar(consent.withheld.count())
    by_stage = {stage: int(counts.get(stage, 0)) for stage in STAGES}
    by_stage["none"] = int(counts.get(None, 0))
    return ScoreSummary(as_of, int(customers), by_stage, int(loyal or 0), int(withheld or 0))


def _write_history(
    session: Session,
    events: ibis.Table,
    as_of: datetime,
    thresholds: Mapping[str, float],
    rules: tuple[StageRule, ...],
    current: ibis.Table,
) -> None:
    """Write `customer_stage_history`: earlier period ends from the events, then this run.

    `current` is this run's stages joined with its window features.
    """
    period, count = str(thresholds["history_period"]), int(thresholds["history_periods"])
    ends = [end for end in period_starts(as_of, period, count) if end < as_of][-(count - 1) :]
    labels = ibis.memtable(
        {"at": [*ends, as_of], "period": [period_label(end, period) for end in [*ends, as_of]]},
        schema={"at": "timestamp('UTC')", "period": "string"},
    )
    inputs = session.materialize("stage_inputs", stage_inputs(events, as_of))
    earlier = stage_snapshots(inputs, ends, int(thresholds["window_days"]), rules)
    current = current.filter(current.events > 0).mutate(
        snapshot_at=ibis.literal(as_of, type="timestamp('UTC')")
    )

    def columns(t: ibis.Table) -> ibis.Table:
        keep = ("customer_id", "snapshot_at", "stage", "cognitive_loyalty")
        return t.select(*keep, stage_rank=t.stage_rank.cast("int8"))

    snapshots = columns(earlier).union(columns(current))
    labelled = snapshots.join(labels, snapshots.snapshot_at == labels.at).drop("at")
    session.replace_table("customer_stage_history", labelled)
    # The snapshots themselves: a period in which nobody was active still has its snapshot.
    session.replace_table("stage_history_periods", labels.rename(snapshot_at="at"))


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
        withheld = _withheld(session)
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
        # Not in any count above: customers whose scores are withheld for lack of consent.
        "withheld": sum(withheld.values()),
        "withheld_by_reason": withheld,
    }


def _withheld(session: Session) -> dict[str, int]:
    """Return the last scoring's withheld customers by reason ({} before consent snapshots)."""
    try:
        snapshot = session.table("consent_snapshot")
    except TrothError:
        return {}
    withheld = snapshot.filter(snapshot.withheld.notnull())
    rows = session.fetch(withheld.group_by("withheld").aggregate(n=withheld.count()))
    return {str(reason): int(n) for reason, n in sorted(rows)}
