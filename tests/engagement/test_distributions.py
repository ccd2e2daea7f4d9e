"""Histograms of the last scoring agree with the customer list's range filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.engagement.events import add_events
from troth.config import Settings
from troth.engagement.distributions import nice_edges
from troth.engine import Engine
from troth.errors import TrothError
from troth.value.distribution import value_edges

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = Engine.open(Settings(), tmp_path_factory.mktemp("dist") / "dist.duckdb")
    rows = []
    for i in range(1, 13):
        rows += [
            {
                "event": "Order Completed",
                "user": f"u{i}",
                "at": T0 + timedelta(days=7 * k + i),
                "properties": {"revenue": 10.0 * i},
            }
            for k in range(i % 4 + 1)
        ]
        rows += [{"event": "Product Viewed", "user": f"u{i}"} for _ in range(i)]
        if i % 3 == 0:
            rows.append({"event": "Unsubscribed", "user": f"u{i}"})
    add_events(engine.db, rows, T0)
    engine.score(T0 + timedelta(days=60))
    yield engine
    engine.close()


def test_nice_edges_are_round_and_cover_the_range() -> None:
    assert nice_edges(-57, 54, 12) == [float(e) for e in range(-60, 60, 10)]
    assert nice_edges(0, 0) == [0.0]
    assert value_edges(0, 3000) == [0, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500]
    assert value_edges(-43.5, 9)[0] == -44


def test_every_bin_count_is_the_list_behind_it(engine) -> None:
    found = engine.distributions()
    scored = engine.stage_distribution()["customers"]
    for attribute, bins in found["attributes"].items():
        assert sum(b["customers"] for b in bins) == scored
        for b in bins:
            listed = engine.customers(ranges={attribute: (b["from"], b["to"])})
            assert listed["total"] == b["customers"], (attribute, b)
    card = found["card"]["bins"]
    assert sum(b["customers"] for b in card) == scored
    for b in card:
        assert (
            engine.customers(ranges={"card_balance": (b["from"], b["to"])})["total"]
            == (b["customers"])
        )
    buyers = engine.value(0)["buyers"]
    for column in ("clv", "cev"):
        bins = found["value"][column]["bins"]
        assert sum(b["customers"] for b in bins) == buyers
        for b in bins:
            listed = engine.customers(ranges={column: (b["from"], b["to"]), "orders": (1, None)})
            assert listed["total"] == b["customers"]


def test_ranges_narrow_and_refuse_unknown_columns(engine) -> None:
    everyone = engine.customers(limit=100)
    some = engine.customers(ranges={"revenue": (30, 90)}, limit=100)
    assert 0 < some["total"] < everyone["total"]
    assert all(30 <= c["revenue"] < 90 for c in some["customers"])
    assert all("card_balance" in c for c in some["customers"])
    with pytest.raises(TrothError, match="cannot filter on"):
        engine.customers(ranges={"1; DROP TABLE events": (0, 1)})
