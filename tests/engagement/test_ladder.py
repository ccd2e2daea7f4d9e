"""The engagement ladder: each rung's evidence, cumulativeness, times, groups, conversion."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engagement.events import add_events
from troth.engagement.features import COMPANY_CONTACTS
from troth.engagement.ladder import (
    LADDER_DOCS,
    RUNG_EVENTS,
    RUNGS,
    STEPS,
    customer_ladder,
    ladder_distribution,
    ladder_report,
    ladder_summary,
)
from troth.errors import TrothError
from troth.identity import events_with_customer
from troth.identity.runner import resolve_identities
from troth.store import Database

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def add(db: Database, rows: list[dict]) -> None:
    """Insert events dated a day before AS_OF unless a row says `at` (see add_events)."""
    add_events(db, rows, AS_OF - DAY)


def ladder(db: Database, as_of: datetime = AS_OF) -> dict[str, dict]:
    """Return the ladder rows keyed by user id (each test user is one customer)."""
    resolve_identities(db)
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        users = events.select("user_id", "customer_id").distinct()
        rows = session.fetch_dicts(customer_ladder(events, as_of).join(users, "customer_id"))
    return {row["user_id"]: row for row in rows}


def one(db: Database, rows: list[dict], as_of: datetime = AS_OF) -> dict:
    add(db, rows)
    (row,) = ladder(db, as_of).values()
    return row


ORDER = {"event": "Order Completed", "properties": {"revenue": 10}}


def test_every_documented_column_is_a_column(db: Database) -> None:
    row = one(db, [{"event": "Email Opened"}])
    assert list(row)[: len(LADDER_DOCS)] == list(LADDER_DOCS)


@pytest.mark.parametrize("event", RUNG_EVENTS["inform"])
def test_inform_events_put_the_customer_on_inform(db: Database, event: str) -> None:
    row = one(db, [{"event": event}])
    assert (row["rung"], row["rung_rank"]) == ("inform", 1)


@pytest.mark.parametrize("call", ["page", "screen"])
def test_page_and_screen_calls_inform(db: Database, call: str) -> None:
    assert one(db, [{"type": call, "event": None}])["rung"] == "inform"


@pytest.mark.parametrize("event", RUNG_EVENTS["entice"])
def test_entice_events_put_the_customer_on_entice(db: Database, event: str) -> None:
    row = one(db, [{"event": event}])
    assert (row["rung"], row["rung_rank"]) == ("entice", 2)


def test_a_first_order_activates(db: Database) -> None:
    row = one(db, [ORDER])
    assert (row["rung"], row["rung_rank"]) == ("activate", 3)


@pytest.mark.parametrize("event", RUNG_EVENTS["reciprocate"])
def test_giving_back_after_buying_reciprocates(db: Database, event: str) -> None:
    assert one(db, [ORDER, {"event": event, "properties": {"rating": 2}}])["rung"] == "reciprocate"


@pytest.mark.parametrize("event", RUNG_EVENTS["advocate"])
def test_recommending_after_buying_advocates(db: Database, event: str) -> None:
    row = one(db, [ORDER, {"event": event}])
    assert (row["rung"], row["rung_rank"]) == ("advocate", 5)


@pytest.mark.parametrize("event", RUNG_EVENTS["reciprocate"] + RUNG_EVENTS["advocate"])
def test_without_a_transaction_giving_back_or_recommending_is_only_entice(
    db: Database, event: str
) -> None:
    row = one(db, [{"event": event, "properties": {"rating": 5}}])
    assert row["rung"] == "entice"
    assert not row["reached_activate"] and row["first_reciprocate_at"] is None


@pytest.mark.parametrize(
    ("rating", "rung"), [(3, "reciprocate"), (3.9, "reciprocate"), (4, "advocate"), (5, "advocate")]
)
def test_a_review_recommends_from_four_stars(db: Database, rating: float, rung: str) -> None:
    assert (
        one(db, [ORDER, {"event": "Review Posted", "properties": {"rating": rating}}])["rung"]
        == rung
    )


def test_a_review_without_a_rating_gives_back_but_does_not_recommend(db: Database) -> None:
    assert one(db, [ORDER, {"event": "Review Posted"}])["rung"] == "reciprocate"


@pytest.mark.parametrize("event", COMPANY_CONTACTS)
def test_a_contact_the_company_started_is_no_rung(db: Database, event: str) -> None:
    row = one(db, [{"event": event, "channel": "email"}])
    assert (row["rung"], row["rung_rank"]) == (None, 0)
    assert not any(row[f"reached_{rung}"] for rung in RUNGS)
    assert all(row[f"first_{rung}_at"] is None for rung in RUNGS)
    assert row["acquisition_channel"] == "unknown" and row["segment"] == "unknown"


def test_events_outside_the_taxonomy_are_no_rung(db: Database) -> None:
    assert (
        one(db, [{"event": "Ticket Opened"}, {"type": "identify", "event": None}])["rung"] is None
    )


def _month(month: int, day: int = 10) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


def test_two_orders_in_one_month_are_not_a_repeat_purchase(db: Database) -> None:
    row = one(db, [{**ORDER, "at": _month(3, 1)}, {**ORDER, "at": _month(3, 31)}])
    assert row["rung"] == "activate"


def test_a_repeat_purchase_reciprocates_at_the_second_months_first_order(db: Database) -> None:
    orders = [_month(3, 5), _month(3, 20), _month(5, 9), _month(5, 2), _month(4, 28), _month(4, 7)]
    row = one(db, [{**ORDER, "at": at} for at in orders])
    assert row["rung"] == "reciprocate"
    assert row["first_activate_at"] == _month(3, 5)
    assert row["first_reciprocate_at"] == _month(4, 7)


def test_months_are_calendar_months_not_thirty_days(db: Database) -> None:
    first, second = datetime(2026, 3, 31, 23, tzinfo=UTC), datetime(2026, 4, 1, 1, tzinfo=UTC)
    row = one(db, [{**ORDER, "at": first}, {**ORDER, "at": second}])
    assert (row["rung"], row["first_reciprocate_at"]) == ("reciprocate", second)


def test_rungs_are_cumulative(db: Database) -> None:
    add(
        db,
        [
            {"user": "informed", "event": "Article Read"},
            {"user": "enticed", "event": "Products Searched"},
            {"user": "buyer", **ORDER},
            {"user": "giver", **ORDER},
            {"user": "giver", "event": "Feedback Given"},
            {"user": "advocate", **ORDER},
            {"user": "advocate", "event": "Referral Sent"},
        ],
    )
    rows = ladder(db)
    for user, rank in [
        ("informed", 1),
        ("enticed", 2),
        ("buyer", 3),
        ("giver", 4),
        ("advocate", 5),
    ]:
        row = rows[user]
        assert row["rung_rank"] == rank and row["rung"] == RUNGS[rank - 1]
        assert [row[f"reached_{r}"] for r in RUNGS] == [i < rank for i in range(5)]


def test_first_reached_times_follow_the_evidence(db: Database) -> None:
    t = [AS_OF - timedelta(days=d) for d in (50, 40, 30, 20, 10)]
    row = one(
        db,
        [
            {"event": "Email Opened", "at": t[0]},
            {"event": "Email Opened", "at": t[1]},
            {"event": "Email Link Clicked", "at": t[1]},
            {**ORDER, "at": t[2]},
            {"event": "Survey Responded", "at": t[3]},
            {"event": "Content Shared", "at": t[4]},
        ],
    )
    assert [row[f"first_{r}_at"] for r in RUNGS] == t


def test_higher_evidence_dates_the_untracked_lower_rungs(db: Database) -> None:
    # A store sale with no earlier touch: informed and enticed no later than the sale.
    when = AS_OF - 5 * DAY
    row = one(db, [{**ORDER, "at": when, "channel": "store"}])
    assert row["first_inform_at"] == row["first_entice_at"] == row["first_activate_at"] == when


def test_giving_back_before_buying_counts_from_the_first_order(db: Database) -> None:
    survey, order, share = AS_OF - 30 * DAY, AS_OF - 10 * DAY, AS_OF - 20 * DAY
    row = one(
        db,
        [
            {"event": "Survey Responded", "at": survey},
            {"event": "Content Shared", "at": share},
            {**ORDER, "at": order},
        ],
    )
    assert row["first_entice_at"] == survey
    assert row["first_reciprocate_at"] == row["first_advocate_at"] == order


def test_events_on_or_after_as_of_do_not_count(db: Database) -> None:
    row = one(
        db,
        [
            {"event": "Email Opened", "at": AS_OF - DAY},
            {**ORDER, "at": AS_OF},
            {"type": "identify", "event": None, "traits": {"plan": "premium"}, "at": AS_OF},
        ],
    )
    assert row["rung"] == "inform" and row["first_activate_at"] is None
    assert row["segment"] == "unknown"


def test_acquisition_is_the_campaign_source_of_the_first_own_event(db: Database) -> None:
    row = one(
        db,
        [
            {"event": "Email Delivered", "channel": "email", "at": AS_OF - 9 * DAY},
            {
                "type": "page",
                "event": None,
                "channel": "web",
                "context": {"campaign": {"source": " Google ", "medium": "cpc"}},
                "at": AS_OF - 5 * DAY,
            },
            {
                "event": "Email Opened",
                "channel": "email",
                "context": {"campaign": {"source": "newsletter"}},
            },
        ],
    )
    assert row["acquisition_channel"] == "google"


def test_acquisition_falls_back_to_the_campaign_medium(db: Database) -> None:
    row = one(db, [{"type": "page", "channel": "web", "context": {"campaign": {"medium": "CPC"}}}])
    assert row["acquisition_channel"] == "cpc"


def test_acquisition_without_a_campaign_is_the_first_own_events_channel(db: Database) -> None:
    row = one(
        db,
        [
            {"event": "Push Sent", "channel": "push", "at": AS_OF - 9 * DAY},
            {"event": "Order Completed", "channel": "store", "at": AS_OF - 5 * DAY},
            {
                "type": "page",
                "channel": "web",
                "context": {"campaign": {"source": "google"}},
                "at": AS_OF - 2 * DAY,
            },
        ],
    )
    assert row["acquisition_channel"] == "store"


def test_acquisition_is_unknown_when_the_first_event_has_no_channel(db: Database) -> None:
    assert (
        one(db, [{"event": "Article Read", "context": {"timezone": "UTC"}}])["acquisition_channel"]
        == "unknown"
    )


def test_segment_is_the_latest_plan_trait(db: Database) -> None:
    def identify(plan: object, days: int) -> dict:
        traits = {"email": "a@example.com"} if plan is None else {"plan": plan}
        return {"type": "identify", "event": None, "traits": traits, "at": AS_OF - days * DAY}

    row = one(
        db,
        [
            identify("free", 30),
            identify("premium", 20),
            identify("basic", 25),
            identify(None, 1),
            identify("", 2),
            {"event": "Article Read", "traits": {"plan": "enterprise"}},
        ],
    )
    assert row["segment"] == "premium"


def test_every_customer_gets_a_row(db: Database) -> None:
    add(db, [{"user": f"u{i}", "event": "Article Read"} for i in range(5)])
    assert len(ladder(db)) == 5


# Report and summary ------------------------------------------------------------------------


def _ladder_table(rows: list[dict]) -> ir.Table:
    """A ladder table from partial rows: rank, segment, channel and optional first times."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    full = []
    for i, row in enumerate(rows):
        rank = row["rank"]
        full.append(
            {
                "customer_id": f"c{i}",
                "rung": RUNGS[rank - 1] if rank else None,
                "rung_rank": rank,
                **{f"reached_{r}": k < rank for k, r in enumerate(RUNGS)},
                **{
                    f"first_{r}_at": start + k * row.get("gap", DAY) if k < rank else None
                    for k, r in enumerate(RUNGS)
                },
                "acquisition_channel": row.get("channel", "web"),
                "segment": row.get("segment", "free"),
            }
        )
    schema = pa.schema(
        [("customer_id", pa.string()), ("rung", pa.string()), ("rung_rank", pa.int8())]
        + [(f"reached_{r}", pa.bool_()) for r in RUNGS]
        + [(f"first_{r}_at", pa.timestamp("us", tz="UTC")) for r in RUNGS]
        + [("acquisition_channel", pa.string()), ("segment", pa.string())]
    )
    return ibis.memtable(pa.Table.from_pylist(full, schema=schema))


