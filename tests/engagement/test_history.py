"""Stage history and transitions: periods, snapshots equal to a direct scoring, move counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.engagement.test_features import add
from troth.config import CardSettings, Settings, StageSettings
from troth.engagement.features import customer_features
from troth.engagement.history import period_label, period_starts, stage_inputs, stage_snapshots
from troth.engagement.scoring import score_customers
from troth.engagement.stages import assign_stages, stage_rules
from troth.engagement.transitions import stage_movers, stage_transitions
from troth.errors import TrothError
from troth.identity import events_with_customer
from troth.identity.runner import resolve_identities
from troth.store import Database

THRESHOLDS = StageSettings().model_dump()
RULES = stage_rules(THRESHOLDS)


def test_month_periods_end_on_the_first_of_each_month() -> None:
    starts = period_starts(datetime(2026, 3, 15, 12, tzinfo=UTC), "month", 4)
    assert starts == [datetime(2025, 12, 1, tzinfo=UTC)] + [
        datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3)
    ]
    assert period_label(datetime(2026, 1, 1, tzinfo=UTC), "month") == "2025-12"


def test_week_periods_start_on_monday() -> None:
    starts = period_starts(datetime(2026, 11, 25, 9, tzinfo=UTC), "week", 3)  # a Wednesday
    assert [s.weekday() for s in starts] == [0, 0, 0]
    assert starts[-1] == datetime(2026, 11, 23, tzinfo=UTC)
    assert period_label(starts[-1], "week") == "2026-W47"


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(TrothError, match="unknown history period"):
        period_starts(datetime(2026, 1, 1, tzinfo=UTC), "quarter", 2)


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory):
    from troth.demo import write_events_parquet
    from troth.engine import Engine

    folder = tmp_path_factory.mktemp("history")
    write_events_parquet(folder / "events.parquet", customers=300, months=9, seed=5)
    engine = Engine.open(Settings(), folder / "history.duckdb")
    engine.import_file(folder / "events.parquet")
    yield engine
    engine.close()


def test_snapshots_equal_scoring_each_period_end_directly(population) -> None:
    db = population.db
    as_of = datetime(2026, 10, 20, tzinfo=UTC)
    ends = [e for e in period_starts(as_of, "month", 6) if e < as_of]
    columns = ["customer_id", "stage", "stage_rank", "cognitive_loyalty"]
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        inputs = session.materialize("inputs", stage_inputs(events, as_of))
        snaps = session.fetch_dicts(stage_snapshots(inputs, ends, 180, RULES))
        for end in ends:
            window = customer_features(events, end, since=end - timedelta(days=180))
            direct = session.fetch_dicts(assign_stages(window.filter(window.events > 0), RULES))
            expected = sorted(tuple(r[c] for c in columns) for r in direct)
            got = sorted(tuple(r[c] for c in columns) for r in snaps if r["snapshot_at"] == end)
            assert len(expected) > 100
            assert got == expected, end


def test_a_snapshot_needs_features_it_can_compute() -> None:
    import ibis

    from troth.engagement.stages import Condition, StageRule

    columns = ("customer_id", "event", "type", "channel")
    events = ibis.table(
        {**dict.fromkeys(columns, "string"), "timestamp": "timestamp('UTC')", "properties": "json"},
        name="events",
    )
    inputs = stage_inputs(events, datetime(2026, 1, 1, tzinfo=UTC))
    odd = (StageRule("connection", None, ((Condition("happiness", ">=", 1),),)),)
    with pytest.raises(TrothError, match="cannot compute"):
        stage_snapshots(inputs, [datetime(2026, 1, 1, tzinfo=UTC)], 180, odd)


def _score(db: Database, as_of: datetime, **stages: object) -> None:
    resolve_identities(db)
    thresholds = {**THRESHOLDS, "history_periods": 3, **stages}
    score_customers(db, as_of, thresholds, CardSettings().model_dump())


def test_transitions_count_new_lapsed_and_climbing_customers(db: Database) -> None:
    # Windows of 20 days, snapshots at Sep 1, Oct 1 and the scoring date Oct 25.
    sept, octo = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
    add(
        db,
        [
            # "old": active in August only: connection at Sep 1, lapsed (none) by Oct 1.
            {"user": "old", "event": "Product Viewed", "at": sept - timedelta(days=3)},
            # "climber": one view in August, then three active days in October.
            {"user": "climber", "event": "Product Viewed", "at": sept - timedelta(days=2)},
            *(
                {"user": "climber", "event": "Product Viewed", "at": octo + timedelta(days=d)}
                for d in (10, 12, 14)
            ),
            # "fresh": first seen in October.
            {"user": "fresh", "event": "Signed Up", "at": octo + timedelta(days=10)},
        ],
    )
    _score(db, datetime(2026, 10, 25, tzinfo=UTC), window_days=20)
    moves = stage_transitions(db)
    assert moves["periods"] == ["2026-08", "2026-09", "2026-10"]
    first, last = moves["matrices"]["2026-09"], moves["matrices"]["2026-10"]
    assert first["connection"]["none"] == 2  # old and climber lapse during September
    assert sum(sum(row.values()) for row in first.values()) == 2
    assert last["none"]["interaction"] == 1  # climber comes back with three active days
    assert last["new"]["connection"] == 1  # fresh
    assert last["none"]["none"] == 0  # absent at both ends is not a move
    flows = moves["flows"]["2026-10"]
    assert flows["interaction"] == {"inflow": 1, "outflow": 0, "stayed": 0}
    assert flows["connection"] == {"inflow": 1, "outflow": 0, "stayed": 0}
    movers = stage_movers(db)
    assert [m["to_stage"] for m in movers["up"]] == ["interaction", "connection"]
    assert movers["down"] == []


def test_cohorts_group_customers_by_first_month(db: Database) -> None:
    octo = datetime(2026, 10, 1, tzinfo=UTC)
    add(
        db,
        [
            {"user": "a", "event": "Signed Up", "at": octo - timedelta(days=40)},
            {"user": "a", "event": "Product Viewed", "at": octo + timedelta(days=2)},
            {"user": "b", "event": "Signed Up", "at": octo + timedelta(days=3)},
        ],
    )
    _score(db, datetime(2026, 10, 25, tzinfo=UTC))
    cohorts = stage_transitions(db)["cohorts"]
    assert cohorts["2026-08"]["2026-10"] == {"connection": 1}
    assert cohorts["2026-08"]["2026-09"] == {"connection": 1}
    assert cohorts["2026-10"] == {"2026-10": {"connection": 1}}


def test_transitions_before_any_score_say_what_to_do(db: Database) -> None:
    with pytest.raises(TrothError, match="troth score"):
        stage_transitions(db)


def test_history_keeps_the_configured_number_of_snapshots(db: Database, tmp_path: Path) -> None:
    add(db, [{"user": "a", "event": "Signed Up", "at": datetime(2026, 1, 5, tzinfo=UTC)}])
    _score(db, datetime(2026, 10, 25, tzinfo=UTC), history_periods=5, window_days=400)
    assert stage_transitions(db)["periods"] == [
        "2026-06",
        "2026-07",
        "2026-08",
        "2026-09",
        "2026-10",
    ]
