"""The seeded demo generator: determinism, schema, taxonomy coverage and population realism."""

from __future__ import annotations

import calendar
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import troth.demo
from troth.demo import (
    EVENT_SCHEMA,
    TYPOLOGIES,
    GenerationSummary,
    generate_events,
    vocabulary,
    write_events_parquet,
)
from troth.demo.population import LEVELS
from troth.demo.trust import PURPOSES

CUSTOMERS = 5000
END = datetime(2026, 11, 1, tzinfo=UTC)
START = datetime(2025, 11, 1, tzinfo=UTC)
CHANNELS = {
    "web",
    "app",
    "email",
    "store",
    "call_centre",
    "support",
    "reviews",
    "surveys",
    "community",
    "referrals",
    "sms",
    "push",
}
# DESIGN.md section 2, the taxonomy table.
TAXONOMY = {
    "Order Completed",
    "Order Refunded",
    "Product Viewed",
    "Products Searched",
    "Article Read",
    "Signed Up",
    "Account Created",
    "Trial Started",
    "Subscription Cancelled",
    "Email Delivered",
    "Email Opened",
    "Email Link Clicked",
    "Unsubscribed",
    "Email Marked as Spam",
    "Push Sent",
    "Call Made",
    "SMS Sent",
    "Ticket Opened",
    "Ticket Resolved",
    "Live Chat Message Sent",
    "Live Chat Message Received",
    "Call Received",
    "Survey Responded",
    "Review Posted",
    "Feedback Given",
    "Idea Submitted",
    "Community Post",
    "Community Answer Accepted",
    "Content Shared",
    "Referral Sent",
    "Referral Converted",
    "Consent Updated",
    "Data Shared",
    "Data Requested",
    "Cause Supported",
    "Ethics Content Viewed",
}
CALL_TYPES = {"identify", "track", "page", "screen", "alias", "group"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    path = tmp_path_factory.mktemp("demo") / "events.parquet"
    calls: list[tuple[int, int]] = []
    summary = write_events_parquet(
        path, customers=CUSTOMERS, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(CUSTOMERS, CUSTOMERS)]
    return path, summary


@pytest.fixture(scope="module")
def events(written: tuple[Path, GenerationSummary]) -> pa.Table:
    return pq.read_table(written[0])


@pytest.fixture(scope="module")
def truth(written: tuple[Path, GenerationSummary]) -> pa.Table:
    return pq.read_table(written[0].with_suffix(".truth.parquet"))


# The bulk of the stream, left out of the row-by-row checks to keep the tests fast.
BULK = ("Email Delivered", "Email Opened", "Product Viewed", "Products Searched", "Article Read")


@pytest.fixture(scope="module")
def rows(events: pa.Table) -> list[dict]:
    bulk = pc.or_(
        pc.is_in(events.column("type"), pa.array(["page", "screen"])),
        pc.fill_null(pc.is_in(events.column("event"), pa.array(BULK)), False),
    )
    return events.filter(pc.invert(bulk)).to_pylist()


def _key(row: dict) -> str:
    return row["event"] or row["type"]


def _parsed(rows: list[dict], name: str) -> list[tuple[dict, dict]]:
    return [(row, json.loads(row["properties"])) for row in rows if row["event"] == name]


def _months_before(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def check_invariants(table: pa.Table, start: datetime, end: datetime) -> None:
    """Assert what every generated stream must satisfy, whatever its size."""
    assert table.schema == EVENT_SCHEMA
    ids = table.column("messageId")
    assert ids.null_count == 0
    assert pc.count_distinct(ids).as_py() == table.num_rows
    if table.num_rows:
        assert pc.max(pc.utf8_length(ids)).as_py() <= 100
        low, high = pc.min_max(table.column("timestamp")).values()
        assert low.as_py() >= start
        assert high.as_py() < end
    assert table.column("timestamp").null_count == 0
    kind = table.column("type")
    assert set(kind.unique().to_pylist()) <= CALL_TYPES
    assert set(table.column("channel").unique().to_pylist()) <= CHANNELS
    has_id = pc.or_(pc.is_valid(table.column("userId")), pc.is_valid(table.column("anonymousId")))
    assert pc.all(has_id).as_py() is not False
    track = pc.equal(kind, "track")
    assert pc.all(pc.equal(track, pc.is_valid(table.column("event")))).as_py() is not False
    alias = pc.equal(kind, "alias")
    alias_ids = pc.and_(
        pc.is_valid(table.column("userId")), pc.is_valid(table.column("previousId"))
    )
    assert pc.all(pc.equal(alias, pc.is_valid(table.column("previousId")))).as_py() is not False
    assert pc.all(pc.or_(pc.invert(alias), alias_ids)).as_py() is not False
    group = pc.equal(kind, "group")
    assert pc.all(pc.equal(group, pc.is_valid(table.column("groupId")))).as_py() is not False
    for field in ("properties", "traits", "context"):
        for text in table.column(field).drop_null().to_pylist():
            assert isinstance(json.loads(text), dict), text


def test_public_names_are_exactly_the_intended_ones() -> None:
    assert sorted(troth.demo.__all__) == sorted(
        [
            "EVENT_SCHEMA",
            "TYPOLOGIES",
            "GenerationSummary",
            "generate_events",
            "write_events_parquet",
        ]
    )


def test_stream_satisfies_invariants(events: pa.Table) -> None:
    check_invariants(events, START, END)


def test_same_seed_gives_identical_events(events: pa.Table) -> None:
    again = pa.Table.from_batches(list(generate_events(CUSTOMERS)), schema=EVENT_SCHEMA)
    assert again.equals(events)


def test_chunk_size_does_not_change_content(events: pa.Table) -> None:
    chunked = pa.Table.from_batches(
        list(generate_events(CUSTOMERS, chunk_customers=1000)), schema=EVENT_SCHEMA
    )
    assert chunked.equals(events)


def test_another_seed_gives_other_events() -> None:
    first = pa.Table.from_batches(list(generate_events(300, seed=1)), schema=EVENT_SCHEMA)
    second = pa.Table.from_batches(list(generate_events(300, seed=2)), schema=EVENT_SCHEMA)
    assert not first.equals(second)
    assert set(first.column("timestamp").to_pylist()).isdisjoint(
        second.column("timestamp").to_pylist()
    )


def test_every_taxonomy_event_and_call_type_appears(events: pa.Table) -> None:
    names = set(events.column("event").drop_null().to_pylist())
    assert names >= TAXONOMY
    assert set(events.column("type").to_pylist()) == CALL_TYPES
    assert set(events.column("channel").to_pylist()) == CHANNELS
    screens = events.filter(pc.equal(events.column("type"), "screen"))
    assert screens.num_rows > 100
    assert set(screens.column("channel").to_pylist()) == {"app"}


def test_summary_counts_what_was_written(
    written: tuple[Path, GenerationSummary], events: pa.Table, truth: pa.Table
) -> None:
    _, summary = written
    assert summary.customers == CUSTOMERS == truth.num_rows
    assert summary.events == events.num_rows
    assert sum(summary.events_by_name.values()) == events.num_rows
    assert set(summary.events_by_name) == TAXONOMY | CALL_TYPES - {"track"}
    assert 0 < summary.anonymous_visitors < CUSTOMERS
    assert 0 < summary.never_identified < summary.anonymous_visitors


def test_vocabulary_needs_no_json_escaping() -> None:
    for name in vocabulary.__all__:
        for entry in getattr(vocabulary, name):
            for text in entry if isinstance(entry, tuple) else (entry,):
                if isinstance(text, str) and name != "DATA_FIELD_SETS":
                    assert not re.search(r'["\\\x00-\x1f]', text), (name, text)


def test_orders_have_positive_revenue_and_products(rows: list[dict]) -> None:
    orders = _parsed(rows, "Order Completed")
    assert len({p["order_id"] for _, p in orders}) == len(orders)
    for _, properties in orders:
        assert properties["revenue"] > 0
        assert isinstance(properties["products"], int) and properties["products"] >= 1
        assert properties["currency"] == "EUR"
    refunded = {p["order_id"] for _, p in _parsed(rows, "Order Refunded")}
    assert refunded <= {p["order_id"] for _, p in orders}


def test_voice_of_customer_scores_are_in_range(rows: list[dict]) -> None:
    for _, properties in _parsed(rows, "Survey Responded"):
        assert 0 <= properties["nps"] <= 10
        assert 1 <= properties["csat"] <= 5
        assert properties["text"]
    for row, properties in _parsed(rows, "Review Posted"):
        assert 1 <= properties["rating"] <= 5
        assert properties["text"]
        assert properties["channel"] == row["channel"]
    ideas = [p for _, p in _parsed(rows, "Idea Submitted")]
    assert any("adopted" in p for p in ideas)
    assert any("adopted" not in p for p in ideas)


def test_service_and_contact_properties(rows: list[dict]) -> None:
    opened = {p["ticket_id"] for _, p in _parsed(rows, "Ticket Opened")}
    resolved = _parsed(rows, "Ticket Resolved")
    assert {p["ticket_id"] for _, p in resolved} < opened  # some stay unresolved
    assert {p["first_contact_resolution"] for _, p in resolved} == {True, False}
    assert all(p["resolution"] for _, p in resolved)
    for name, field in (("Data Requested", "reason_given"), ("Consent Updated", "granted")):
        assert {p[field] for _, p in _parsed(rows, name)} == {True, False}
    assert {p["purpose"] for _, p in _parsed(rows, "Consent Updated")} == set(PURPOSES)
    assert all(isinstance(p["fields"], list) for _, p in _parsed(rows, "Data Shared"))
    assert all(isinstance(p["reach"], int) for _, p in _parsed(rows, "Content Shared"))


def test_calls_report_the_customers_local_time(rows: list[dict]) -> None:
    calls = _parsed(rows, "Call Made")
    bad = unsolicited = 0
    for row, properties in calls:
        zone = ZoneInfo(json.loads(row["context"])["timezone"])
        assert properties["customer_local_time"] == row["timestamp"].astimezone(zone).strftime(
            "%H:%M"
        )
        bad += not ("07:30" <= properties["customer_local_time"] < "21:30")
        unsolicited += not properties["solicited"]
        assert properties["purpose"] in {"sales", "retention", "service", "survey"}
    assert 0.03 < bad / len(calls) < 0.3
    assert 0.2 < unsolicited / len(calls) < 0.9


def test_anonymous_visitors_identify_later_or_never(events: pa.Table) -> None:
    user, anonymous = events.column("userId"), events.column("anonymousId")
    anonymous_only = set(anonymous.filter(pc.is_null(user)).unique().to_pylist())
    both = events.filter(pc.and_(pc.is_valid(user), pc.is_valid(anonymous)))
    pairs = set(
        zip(both.column("anonymousId").to_pylist(), both.column("userId").to_pylist(), strict=True)
    )
    linked = {anonymous_id for anonymous_id, _ in pairs}
    assert len(anonymous_only & linked) > 500  # browsed anonymously, then identified
    assert len(anonymous_only - linked) > 300  # visitors who never identify
    devices: dict[str, set[str]] = defaultdict(set)
    for anonymous_id, user_id in pairs:
        devices[user_id].add(anonymous_id)
    assert sum(len(ids) == 2 for ids in devices.values()) > 300


def test_identity_links_for_later_resolution(rows: list[dict], truth: pa.Table) -> None:
    traits = [json.loads(row["traits"]) for row in rows if row["type"] == "identify"]
    phone = re.compile(r"^\+44 7700 9\d{5}$")
    users_by_email: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["type"] == "identify":
            trait = json.loads(row["traits"])
            assert re.match(r"^[a-z]+\.[a-z]+\d+@example\.com$", trait["email"])
            assert trait["name"] and trait["plan"] in {"free", "basic", "premium"}
            assert "phone" not in trait or phone.match(trait["phone"])
            users_by_email[trait["email"]].add(row["userId"])
    assert any("phone" in t for t in traits)
    shared = [users for users in users_by_email.values() if len(users) > 1]
    assert len(shared) > 20
    duplicates = truth.filter(pc.is_valid(truth.column("duplicate_of")))
    assert duplicates.num_rows > 20
    previous = {row["previousId"] for row in rows if row["type"] == "alias"}
    assert any(p.startswith("crm-") for p in previous)
    assert any(p.startswith("a-") for p in previous)


def test_referrals_point_at_customers_who_sign_up_after(rows: list[dict]) -> None:
    signed_up = {row["userId"]: row["timestamp"] for row in rows if row["event"] == "Signed Up"}
    converted = _parsed(rows, "Referral Converted")
    assert len(converted) > 20
    for row, properties in converted:
        referred = properties["referred_user_id"]
        assert referred != row["userId"]
        assert signed_up[referred] <= row["timestamp"]


def test_truth_describes_every_customer(truth: pa.Table) -> None:
    assert truth.column("userId").to_pylist() == [f"u{i:07d}" for i in range(CUSTOMERS)]
    assert set(truth.column("typology").to_pylist()) == set(TYPOLOGIES)
    assert set(truth.column("peak_level").to_pylist()) <= set(LEVELS)
    assert set(truth.column("peak_level").to_pylist()) == set(LEVELS)
    assert set(truth.column("final_level").to_pylist()) <= set(LEVELS)
    churned = truth.column("churned_at").drop_null().to_pylist()
    assert churned and all(START <= moment < END for moment in churned)
    for row in truth.to_pylist():
        assert row["journey"].split(">")[0] == "connection"
        assert row["journey"].endswith(">lapsed") == (row["churned_at"] is not None)
        assert LEVELS.index(row["final_level"]) <= LEVELS.index(row["peak_level"])
        assert row["anonymous_ids"]
        if row["typology"] == "lapsed":
            assert row["churned_at"] is not None


def test_typologies_behave_as_described(rows: list[dict], truth: pa.Table) -> None:
    kinds = truth.column("typology").to_pylist()
    typology = dict(zip(truth.column("userId").to_pylist(), kinds, strict=True))
    legacy = zip(truth.column("previous_user_id").to_pylist(), kinds, strict=True)
    typology |= {user: kind for user, kind in legacy if user is not None}
    scores: dict[str, list[int]] = defaultdict(list)
    for row, properties in _parsed(rows, "Survey Responded"):
        scores[typology[row["userId"]]].append(properties["nps"])
    assert "quietly_retained" not in scores  # cognitive loyalty: no feedback at all
    assert min(scores["loyal_fan"]) >= 9 and min(scores["vocal_advocate"]) >= 9
    assert max(scores["unhappy_complainer"]) <= 6
    voices = {"Review Posted", "Feedback Given", "Survey Responded"}
    quiet = [
        r for r in rows if r["event"] in voices and typology.get(r["userId"]) == "quietly_retained"
    ]
    assert quiet == []
    orders: dict[str, int] = defaultdict(int)
    for row in rows:
        if row["event"] == "Order Completed":
            orders[typology[row["userId"]]] += 1
    counts = dict(
        zip(
            *np.unique(truth.column("typology").to_numpy(zero_copy_only=False), return_counts=True),
            strict=True,
        )
    )
    per_customer = {name: orders[name] / counts[name] for name in TYPOLOGIES}
    assert per_customer["loyal_fan"] > 3 * per_customer["browser"]
    assert per_customer["quietly_retained"] > per_customer["unhappy_complainer"]


def test_end_defaults_to_a_fixed_date_and_can_be_moved() -> None:
    end = datetime(2024, 3, 31, 12, 0)
    table = pa.Table.from_batches(list(generate_events(60, months=1, end=end)), schema=EVENT_SCHEMA)
    aware = end.replace(tzinfo=UTC)
    check_invariants(table, datetime(2024, 2, 29, 12, 0, tzinfo=UTC), aware)
    assert table.num_rows > 0
    with pytest.raises(ValueError, match="months"):
        list(generate_events(10, months=0))


@settings(max_examples=20, deadline=None)
@given(
    customers=st.integers(min_value=0, max_value=40),
    months=st.integers(min_value=1, max_value=18),
    seed=st.integers(min_value=-(2**40), max_value=2**40),
    end_offset_days=st.integers(min_value=-400, max_value=400),
)
def test_invariants_hold_for_any_small_population(
    customers: int, months: int, seed: int, end_offset_days: int
) -> None:
    end = END + timedelta(days=end_offset_days, hours=end_offset_days % 24)
    table = pa.Table.from_batches(
        list(generate_events(customers, months=months, seed=seed, end=end, chunk_customers=7)),
        schema=EVENT_SCHEMA,
    )
    check_invariants(table, _months_before(end, months), end)
