"""The feature table: rules on small cases, and the pandas oracle on a generated population."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.engagement.events import add_events
from tests.engagement.reference_features import load_events, reference_features
from troth.engagement import FEATURE_DOCS, customer_features
from troth.identity import events_with_customer
from troth.identity.runner import resolve_identities
from troth.store import Database

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def features(db: Database, as_of: datetime = AS_OF) -> pd.DataFrame:
    resolve_identities(db)
    with db.session() as session:
        joined = events_with_customer(session.table("events"), session.table("identifiers"))
        rows = session.fetch_dicts(customer_features(joined, as_of))
    return pd.DataFrame(rows).set_index("customer_id")


def add(db: Database, rows: list[dict]) -> None:
    """Insert events dated a day before AS_OF unless a row says `at` (see add_events)."""
    add_events(db, rows, AS_OF - timedelta(days=1))


def test_every_documented_feature_is_a_column(db: Database) -> None:
    add(db, [{"event": "Signed Up"}])
    assert list(features(db).reset_index().columns) == list(FEATURE_DOCS)


def test_a_customer_with_only_page_views_has_zero_counts_not_nulls(db: Database) -> None:
    add(db, [{"type": "page", "event": None}, {"type": "page", "event": None}])
    row = features(db).iloc[0]
    assert row["page_views"] == 2
    assert row["orders"] == 0 and row["revenue"] == 0 and row["purchase_months"] == 0
    assert row["two_way_interactions"] == 0 and row["tickets_unresolved"] == 0
    assert pd.isna(row["csat_mean"]) and pd.isna(row["nps_last"])


def test_events_on_or_after_as_of_are_not_counted(db: Database) -> None:
    add(
        db,
        [
            {"event": "Order Completed", "properties": {"revenue": 10}},
            {"event": "Order Completed", "properties": {"revenue": 99}, "at": AS_OF},
        ],
    )
    row = features(db).iloc[0]
    assert row["orders"] == 1 and row["revenue"] == 10
    assert row["recency_days"] == pytest.approx(1.0)


def test_purchase_months_counts_distinct_months(db: Database) -> None:
    add(
        db,
        [
            {
                "event": "Order Completed",
                "properties": {"revenue": 5},
                "at": datetime(2026, 3, 1, tzinfo=UTC),
            },
            {
                "event": "Order Completed",
                "properties": {"revenue": 5},
                "at": datetime(2026, 3, 30, tzinfo=UTC),
            },
            {
                "event": "Order Completed",
                "properties": {"revenue": 5},
                "at": datetime(2026, 5, 2, tzinfo=UTC),
            },
        ],
    )
    row = features(db).iloc[0]
    assert (row["orders"], row["purchase_months"], row["revenue"]) == (3, 2, 15)


def test_satisfaction_signals(db: Database) -> None:
    add(
        db,
        [
            {
                "event": "Survey Responded",
                "properties": {"nps": 3, "csat": 2},
                "at": AS_OF - timedelta(days=9),
            },
            {
                "event": "Survey Responded",
                "properties": {"nps": 9, "csat": 5},
                "at": AS_OF - timedelta(days=2),
            },
            {"event": "Ticket Opened"},
            {"event": "Ticket Opened"},
            {"event": "Ticket Resolved", "properties": {"first_contact_resolution": True}},
            {"event": "Review Posted", "properties": {"rating": 4}},
        ],
    )
    row = features(db).iloc[0]
    assert row["nps_mean"] == 6 and row["nps_last"] == 9 and row["csat_mean"] == 3.5
    assert row["tickets_unresolved"] == 1 and row["first_contact_resolutions"] == 1
    assert (
        row["rating_mean"] == 4 and row["two_way_interactions"] == 5
    )  # 2 surveys, 2 tickets, 1 review


@pytest.mark.parametrize(
    ("local_time", "bad"), [("07:59", 1), ("08:00", 0), ("20:59", 0), ("21:00", 1), ("23:30", 1)]
)
def test_badly_timed_calls_at_the_waking_hours_boundaries(db: Database, local_time, bad) -> None:
    add(
        db,
        [
            {
                "event": "Call Made",
                "properties": {"customer_local_time": local_time, "solicited": False},
            }
        ],
    )
    row = features(db).iloc[0]
    assert row["calls_badly_timed"] == bad
    assert row["calls_unsolicited"] == 1 and row["company_contacts"] == 1


def test_consents_granted_and_withdrawn(db: Database) -> None:
    add(
        db,
        [
            {"event": "Consent Updated", "properties": {"purpose": "profiling", "granted": True}},
            {
                "event": "Consent Updated",
                "properties": {"purpose": "marketing:sms", "granted": False},
            },
        ],
    )
    row = features(db).iloc[0]
    assert (row["consents_granted"], row["consents_withdrawn"]) == (1, 1)


def test_ibis_features_equal_the_pandas_oracle_on_a_generated_population(
    tmp_path: Path,
) -> None:
    from troth.config import Settings
    from troth.demo import write_events_parquet
    from troth.engine import Engine

    events_file = tmp_path / "events.parquet"
    write_events_parquet(events_file, customers=400, months=6, seed=11)
    engine = Engine.open(Settings(), tmp_path / "oracle.duckdb")
    try:
        engine.import_file(events_file)
        as_of = datetime(2026, 9, 15, tzinfo=UTC)  # inside the period: later events are cut
        ours = features(engine.db, as_of).sort_index()
        oracle = reference_features(load_events(engine.db), as_of).sort_index()
    finally:
        engine.close()
    assert len(ours) > 300
    # The comparison means something only where the population exercises the rule.
    for column in ("promoter_answers", "detractor_answers", "reviews_positive", "bot_chats"):
        assert ours[column].sum() > 0, column
    assert list(ours.index) == list(oracle.index)
    for column in FEATURE_DOCS:
        if column == "customer_id":
            continue
        left, right = ours[column], oracle[column]
        if column in ("first_seen", "last_seen"):
            left, right = pd.to_datetime(left, utc=True), pd.to_datetime(right, utc=True)
            assert ((left == right) | (left.isna() & right.isna())).all(), column
            continue
        np.testing.assert_allclose(
            left.astype(float),
            right.astype(float),
            rtol=1e-9,
            atol=1e-9,
            equal_nan=True,
            err_msg=column,
        )


@pytest.mark.parametrize(
    ("nps", "promoter", "detractor"), [(0, 0, 1), (6, 0, 1), (7, 0, 0), (8, 0, 0), (9, 1, 0)]
)
def test_nps_groups_at_their_boundaries(db: Database, nps, promoter, detractor) -> None:
    add(db, [{"event": "Survey Responded", "properties": {"nps": nps, "csat": 3}}])
    row = features(db).iloc[0]
    assert (row["promoter_answers"], row["detractor_answers"]) == (promoter, detractor)


def test_a_survey_without_nps_is_neither_promoter_nor_detractor(db: Database) -> None:
    add(db, [{"event": "Survey Responded", "properties": {"csat": 5}}])
    row = features(db).iloc[0]
    assert (row["promoter_answers"], row["detractor_answers"], row["voice_events"]) == (0, 0, 1)


@pytest.mark.parametrize(
    ("rating", "praise", "complaint"), [(1, 0, 1), (2, 0, 1), (3, 0, 0), (4, 1, 0)]
)
def test_reviews_praise_and_complain_at_their_boundaries(
    db: Database, rating, praise, complaint
) -> None:
    add(db, [{"event": "Review Posted", "properties": {"rating": rating}}])
    row = features(db).iloc[0]
    assert (row["reviews_positive"], row["reviews_negative"]) == (praise, complaint)


def test_voice_and_self_service(db: Database) -> None:
    add(
        db,
        [
            {"event": "Feedback Given", "properties": {"topic": "app"}},
            {"event": "Idea Submitted"},
            {"event": "Live Chat Message Received", "properties": {"agent": "bot"}},
            {"event": "Live Chat Message Received", "properties": {"agent": "bot"}},
            {"event": "Live Chat Message Received", "properties": {"agent": "human"}},
            {"event": "Live Chat Message Sent"},
        ],
    )
    row = features(db).iloc[0]
    assert (row["voice_events"], row["bot_chats"]) == (2, 2)
