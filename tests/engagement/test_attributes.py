"""The four attributes: each formula on tiny populations, its boundaries, and its algebra."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import ibis
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.engagement.test_features import AS_OF, add
from troth.engagement.attributes import (
    ATTRIBUTES,
    DRIVERS,
    attribute_scores,
    attribute_summary,
    driver_column,
    driver_points,
    top_drivers,
)
from troth.engagement.features import FEATURE_DOCS, customer_features
from troth.errors import TrothError
from troth.identity import events_with_customer
from troth.identity.runner import resolve_identities
from troth.store import Database

FEATURES = sorted({d.feature for drivers in DRIVERS.values() for d in drivers})
SCHEMA = pa.schema([("customer_id", pa.string())] + [(f, pa.int64()) for f in FEATURES])
# Compiled once and run on an in-memory DuckDB: the property tests run it hundreds of times.
SQL = ibis.to_sql(attribute_scores(ibis.table(SCHEMA, name="population")), dialect="duckdb")
CON = duckdb.connect()


def score(*customers: dict) -> list[dict]:
    """Return the score rows of a population, in the order given; unnamed features are 0."""
    rows = [
        {"customer_id": f"c{i}", **dict.fromkeys(FEATURES, 0), **c} for i, c in enumerate(customers)
    ]
    CON.register("population", pa.Table.from_pylist(rows, schema=SCHEMA))
    out = {r["customer_id"]: r for r in CON.execute(SQL).arrow().read_all().to_pylist()}
    return [out[r["customer_id"]] for r in rows]


def reference(customers: list[dict]) -> list[dict[str, float]]:
    """Return each customer's attributes by the module docstring's formula, written out."""
    out = []
    for c in customers:
        scores = {}
        for attribute, drivers in DRIVERS.items():
            total = 0.0
            for d in drivers:
                doers = [x[d.feature] for x in customers if (x[d.feature] or 0) > 0]
                mine = c[d.feature] or 0
                share = sum(v <= mine for v in doers) / len(doers) if mine > 0 else 0.0
                total += d.sign * driver_points(attribute) * share
            scores[attribute] = min(max(total, 0.0), 100.0)
        out.append(scores)
    return out


TOP = {"active_days": 9, "channels_used": 9, "two_way_interactions": 9, "bot_chats": 9}


def test_every_driver_is_a_documented_feature_and_every_attribute_can_rise() -> None:
    assert tuple(DRIVERS) == ATTRIBUTES
    for attribute, drivers in DRIVERS.items():
        assert {d.feature for d in drivers} <= set(FEATURE_DOCS), attribute
        assert all(d.sign in (1, -1) for d in drivers), attribute
        assert any(d.sign == 1 for d in drivers), attribute
        assert len({d.feature for d in drivers}) == len(drivers), attribute


def test_columns_are_the_attributes_then_every_driver() -> None:
    row = score({})[0]
    drivers = [driver_column(a, d.feature) for a, ds in DRIVERS.items() for d in ds]
    assert list(row) == ["customer_id", *ATTRIBUTES, *drivers]


def test_a_driver_is_the_share_of_customers_who_do_it_at_most_as_much() -> None:
    values = [0, None, 1, 3, 3, 5]
    rows = score(*({"active_days": v} for v in values))
    # Doers 1, 3, 3, 5: ties share the higher rank; no such event is 0, not a low rank.
    shares = [0, 0, 1 / 4, 3 / 4, 3 / 4, 1]
    assert [r["d_active_active_days"] for r in rows] == pytest.approx([20 * s for s in shares])
    assert [r["active"] for r in rows] == pytest.approx([20 * s for s in shares])


def test_all_equal_values_all_rank_top() -> None:
    rows = score(*({"product_views": 4} for _ in range(5)))
    assert [r["d_rational_product_views"] for r in rows] == pytest.approx([100 / 3] * 5)


def test_a_single_customer_who_does_everything_positive_scores_100() -> None:
    positive = {d.feature: 2 for ds in DRIVERS.values() for d in ds if d.sign > 0}
    row = score(positive)[0]
    assert [row[a] for a in ATTRIBUTES] == pytest.approx([100.0] * 4)


def test_a_customer_without_events_scores_0_and_has_no_drivers() -> None:
    rows = score({}, {f: 3 for f in FEATURES}, {f: None for f in FEATURES})
    for row in (rows[0], rows[2]):
        assert [row[a] for a in ATTRIBUTES] == [0.0] * 4
        assert top_drivers(row) == {a: [] for a in ATTRIBUTES}


def test_customers_who_never_do_a_thing_do_not_move_the_ranks_of_those_who_do() -> None:
    doers = [{"searches": 2, "consents_granted": 1}, {"searches": 7, "detractor_answers": 1}]
    alone = score(*doers)
    crowded = score(*doers, *({} for _ in range(20)))[:2]
    for a, b in zip(alone, crowded, strict=True):
        assert [a[x] for x in ATTRIBUTES] == pytest.approx([b[x] for x in ATTRIBUTES])


def test_emotional_no_signal_scores_low_complaints_only_0_praise_only_high() -> None:
    silent, complainer, fan, torn = score(
        {},
        {"detractor_answers": 2, "reviews_negative": 1, "tickets_unresolved": 1},
        {"promoter_answers": 2, "reviews_positive": 1},
        {"promoter_answers": 2, "reviews_positive": 1, "detractor_answers": 2},
    )
    assert silent["emotional"] == 0 and complainer["emotional"] == 0
    assert fan["emotional"] == pytest.approx(100)
    # One of two positive drivers' worth (50 points) taken by being the top detractor.
    assert torn["emotional"] == pytest.approx(50)
    assert complainer["d_emotional_tickets_unresolved"] == pytest.approx(-50)


def test_ethical_a_withdrawal_weighs_as_much_as_a_grant() -> None:
    trusting = {"ethics_content_viewed": 1, "causes_supported": 1, "consents_granted": 1}
    rows = score(
        {**trusting, "data_shared": 1}, {**trusting, "data_shared": 1, "consents_withdrawn": 1}
    )
    assert rows[0]["ethical"] == pytest.approx(100)
    assert rows[1]["ethical"] == pytest.approx(75)


def test_rational_ranks_research_among_researchers() -> None:
    rows = score({"product_views": 10, "searches": 1}, {"product_views": 5, "articles_read": 2})
    third = 100 / 3
    assert rows[0]["rational"] == pytest.approx(third + third)
    assert rows[1]["rational"] == pytest.approx(third / 2 + third)


def test_a_feature_table_without_a_driver_is_refused_with_what_to_do() -> None:
    table = ibis.table({"customer_id": "string", "active_days": "int64"}, name="old")
    with pytest.raises(TrothError, match=r"lacks .*bot_chats.*customer_features"):
        attribute_scores(table)


def test_top_drivers_rank_by_points_either_way_and_skip_zeros() -> None:
    row = {
        "d_emotional_promoter_answers": 10.0,
        "d_emotional_reviews_positive": 0.0,
        "d_emotional_detractor_answers": -30.0,
        "d_emotional_reviews_negative": None,
        "d_emotional_tickets_unresolved": -10.0,
        "d_rational_searches": 5.0,
    }
    top = top_drivers(row, n=2)
    assert [(d["feature"], d["contribution"], d["direction"]) for d in top["emotional"]] == [
        ("detractor_answers", -30.0, "lowers"),
        ("promoter_answers", 10.0, "raises"),  # ties with unresolved tickets: DRIVERS order
    ]
    assert top["rational"] == [
        {
            "feature": "searches",
            "label": "product searches",
            "contribution": 5.0,
            "direction": "raises",
        }
    ]
    assert top["active"] == [] and top["ethical"] == []


def test_attribute_summary_gives_mean_and_median_per_attribute() -> None:
    table = ibis.memtable(
        pa.table({"customer_id": ["a", "b", "c"], **{a: [0.0, 10.0, 50.0] for a in ATTRIBUTES}})
    )
    rows = attribute_summary(table).to_pyarrow().to_pylist()
    assert sorted(r["attribute"] for r in rows) == sorted(ATTRIBUTES)
    assert all(r["mean"] == pytest.approx(20) and r["median"] == 10 for r in rows)


def test_scores_from_real_events_through_the_store(db: Database) -> None:
    day = timedelta(days=1)
    add(
        db,
        [
            {"event": "Survey Responded", "user": "fan", "properties": {"nps": 10}},
            {"event": "Review Posted", "user": "fan", "properties": {"rating": 5}},
            {"event": "Survey Responded", "user": "critic", "properties": {"nps": 2}},
            {"event": "Ticket Opened", "user": "critic"},
            {"event": "Article Read", "user": "critic", "at": AS_OF - 2 * day},
            {"event": "Ethics Content Viewed", "user": "critic"},
        ],
    )
    resolve_identities(db)
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        session.replace_table("f", customer_features(events, AS_OF))
        session.replace_table("a", attribute_scores(session.table("f")))
        users = events.select("customer_id", "user_id").distinct()
        joined = session.table("a").join(users, "customer_id")
        rows = {r["user_id"]: r for r in session.fetch_dicts(joined)}
    fan, critic = rows["fan"], rows["critic"]
    assert fan["emotional"] == pytest.approx(100) and critic["emotional"] == 0
    assert critic["rational"] == pytest.approx(100 / 3) and fan["rational"] == 0
    assert critic["ethical"] == pytest.approx(25) and fan["ethical"] == 0
    # Active: days 1 vs 2 (half vs top), two-way talk 2 vs 2 (both top), opinions 2 vs 1.
    assert fan["active"] == pytest.approx(10 + 20 + 20)
    assert critic["active"] == pytest.approx(20 + 20 + 10)


values = st.one_of(st.none(), st.integers(0, 4))
populations = st.lists(st.fixed_dictionaries({f: values for f in FEATURES}), min_size=1, max_size=6)


@given(populations)
def test_the_scores_are_the_documented_formula_and_stay_within_0_and_100(customers) -> None:
    rows = score(*customers)
    for row, expected in zip(rows, reference(customers), strict=True):
        for attribute in ATTRIBUTES:
            assert 0 <= row[attribute] <= 100
            assert row[attribute] == pytest.approx(expected[attribute], abs=1e-9)


@given(populations, st.data())
def test_raising_a_driver_moves_its_attribute_only_its_way(customers, data) -> None:
    who = data.draw(st.integers(0, len(customers) - 1))
    attribute = data.draw(st.sampled_from(ATTRIBUTES))
    driver = data.draw(st.sampled_from(DRIVERS[attribute]))
    raised = [dict(c) for c in customers]
    raised[who][driver.feature] = (raised[who][driver.feature] or 0) + data.draw(st.integers(1, 3))
    before, after = score(*customers)[who][attribute], score(*raised)[who][attribute]
    if driver.sign > 0:
        assert after >= before - 1e-9
    else:
        assert after <= before + 1e-9