def report_rows(table: ir.Table) -> list[dict]:
    return ladder_report(table).to_pyarrow().to_pylist()


def test_report_counts_and_converts_per_group() -> None:
    table = _ladder_table(
        [
            {"rank": 0, "segment": "free", "channel": "web"},
            {"rank": 1, "segment": "free", "channel": "web"},
            {"rank": 2, "segment": "free", "channel": "app"},
            {"rank": 3, "segment": "premium", "channel": "web", "gap": 2 * DAY},
            {"rank": 5, "segment": "premium", "channel": "app", "gap": 4 * DAY},
        ]
    )
    summary = ladder_summary(report_rows(table))
    overall = summary["overall"]
    assert overall["customers"] == 5
    assert overall["reached"] == {
        "inform": 4,
        "entice": 3,
        "activate": 2,
        "reciprocate": 1,
        "advocate": 1,
    }
    assert overall["conversion"] == {
        "inform_to_entice": 0.75,
        "entice_to_activate": 0.6667,
        "activate_to_reciprocate": 0.5,
        "reciprocate_to_advocate": 1.0,
    }
    # Medians over those who reached both rungs: gaps 1, 2, 4 days -> 2; then 2 and 4 -> 3.
    assert overall["median_days"]["inform_to_entice"] == 2.0
    assert overall["median_days"]["entice_to_activate"] == 3.0
    assert overall["median_days"]["reciprocate_to_advocate"] == 4.0
    free = summary["by_segment"]["free"]
    assert (free["customers"], free["reached"]["inform"], free["reached"]["activate"]) == (3, 2, 0)
    assert free["conversion"]["activate_to_reciprocate"] is None
    assert free["median_days"]["activate_to_reciprocate"] is None
    assert summary["by_segment"]["premium"]["conversion"]["entice_to_activate"] == 1.0
    assert set(summary["by_channel"]) == {"web", "app"}
    assert summary["by_channel"]["web"]["reached"]["activate"] == 1
    assert list(summary["by_segment"]) == ["free", "premium"]  # largest group first


