"""The engagement card: each rule with its boundaries, the ledger's algebra, weights from config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.engagement.events import add_events
from troth.config import CardSettings
from troth.engagement.card import CARD_RULES, ENTRY_COLUMNS, card_balances, card_entries
from troth.errors import TrothError
from troth.identity import events_with_customer
from troth.identity.runner import resolve_identities
from troth.store import Database

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
# A Wednesday noon, in waking hours in London (UTC+1 in June); its ISO week starts 2026-05-25.
NOON = datetime(2026, 5, 27, 12, 0, tzinfo=UTC)


def add(db: Database, rows: list[dict]) -> None:
    """Insert events at NOON unless a row says `at`, with message ids m0, m1, ..."""
    add_events(db, rows, NOON, message_id=lambda n, _row, _when: f"m{n}")


def entries(db: Database, as_of: datetime = AS_OF, **card: object) -> list[dict]:
    resolve_identities(db)
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        expr = card_entries(events, as_of, CardSettings(**card).model_dump())
        return session.fetch_dicts(expr.order_by(["timestamp", "message_id", "rule"]))


def fired(db: Database, **card: object) -> list[tuple[str, int]]:
    """Return (rule, points) of every entry, in ledger order."""
    return [(row["rule"], row["points"]) for row in entries(db, **card)]


def call(local_time: str | None, *, purpose: str = "sales", solicited: bool = True) -> dict:
    props: dict = {"purpose": purpose, "solicited": solicited}
    if local_time is not None:
        props["customer_local_time"] = local_time
    return {"event": "Call Made", "properties": props}


def test_entries_have_the_documented_columns_and_every_rule_a_weight(db: Database) -> None:
    add(db, [{"event": "Data Shared", "properties": {"fields": ["size"]}}])
    (row,) = entries(db)
    assert tuple(row) == ENTRY_COLUMNS
    assert row["customer_id"] and row["message_id"] == "m0" and row["event"] == "Data Shared"
    assert row["reason"] == "shared data willingly"
    assert {rule.name for rule in CARD_RULES} <= set(CardSettings.model_fields)


@pytest.mark.parametrize(
    ("event", "props", "expected"),
    [
        ("SMS Sent", {"purpose": "service"}, [("proactive_help", 1)]),
        ("SMS Sent", {"purpose": "marketing"}, []),
        ("Push Sent", {"kind": "order update"}, [("proactive_help", 1)]),
        ("Push Sent", {"kind": "promotion"}, []),
        ("Call Made", {"purpose": "service", "solicited": False}, [("proactive_help", 1)]),
        ("Call Made", {"purpose": "sales", "solicited": False}, [("unsolicited_contact", -2)]),
        ("Call Made", {"purpose": "survey", "solicited": False}, [("unsolicited_contact", -2)]),
        ("Call Made", {"purpose": "sales"}, []),  # no `solicited`: not judged
        ("Email Delivered", {"campaign_id": "c"}, []),
    ],
)
def test_company_contacts_help_or_intrude(db: Database, event, props, expected) -> None:
    add(db, [{"event": event, "properties": props}])
    assert fired(db) == expected


@pytest.mark.parametrize(
    ("local_time", "expected"),
    [
        ("07:59", [("badly_timed_contact", -3)]),
        ("08:00", [("chosen_time_callback", 3)]),
        ("20:59", [("chosen_time_callback", 3)]),
        ("21:00", [("badly_timed_contact", -3)]),
        ("03:45", [("badly_timed_contact", -3)]),
        (None, []),  # local time unknown: neither rewarded nor blamed
        ("9:15", []),  # not "HH:MM": unknown
    ],
)
def test_a_requested_call_earns_only_within_waking_hours(db: Database, local_time, expected):
    add(db, [call(local_time)])
    assert fired(db) == expected


def test_an_unsolicited_call_at_night_fires_two_rules(db: Database) -> None:
    add(db, [call("23:10", solicited=False)])
    assert sorted(fired(db)) == [("badly_timed_contact", -3), ("unsolicited_contact", -2)]


@pytest.mark.parametrize(
    ("utc_time", "zone", "badly_timed"),
    [
        ((6, 59), "Europe/London", True),  # 07:59 BST
        ((7, 0), "Europe/London", False),  # 08:00 BST: exactly at waking_from
        ((19, 59), "Europe/London", False),  # 20:59 BST
        ((20, 0), "Europe/London", True),  # 21:00 BST: exactly at waking_until
        ((20, 0), "America/New_York", False),  # 16:00 EDT
        ((20, 0), "Asia/Kolkata", True),  # 01:30 IST (a half-hour offset)
        ((3, 0), "Mars/Olympus_Mons", False),  # unknown zone: not judged, and no error
    ],
)
def test_message_timing_uses_the_customers_time_zone(
    db: Database, utc_time, zone, badly_timed
) -> None:
    at = NOON.replace(hour=utc_time[0], minute=utc_time[1])
    add(
        db,
        [
            {
                "event": "SMS Sent",
                "properties": {"purpose": "marketing"},
                "context": {"timezone": zone},
                "at": at,
            }
        ],
    )
    assert fired(db) == ([("badly_timed_contact", -3)] if badly_timed else [])


def test_a_call_s_stated_local_time_wins_over_its_time_zone(db: Database) -> None:
    # 12:00 UTC is 13:00 in London, but the call record says 22:30 where the customer was.
    add(db, [{**call("22:30"), "context": {"timezone": "Europe/London"}}])
    assert fired(db) == [("badly_timed_contact", -3)]


def test_a_waking_window_may_cross_midnight(db: Database) -> None:
    add(db, [call("23:00"), {**call("12:00"), "at": NOON + timedelta(hours=1)}])
    night_shift = {"waking_from": "22:00", "waking_until": "06:00"}
    assert fired(db, **night_shift) == [("chosen_time_callback", 3), ("badly_timed_contact", -3)]


@pytest.mark.parametrize(("contacts", "over"), [(3, 0), (4, 1), (6, 3)])
def test_contacts_beyond_the_weekly_cap_lose_one_each(db: Database, contacts, over) -> None:
    monday = datetime(2026, 5, 25, 9, 0, tzinfo=UTC)
    kinds = ["Email Delivered", "Push Sent", "SMS Sent"]
    add(
        db,
        [
            {"event": kinds[i % 3], "at": monday + timedelta(days=i), "properties": {}}
            for i in range(contacts)
        ],
    )
    rows = entries(db)
    assert [(r["rule"], r["points"]) for r in rows] == [("over_contact_cap", -1)] * over
    # The latest contacts are the ones beyond the cap.
    assert [r["message_id"] for r in rows] == [f"m{i}" for i in range(3, contacts)]


def test_the_cap_counts_per_iso_week_and_only_company_contacts(db: Database) -> None:
    sunday = datetime(2026, 5, 31, 9, 0, tzinfo=UTC)
    add(
        db,
        [
            *({"event": "Email Delivered", "at": sunday - timedelta(hours=h)} for h in range(3)),
            # Monday starts a new week; the customer's own events are not contacts.
            {"event": "Email Delivered", "at": sunday + timedelta(days=1)},
            {"event": "Order Completed", "at": sunday, "properties": {"revenue": 5}},
            {"event": "Email Opened", "at": sunday},
        ],
    )
    assert fired(db, contact_cap_per_week=3) == []
    assert fired(db, contact_cap_per_week=2) == [("over_contact_cap", -1)]


def test_service_and_trust_events(db: Database) -> None:
    add(
        db,
        [
            {"event": "Ticket Resolved", "properties": {"ticket_id": "t1"}},
            {
                "event": "Ticket Resolved",
                "properties": {"ticket_id": "t2", "first_contact_resolution": True},
            },
            {"event": "Data Shared", "properties": {"fields": ["size"]}},
            {"event": "Data Requested", "properties": {"fields": ["a"], "reason_given": False}},
            {"event": "Data Requested", "properties": {"fields": ["a"], "reason_given": True}},
            {"event": "Data Requested", "properties": {"fields": ["a"]}},  # unknown: not judged
            {"event": "Email Marked as Spam", "properties": {"campaign_id": "c"}},
            {"event": "Unsubscribed", "properties": {"list": "offers"}},
        ],
    )
    assert sorted(fired(db)) == sorted(
        [
            ("ticket_resolved", 1),
            ("ticket_resolved", 1),
            ("first_contact_resolution", 2),
            ("data_shared", 3),
            ("data_request_without_reason", -3),
            ("spam_mark", -5),
            ("unsubscribe", -3),
        ]
    )


@pytest.mark.parametrize(
    ("props", "taken"),
    [
        ({"revenue": 10, "coupon": "SAVE10", "discount": 0.1}, True),
        ({"revenue": 10, "discount": 0.2}, True),
        ({"revenue": 10, "coupon": "WELCOME"}, True),
        ({"revenue": 10}, False),
        ({"revenue": 10, "coupon": "", "discount": 0}, False),
    ],
)
def test_an_order_with_a_coupon_or_discount_is_an_offer_taken(db: Database, props, taken) -> None:
    add(db, [{"event": "Order Completed", "properties": props}])
    assert fired(db) == ([("offer_taken", 2)] if taken else [])


OPENED = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
DEADLINE = OPENED + timedelta(days=7)


@pytest.mark.parametrize(
    ("resolved_at", "ticket", "overdue"),
    [
        (DEADLINE, "t1", False),  # resolved exactly at the deadline: in time
        (DEADLINE + timedelta(seconds=1), "t1", True),
        (OPENED + timedelta(hours=1), "t9", True),  # another ticket's resolution
        (OPENED - timedelta(hours=1), "t1", True),  # resolved before it was (re)opened
        (None, "t1", True),
    ],
)
def test_a_ticket_unresolved_at_its_deadline_loses_then(
    db: Database, resolved_at, ticket, overdue
) -> None:
    rows = [{"event": "Ticket Opened", "at": OPENED, "properties": {"ticket_id": "t1"}}]
    if resolved_at is not None:
        rows.append(
            {"event": "Ticket Resolved", "at": resolved_at, "properties": {"ticket_id": ticket}}
        )
    add(db, rows)
    late = [r for r in entries(db) if r["rule"] == "unresolved_complaint"]
    if overdue:
        assert [(r["timestamp"], r["points"], r["event"], r["message_id"]) for r in late] == [
            (DEADLINE, -4, "Ticket Opened", "m0")
        ]
    else:
        assert late == []


def test_a_ticket_is_judged_only_once_its_deadline_has_passed(db: Database) -> None:
    add(db, [{"event": "Ticket Opened", "at": OPENED, "properties": {"ticket_id": "t1"}}])
    assert fired(db, complaint_resolution_days=7) == [("unresolved_complaint", -4)]
    assert entries(db, as_of=DEADLINE) == []  # the deadline must be before as_of
    assert len(entries(db, as_of=DEADLINE + timedelta(microseconds=1))) == 1
    assert fired(db, complaint_resolution_days=40) == []


def test_a_customer_without_classified_events_has_no_entries_and_no_balance(db: Database) -> None:
    add(
        db,
        [
            {"event": "Product Viewed", "user": "browser"},
            {"type": "page", "event": None, "user": "browser"},
            {"event": "Data Shared", "user": "sharer"},
        ],
    )
    rows = entries(db)
    assert len(rows) == 1 and rows[0]["rule"] == "data_shared"
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        card = CardSettings().model_dump()
        session.replace_table("card_entries", card_entries(events, AS_OF, card))
        stored = card_balances(session.table("card_entries"), AS_OF, 90)
        session.replace_table("card_balance", stored)
        found = session.fetch_dicts(session.table("card_balance"))
    # Only the sharer has a row (BIGINT columns, readable back through Ibis).
    assert [(b["customer_id"], b["balance"]) for b in found] == [(rows[0]["customer_id"], 3)]


def test_events_on_or_after_as_of_are_not_entered(db: Database) -> None:
    add(db, [{"event": "Data Shared", "at": AS_OF}, {"event": "Unsubscribed", "at": AS_OF}])
    assert entries(db) == []


def test_weights_come_from_the_settings(db: Database) -> None:
    add(db, [{"event": "Email Marked as Spam"}, {"event": "Data Shared"}])
    assert sorted(fired(db, spam_mark=10, data_shared=0)) == [
        ("data_shared", 0),
        ("spam_mark", -10),
    ]


def test_a_card_missing_keys_or_with_a_bad_time_is_refused() -> None:
    events = ibis.table({"event": "string"}, name="events")
    with pytest.raises(TrothError, match="lacks spam_mark"):
        card = CardSettings().model_dump()
        del card["spam_mark"]
        card_entries(events, AS_OF, card)
    with pytest.raises(TrothError, match="HH:MM"):
        card_entries(events, AS_OF, {**CardSettings().model_dump(), "waking_from": "8am"})


def test_later_ledgers_extend_earlier_ones(db: Database) -> None:
    """An entry depends only on events before its date: the ledger grows, never rewrites."""
    day = timedelta(days=1)
    add(
        db,
        [
            {"event": "Ticket Opened", "at": OPENED, "properties": {"ticket_id": "t1"}},
            {"event": "Ticket Resolved", "at": OPENED + 9 * day, "properties": {"ticket_id": "t1"}},
            *(
                {
                    "event": "Push Sent",
                    "at": OPENED + i * day / 3,
                    "properties": {"kind": "reminder"},
                }
                for i in range(8)
            ),
            {**call("06:00"), "at": OPENED + 2 * day},
        ],
    )
    final = entries(db)
    for cut in (OPENED + day, OPENED + 2 * day, DEADLINE + day, AS_OF):
        earlier = entries(db, as_of=cut)
        assert earlier == [row for row in final if row["timestamp"] < cut]


# Balances --------------------------------------------------------------------------------


def balances(rows: list[tuple[str, datetime, int]], as_of: datetime, trend_days: int) -> dict:
    con = ibis.duckdb.connect()
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "points"])
    table = ibis.memtable(
        frame, schema={"customer_id": "string", "timestamp": "timestamp('UTC')", "points": "int64"}
    )
    result = con.to_pyarrow(card_balances(table, as_of, trend_days)).to_pylist()
    return {row.pop("customer_id"): row for row in result}


def test_balance_earned_lost_and_the_trend_window() -> None:
    rows = [
        ("a", AS_OF - timedelta(days=200), -5),
        ("a", AS_OF - timedelta(days=90), 3),  # exactly trend_days ago: outside the trend
        ("a", AS_OF - timedelta(days=89, hours=23), 2),
        ("a", AS_OF, -1),  # at as_of: inside
        ("a", AS_OF + timedelta(seconds=1), 100),  # after as_of: ignored
        ("b", AS_OF - timedelta(days=1), 0),
    ]
    got = balances(rows, AS_OF, 90)
    assert got["a"] == {
        "balance": -1,
        "earned": 5,
        "lost": -6,
        "entries": 4,
        "trend": 1,
        "last_entry_at": AS_OF,
    }
    assert {k: got["b"][k] for k in ("balance", "earned", "lost", "entries", "trend")} == {
        "balance": 0,
        "earned": 0,
        "lost": 0,
        "entries": 1,
        "trend": 0,
    }


ENTRY = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    st.integers(min_value=0, max_value=400).map(lambda d: AS_OF - timedelta(days=d, hours=1)),
    st.integers(min_value=-10, max_value=10),
)


@given(rows=st.lists(ENTRY, min_size=1, max_size=40), trend_days=st.integers(1, 500))
def test_balance_is_earned_plus_lost_and_the_trend_lies_between(rows, trend_days) -> None:
    got = balances(rows, AS_OF, trend_days)
    for customer, row in got.items():
        points = [p for c, _t, p in rows if c == customer]
        assert row["balance"] == row["earned"] + row["lost"] == sum(points)
        assert row["entries"] == len(points)
        assert row["earned"] >= 0 >= row["lost"]
        # The trend is the sum of some of the entries: at most all gains, at least all losses.
        assert row["lost"] <= row["trend"] <= row["earned"]
    assert set(got) == {c for c, _t, _p in rows}
