"""The list's rung, move and at-risk filters select exactly the customers the ladder, the
transition matrix and the value report count, on a scored demo database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.harness import troth
from troth.config import Settings
from troth.engagement.ladder import RUNGS
from troth.engagement.listing import list_customers
from troth.engagement.transitions import MOVED_TO, STATES
from troth.engine import Engine
from troth.errors import TrothError


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scored demo database of 300 customers over 6 months (the dashboard tests' size)."""
    folder = tmp_path_factory.mktemp("listing")
    troth("demo", "--customers", "300", "--months", "6", "--dir", str(folder), db=None)
    return folder / "troth.duckdb"


@pytest.fixture(scope="module")
def engine(demo: Path):
    eng = Engine.open(Settings(), demo)
    yield eng
    eng.close()


def _total(engine: Engine, **filters: object) -> int:
    return engine.customers(limit=1, **filters)["total"]


def test_each_rung_lists_as_many_customers_as_the_ladder_counts(engine: Engine) -> None:
    reached = engine.ladder()["overall"]["reached"]
    assert set(reached) == set(RUNGS) and reached["activate"] > 0
    for rung, n in reached.items():
        assert _total(engine, rung=rung) == n, rung


def test_each_matrix_cell_and_flow_lists_as_many_customers_as_counted(engine: Engine) -> None:
    transitions = engine.transitions()
    latest = transitions["periods"][-1]
    matrix = transitions["matrices"][latest]
    assert sum(n for targets in matrix.values() for n in targets.values()) > 0
    for source in STATES:
        for target in MOVED_TO:
            got = _total(engine, moved_from=source, moved_to=target)
            assert got == matrix[source][target], (source, target)
    for stage, flow in transitions["flows"][latest].items():
        assert _total(engine, moved_to=stage) == flow["inflow"], stage
        assert _total(engine, moved_from=stage) == flow["outflow"], stage
        assert _total(engine, moved_from=stage, moved_to=stage) == flow["stayed"], stage


def test_at_risk_lists_as_many_customers_as_the_value_report_counts(engine: Engine) -> None:
    at_risk = engine.value(0)["at_risk"]
    assert at_risk > 0
    page = engine.customers(at_risk=True, sort="clv", limit=1000)
    assert page["total"] == at_risk == len(page["customers"])
    risky = {c["customer_id"] for c in engine.at_risk(limit=1000)}
    assert {c["customer_id"] for c in page["customers"]} == risky


def test_filters_combine_with_the_others(engine: Engine) -> None:
    both = _total(engine, rung="activate", at_risk=True)
    assert both == _total(engine, at_risk=True)  # at risk needs a purchase: every one activated
    inside = engine.customers(moved_to="retention", stage="retention", limit=1000)
    assert inside["total"] == _total(engine, moved_to="retention")


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"rung": "top"}, "unknown rung 'top'; choose one of inform"),
        ({"moved_from": "bliss"}, "unknown state to move from 'bliss'"),
        ({"moved_to": "new"}, "unknown state to move to 'new'; choose one of none"),
        ({"rung": "inform' OR '1'='1"}, "unknown rung"),
        ({"moved_to": "retention';DROP TABLE customer_ladder;--"}, "unknown state to move to"),
    ],
)
def test_unknown_rungs_and_states_are_refused_clearly(
    engine: Engine, filters: dict[str, str], message: str
) -> None:
    before = engine.ladder()
    with pytest.raises(TrothError, match=message.replace("(", r"\(")):
        engine.customers(**filters)
    assert engine.ladder() == before


def test_at_risk_needs_the_value_table(engine: Engine) -> None:
    with pytest.raises(TrothError, match="at_risk needs the value scores"):
        list_customers(engine.db, at_risk=True)


def test_the_cli_filters_and_refuses_unknown_values(demo: Path, tmp_path: Path) -> None:
    # A copy: the module's engine holds the database itself.
    db = tmp_path / "copy.duckdb"
    shutil.copy(demo, db)
    engine = Engine.open(Settings(), db)
    try:
        transitions = engine.transitions()
        reached = engine.ladder()["overall"]["reached"]["advocate"]
    finally:
        engine.close()
    latest = transitions["flows"][transitions["periods"][-1]]
    listed = troth("customers", "list", "--moved-to", "retention", "--json", db=db)
    assert json.loads(listed.stdout)["total"] == latest["retention"]["inflow"]
    listed = troth("customers", "list", "--rung", "advocate", "--at-risk", "--json", db=db)
    assert json.loads(listed.stdout)["total"] <= reached
    bad = troth("customers", "list", "--rung", "top", db=db, check=False)
    assert bad.returncode == 1 and "unknown rung 'top'" in bad.stderr
    bad = troth("customers", "list", "--moved-from", "x'; DROP TABLE events", db=db, check=False)
    assert bad.returncode == 1 and "unknown state to move from" in bad.stderr