def test_report_conversion_columns_are_null_when_nobody_reached_the_lower_rung() -> None:
    rows = report_rows(_ladder_table([{"rank": 0}, {"rank": 1}]))
    overall = next(r for r in rows if r["grouping"] == "overall")
    assert overall["inform_to_entice"] == 0.0
    assert overall["entice_to_activate"] is None
    assert {r["grouping"] for r in rows} == {"overall", "segment", "channel"}


def test_summary_of_no_rows_is_all_zero() -> None:
    summary = ladder_summary([])
    assert summary["overall"]["customers"] == 0
    assert set(summary["overall"]["reached"].values()) == {0}
    assert set(summary["overall"]["conversion"].values()) == {None}
    assert summary["by_segment"] == {} and summary["by_channel"] == {}


def test_distribution_reads_the_stored_ladder(db: Database) -> None:
    with pytest.raises(TrothError, match="troth score"):
        ladder_distribution(db)
    add(db, [{"user": "a", **ORDER}, {"user": "b", "event": "Article Read"}])
    resolve_identities(db)
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        stamp = ibis.literal(AS_OF, type="timestamp('UTC')")
        session.replace_table("customer_ladder", customer_ladder(events, AS_OF).mutate(as_of=stamp))
    out = ladder_distribution(db)
    assert out["as_of"] == AS_OF.isoformat()
    assert out["overall"]["reached"]["inform"] == 2
    assert out["overall"]["conversion"]["inform_to_entice"] == 0.5
    assert out["overall"]["conversion"]["entice_to_activate"] == 1.0


