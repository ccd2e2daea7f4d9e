"""Consent enforced in scoring: no analytics or profiling consent, no scores of any kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.engagement.events import add_events
from troth.config import PrivacySettings, Settings
from troth.engine import Engine
from troth.privacy.consent import record_consent

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
AS_OF = T0 + timedelta(days=60)
DERIVED = (
    "customer_features",
    "customer_window_features",
    "customer_stage",
    "customer_attributes",
    "customer_stage_history",
    "card_entries",
    "card_balance",
    "customer_ladder",
    "customer_value",
)


def shopper(user: str, days: int = 5) -> list[dict]:
    """A customer active on `days` days with an order on each (enough for every table)."""
    rows = [{"event": "Data Shared", "user": user, "at": T0, "channel": "web"}]
    for d in range(days):
        at = T0 + timedelta(days=7 * d)
        rows.append({"event": "Page Viewed", "user": user, "at": at, "channel": "web"})
        rows.append(
            {
                "event": "Order Completed",
                "user": user,
                "at": at + timedelta(minutes=5),
                "properties": {"order_id": f"{user}-{d}", "revenue": 40.0 + d},
            }
        )
    return rows


def withdraw(user: str, purpose: str, at: datetime) -> dict:
    return {
        "event": "Consent Updated",
        "user": user,
        "at": at,
        "properties": {"purpose": purpose, "granted": False},
    }


def customers_in(engine, table: str) -> set[str]:
    with engine.db.session() as session:
        t = session.table(table)
        return {row[0] for row in session.fetch(t.select("customer_id").distinct())}


def customer_of(engine, user: str) -> str:
    return engine.customer(user)["customer_id"]


def test_withdrawn_profiling_or_analytics_means_no_row_in_any_derived_table(engine) -> None:
    rows = shopper("keeps") + shopper("no_profiling") + shopper("no_analytics")
    rows += [
        withdraw("no_profiling", "profiling", T0 + timedelta(days=1)),
        withdraw("no_analytics", "analytics", T0 + timedelta(days=1)),
    ]
    add_events(engine.db, rows, T0)
    summary = engine.score(AS_OF)
    keeps, no_profiling, no_analytics = (
        customer_of(engine, u) for u in ("keeps", "no_profiling", "no_analytics")
    )
    for table in DERIVED:
        scored = customers_in(engine, table)
        assert keeps in scored, table
        assert no_profiling not in scored, table
        assert no_analytics not in scored, table
    assert summary.customers == 1
    assert summary.withheld == 2
    distribution = engine.stage_distribution()
    assert distribution["customers"] == 1
    assert distribution["withheld"] == 2
    assert distribution["withheld_by_reason"] == {
        "no consent: analytics": 1,
        "no consent: profiling": 1,
    }


def test_withdrawal_after_the_scored_date_still_withholds(engine) -> None:
    # Consent is the latest answer whatever date is scored: a withdrawal today also stops
    # scoring a past date.
    add_events(
        engine.db, [*shopper("u1"), withdraw("u1", "profiling", AS_OF + timedelta(days=30))], T0
    )
    engine.score(AS_OF)
    profile = engine.customer("u1")
    assert profile["withheld"] == "no consent: profiling"
    assert profile["engagement"] is None
    assert profile["value"] is None
    assert profile["consent"]["profiling"]["granted"] is False


def test_consent_regained_is_scored_again_at_the_next_run(engine) -> None:
    add_events(engine.db, [*shopper("u1"), withdraw("u1", "profiling", T0)], T0)
    engine.score(AS_OF)
    customer = customer_of(engine, "u1")
    assert customer not in customers_in(engine, "customer_stage")
    record_consent(
        engine.db,
        customer,
        "profiling",
        True,
        purposes=engine.settings.privacy.purposes,
        source="api",
        changed_by="test",
        at=T0 + timedelta(days=2),
    )
    engine.score(AS_OF)
    assert customer in customers_in(engine, "customer_stage")
    assert engine.customer("u1")["withheld"] is None


def test_opt_in_regime_withholds_customers_without_an_answer(tmp_path) -> None:
    settings = Settings(privacy=PrivacySettings(granted_by_default=["analytics"]))
    engine = Engine.open(settings, tmp_path / "opt_in.duckdb")
    add_events(
        engine.db,
        [
            *shopper("silent"),
            *shopper("agreed"),
            {
                "event": "Consent Updated",
                "user": "agreed",
                "at": T0,
                "properties": {"purpose": "profiling", "granted": True},
            },
        ],
        T0,
    )
    try:
        summary = engine.score(AS_OF)
        assert customers_in(engine, "customer_stage") == {customer_of(engine, "agreed")}
        assert summary.withheld == 1
    finally:
        engine.close()


def test_value_models_are_fitted_on_consenting_customers_only(engine) -> None:
    rows = [r for n in range(6) for r in shopper(f"c{n}", days=3 + n)]
    rows += shopper("big", days=8)
    add_events(engine.db, rows, T0)
    engine.score(AS_OF)
    with engine.db.session() as session:
        models = session.table("value_models")
        before = dict(session.fetch(models.select("component", "customers")))
    add_events(engine.db, [withdraw("big", "profiling", T0)], T0)
    engine.score(AS_OF)
    with engine.db.session() as session:
        models = session.table("value_models")
        after = dict(session.fetch(models.select("component", "customers")))
    assert after["purchase"] == before["purchase"] - 1


def test_no_personalisation_keeps_scores_but_leaves_every_personalised_list(engine) -> None:
    rows = [r for n in range(6) for r in shopper(f"c{n}", days=3 + n)]
    rows += [withdraw("c5", "personalisation", T0)]
    add_events(engine.db, rows, T0)
    engine.score(AS_OF)
    private = customer_of(engine, "c5")
    assert private in customers_in(engine, "customer_value")  # still scored
    assert private in customers_in(engine, "customer_stage")
    top = {row["customer_id"] for row in engine.top_value("cev", 100)}
    assert top == customers_in(engine, "customer_value") - {private}
    overview = engine.value(100)
    assert private not in {row["customer_id"] for row in overview["top_cev"]}
    assert overview["customers"] == 6  # aggregates still count them
    with engine.db.session() as session:
        session.update_where("customer_value", {"at_risk": True}, "customer_id", private)
    assert private not in {row["customer_id"] for row in engine.at_risk(100)}
    movers = engine.movers(100)
    assert private not in {row["customer_id"] for row in movers["up"] + movers["down"]}