# Properties --------------------------------------------------------------------------------

_KINDS = sorted({e for events in RUNG_EVENTS.values() for e in events} | set(COMPANY_CONTACTS))
_EVENTS = st.lists(
    st.tuples(
        st.integers(0, 4),  # customer
        st.sampled_from([*_KINDS, "page"]),
        st.integers(0, 400),  # days before as_of
        st.integers(1, 5),  # rating
    ),
    max_size=40,
)


def _events_table(draw: list[tuple]) -> ir.Table:
    rows = [
        {
            "customer_id": f"c{c}",
            "type": "page" if kind == "page" else "track",
            "event": None if kind == "page" else kind,
            "timestamp": AS_OF - timedelta(days=days, hours=c),
            "channel": "web",
            "properties": json.dumps({"rating": rating}),
            "traits": None,
            "context": None,
        }
        for c, kind, days, rating in draw
    ]
    schema = pa.schema(
        [
            ("customer_id", pa.string()),
            ("type", pa.string()),
            ("event", pa.string()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("channel", pa.string()),
            ("properties", pa.string()),
            ("traits", pa.string()),
            ("context", pa.string()),
        ]
    )
    t = ibis.memtable(pa.Table.from_pylist(rows, schema=schema))
    return t.mutate(**{c: t[c].cast("json") for c in ("properties", "traits", "context")})


# Each example compiles and runs two queries: fewer examples than the profile's keep it quick.
@settings(max_examples=30)
@given(_EVENTS)
def test_the_ladder_only_narrows_and_its_times_only_rise(draw: list[tuple]) -> None:
    table = customer_ladder(_events_table(draw), AS_OF)
    for row in table.to_pyarrow().to_pylist():
        reached = [row[f"reached_{r}"] for r in RUNGS]
        assert reached == sorted(reached, reverse=True)  # no rung above a gap
        assert row["rung_rank"] == sum(reached)
        times = [row[f"first_{r}_at"] for r in RUNGS]
        assert [t is not None for t in times] == reached
        held = [t for t in times if t is not None]
        assert held == sorted(held)
    summary = ladder_summary(ladder_report(table).to_pyarrow().to_pylist())
    for group in [summary["overall"], *summary["by_segment"].values()]:
        counts = [group["reached"][r] for r in RUNGS]
        assert counts == sorted(counts, reverse=True) and counts[0] <= group["customers"]
        for a, b in STEPS:
            rate = group["conversion"][f"{a}_to_{b}"]
            assert (rate is None) == (group["reached"][a] == 0)
            assert rate is None or 0 <= rate <= 1
