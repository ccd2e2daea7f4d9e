"""The value step of `troth score`: the rules of scoring.py's docstring, on hand-made stores and
against an independent recomputation (rfm_summary + fresh fits + clv) on a generated population.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.engagement.events import add_events
from tests.value.orders import stored_orders
from troth.config import Settings
from troth.engine import Engine
from troth.errors import TrothError
from troth.store import Database
from troth.value import scoring
from troth.value.clv import clv, new_customer_clv
from troth.value.models.bgnbd import BGNBD
from troth.value.models.gamma_gamma import GammaGamma
from troth.value.models.modified_bgnbd import ModifiedBGNBD
from troth.value.models.pareto_nbd import ParetoNBD
from troth.value.report import at_risk_customers, customer_value, value_overview
from troth.value.scoring import VALUE_COLUMNS, score_value
from troth.value.summary import rfm_summary

AS_OF = datetime(2026, 6, 3, 12, tzinfo=UTC)  # a Wednesday noon
DAY = timedelta(days=1)
SETTINGS = Settings().value.model_dump()
MODELS = {"bgnbd": BGNBD, "modified_bgnbd": ModifiedBGNBD, "pareto_nbd": ParetoNBD}
PERIOD_DAYS = {"D": 1.0, "W": 7.0}


def order(user: str, at: datetime, revenue: float) -> dict:
    return {"event": "Order Completed", "user": user, "at": at, "properties": {"revenue": revenue}}


def buyers(n: int, revenue: float | None = None, seed: int = 13) -> list[dict]:
    """Return the orders of `n` buyers simulated from BG/NBD, each worth about their own mean.

    Each order is worth `revenue` when given, else a Gamma draw around the buyer's mean spend.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rate, dropout, spend = rng.gamma(2.0, 1 / 30), rng.beta(1.0, 4.0), rng.gamma(3.0, 15.0)
        day = rng.uniform(30, 300)  # days before AS_OF of the first order
        for purchase in itertools.count():
            amount = revenue if revenue is not None else round(rng.gamma(4.0, spend / 4), 2)
            rows.append(order(f"b{i}", AS_OF - day * DAY, amount))
            day -= rng.exponential(1 / rate)
            # BG/NBD: a customer may drop out after each repeat purchase.
            if day <= 0 or (purchase > 0 and rng.uniform() < dropout):
                break
    return rows


def read(db: Database) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Return customer_value indexed by the customers' user ids, and value_models by component."""
    with db.session() as session:
        ids = session.table("identifiers")
        owners = session.fetch_arrow(ids.filter(ids.kind == "user_id")).to_pandas()
        values = session.fetch_arrow(session.table("customer_value")).to_pandas()
        models = session.fetch_dicts(session.table("value_models"))
    assert list(values.columns) == list(VALUE_COLUMNS)
    user = dict(zip(owners["customer_id"], owners["value"], strict=True))
    values.index = values["customer_id"].map(user).fillna(values["customer_id"])
    return values, {m["component"]: m for m in models}


# Columns with a value for every customer; the others are empty (NULL) for non-buyers.
DEFINED = (
    "customer_id", "orders", "revenue", "clv", "at_risk", "referred_customers", "crv",
    "reviews", "shares", "reach", "net_reach", "civ", "adopted_ideas", "feedback", "ckv",
    "cev", "as_of",
)  # fmt: skip


def non_finite(db: Database) -> dict[str, int]:
    """Return, per column of customer_value, its NaN or infinite values (SQL isnan/isinf) and
    its NULLs where every customer has a value (a NaN written from pandas is stored as NULL)."""
    with db.session() as session:
        table = session.table("customer_value")
        floats = [name for name, dtype in table.schema().items() if dtype.is_floating()]
        assert {"p_alive", "clv", "cev", "clv_if_alive", "value_at_risk"} <= set(floats)
        bad = {c: (table[c].isnan() | table[c].isinf()).sum().fill_null(0) for c in floats}
        bad |= {f"{c} null": table[c].isnull().sum() for c in DEFINED}
        counts = session.fetch_dicts(table.aggregate(**bad))[0]
    return {column: n for column, n in counts.items() if n}


def score(engine: Engine, rows: list[dict]) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    add_events(engine.db, rows, AS_OF - DAY)
    summary = engine.score(AS_OF)
    values, models = read(engine.db)
    assert summary.value["customers"] == len(values)
    assert non_finite(engine.db) == {}
    return values, models


# Hand-made stores.


def test_non_buyers_have_no_p_alive_and_no_clv_but_keep_their_engagement_value(
    engine: Engine,
) -> None:
    browser = [
        {"event": "Product Viewed", "user": "browser"},
        {"event": "Review Posted", "user": "browser", "properties": {"rating": 5, "reach": 10}},
    ]
    values, models = score(engine, [*buyers(40), *browser])
    assert models["purchase"]["status"] == "fitted"
    row = values.loc["browser"]
    assert row["orders"] == 0
    for column in ("frequency", "T", "p_alive", "expected_purchases_90d", "clv_if_alive"):
        assert pd.isna(row[column]), column
    assert row["clv"] == 0.0
    new_value = models["purchase"]["new_customer_value"]
    assert new_value > 0
    assert row["civ"] == pytest.approx(SETTINGS["influence_conversion"] * new_value * 10)
    assert row["cev"] == row["civ"]
    bought = values[values["orders"] > 0]
    assert bought["p_alive"].notna().all()
    assert (bought["clv"] > 0).all()


def test_a_customer_whose_first_order_is_in_the_scoring_period_is_a_new_customer(
    engine: Engine,
) -> None:
    rows = [*buyers(40), order("newbie", AS_OF - timedelta(hours=1), 30.0)]
    values, models = score(engine, rows)
    row = values.loc["newbie"]
    assert (row["frequency"], row["recency"], row["T"]) == (0.0, 0.0, 0.0)
    # Left out of the fit (no time observed) ...
    assert models["purchase"]["customers"] == int((values["T"] > 0).sum()) == 40
    # ... and predicted as a customer just acquired, with the refitted models.
    purchase, spend = refit(stored_orders(engine.db, AS_OF), AS_OF, SETTINGS)
    mean = spend.population_mean_value()
    assert row["p_alive"] == 1.0
    assert row["expected_purchases_90d"] == pytest.approx(
        np.asarray(purchase.expected_purchases_new_customer(90 / 7)).item(), rel=1e-9
    )
    assert row["expected_order_value"] == pytest.approx(mean, rel=1e-9)
    # Its first order is history: CLV is the new customer's value less that first purchase.
    months, rate = SETTINGS["horizon_months"], SETTINGS["discount_rate_monthly"]
    expected = new_customer_clv(purchase, mean, months, rate, 7.0) - mean
    assert expected > 0
    assert row["clv"] == pytest.approx(expected, rel=1e-9)
    assert row["clv_if_alive"] == row["clv"]
    assert not row["at_risk"]


def test_with_one_buyer_the_fits_fail_and_the_table_is_still_written(engine: Engine) -> None:
    rows = [
        order("b0", AS_OF - 100 * DAY, 20.0),
        order("b0", AS_OF - 40 * DAY, 30.0),
        order("b0", AS_OF - 3 * DAY, 40.0),
        {"event": "Feedback Given", "user": "quiet"},
    ]
    values, models = score(engine, rows)
    for component in ("purchase", "spend"):
        assert models[component]["status"] == "failed"
        assert models[component]["message"].strip()
        assert json.loads(models[component]["params"]) == {}
    assert "two customers" in models["purchase"]["message"]
    assert set(values.index) == {"b0", "quiet"}
    assert values["p_alive"].isna().all()
    assert values["expected_purchases_365d"].isna().all()
    assert (values["clv"] == 0.0).all()
    assert values.loc["b0", "orders"] == 3
    # Without Gamma-Gamma, a buyer's expected order value is their own mean order value.
    assert values.loc["b0", "expected_order_value"] == pytest.approx(30.0)
    assert values.loc["quiet", "cev"] == values.loc["quiet", "ckv"] == SETTINGS["feedback_value"]


def test_troth_score_and_troth_value_run_when_the_fits_fail(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from troth.cli.app import app

    path = tmp_path / "one.duckdb"
    engine = Engine.open(Settings(), path)
    add_events(engine.db, [order("b0", AS_OF - 9 * DAY, 20.0)], AS_OF)
    engine.close()
    runner = CliRunner()
    scored = runner.invoke(
        app, ["score", "--db", str(path), "--as-of", AS_OF.isoformat(), "--json"]
    )
    assert scored.exit_code == 0, scored.output
    summary = json.loads(scored.stdout)
    assert summary["value"]["purchase_status"] == "failed"
    assert summary["value"]["total_clv"] == 0.0
    shown = runner.invoke(app, ["value", "--db", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "failed" in shown.stdout


class Overflowing(BGNBD):
    """BG/NBD whose P(alive) overflows for one customer, as Pareto/NBD's can at a limit."""

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        alive = super().probability_alive(frequency, recency, T)
        alive[0] = np.nan
        return alive


def test_a_fit_predicting_nan_is_a_failed_fit_not_a_crash(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(scoring.MODELS, "bgnbd", Overflowing)
    values, models = score(engine, buyers(40))
    assert models["purchase"]["status"] == "failed"
    assert "NaN or infinite predictions for 1 of 40 customers" in models["purchase"]["message"]
    assert values["p_alive"].isna().all()
    assert (values["clv"] == 0.0).all()


class OwnMean:
    """A spend model in which every customer's orders are worth `values` (one per customer)."""

    def __init__(self, values: pd.Series) -> None:
        self.values = values.to_numpy()

    def expected_average_value(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        return self.values


def test_a_failed_gamma_gamma_values_orders_at_the_customers_own_mean(engine: Engine) -> None:
    # Every repeat order is worth 25: Gamma-Gamma has no spread to fit, BG/NBD still fits.
    # First orders, which Gamma-Gamma leaves out, differ, and so do the customers' own means.
    rows, first = buyers(40, revenue=25.0), set()
    for row in rows:
        if row["user"] not in first:
            first.add(row["user"])
            row["properties"] = {"revenue": 10.0 + len(first)}
    values, models = score(engine, rows)
    assert (models["purchase"]["status"], models["spend"]["status"]) == ("fitted", "failed")
    assert models["spend"]["message"].strip()
    own = values["revenue"] / values["orders"]
    assert own.nunique() > 10
    np.testing.assert_allclose(values["expected_order_value"], own, rtol=1e-12)
    purchase = refit(stored_orders(engine.db, AS_OF), AS_OF, SETTINGS, spend=False)[0]
    seen = values[values["T"] > 0]
    months, rate = SETTINGS["horizon_months"], SETTINGS["discount_rate_monthly"]
    expected = clv(
        purchase, OwnMean(own[seen.index]), *(seen[c] for c in ("frequency", "recency", "T")),
        seen["monetary_value"], months, rate, 7.0,
    )  # fmt: skip
    np.testing.assert_allclose(seen["clv"], expected, rtol=1e-9)


def test_a_store_without_orders_scores_every_customer_at_zero_clv(engine: Engine) -> None:
    rows = [
        {"event": "Product Viewed", "user": "u1"},
        {"event": "Idea Submitted", "user": "u2", "properties": {"idea_id": "i", "adopted": True}},
    ]
    values, models = score(engine, rows)
    assert models["purchase"]["status"] == models["spend"]["status"] == "failed"
    assert (values["clv"] == 0.0).all()
    assert values.loc["u2", "cev"] == SETTINGS["idea_value"]


# A generated population, checked against an independent recomputation.

DEMO_AS_OF = datetime(2026, 10, 21, 12, tzinfo=UTC)  # a Wednesday before the data end


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    from troth.demo import write_events_parquet

    folder = tmp_path_factory.mktemp("value")
    write_events_parquet(folder / "events.parquet", customers=400, months=12, seed=5)
    engine = Engine.open(Settings(), folder / "value.duckdb")
    engine.import_file(folder / "events.parquet")
    engine.score(DEMO_AS_OF)  # features, stages, and the value with default settings
    yield engine
    engine.close()


Scored = tuple[pd.DataFrame, dict[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def scored(population: Engine) -> Callable[..., Scored]:
    """Return a function scoring the population's value with settings changed; cached."""
    cache: dict[tuple, Scored] = {}

    def run(**changes: Any) -> Scored:
        key = tuple(sorted(changes.items()))
        if key not in cache:
            score_value(population.db, DEMO_AS_OF, {**SETTINGS, **changes})
            assert non_finite(population.db) == {}
            cache[key] = read(population.db)
        return cache[key]

    return run


def refit(
    orders: pd.DataFrame, as_of: datetime, settings: dict[str, Any], spend: bool = True
) -> tuple[Any, GammaGamma | None]:
    """Return the purchase and Gamma-Gamma models fitted afresh on `orders` as of `as_of`."""
    rfm = summary(orders, as_of, settings)
    seen = rfm[rfm["T"] > 0]
    purchase = MODELS[settings["model"]]().fit(seen["frequency"], seen["recency"], seen["T"])
    if not spend:
        return purchase, None
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    return purchase, GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])


def summary(orders: pd.DataFrame, as_of: datetime, settings: dict[str, Any]) -> pd.DataFrame:
    return rfm_summary(
        orders, "customer_id", "timestamp", "revenue", observation_end=as_of,
        freq=settings["period"],
    )  # fmt: skip


def reference(db: Database, settings: dict[str, Any]) -> tuple[pd.DataFrame, float, dict]:
    """Return p_alive, expected_purchases_365d and clv per buyer (by customer_id), V_new and
    the purchase model's parameters."""
    orders = stored_orders(db, DEMO_AS_OF)
    rfm = summary(orders, DEMO_AS_OF, settings)
    purchase, spend = refit(orders, DEMO_AS_OF, settings)
    assert spend is not None
    # Repeat buyers with no positive spend get the population mean in scoring; none here.
    assert not ((rfm["frequency"] > 0) & (rfm["monetary_value"] <= 0)).any()
    days = PERIOD_DAYS[settings["period"]]
    months, rate = settings["horizon_months"], settings["discount_rate_monthly"]
    margin, mean = settings["margin"], spend.population_mean_value()
    seen, new = rfm[rfm["T"] > 0], rfm[rfm["T"] == 0]
    x, t_x, age, m = (seen[c] for c in ("frequency", "recency", "T", "monetary_value"))
    out = pd.DataFrame(index=rfm.index, columns=["p_alive", "expected_purchases_365d", "clv"])
    out.loc[seen.index, "p_alive"] = purchase.probability_alive(x, t_x, age)
    out.loc[seen.index, "expected_purchases_365d"] = purchase.expected_purchases(
        365 / days, x, t_x, age
    )
    out.loc[seen.index, "clv"] = margin * clv(purchase, spend, x, t_x, age, m, months, rate, days)
    new_value = margin * new_customer_clv(purchase, mean, months, rate, days)
    out.loc[new.index, "p_alive"] = 1.0
    out.loc[new.index, "expected_purchases_365d"] = np.asarray(
        purchase.expected_purchases_new_customer(365 / days)
    ).item()
    out.loc[new.index, "clv"] = new_value - margin * mean
    return out.astype(float), new_value, purchase.params


SETTING_CHANGES = [
    {},
    {"model": "pareto_nbd", "period": "D"},
    {"model": "modified_bgnbd", "margin": 0.5, "horizon_months": 6, "discount_rate_monthly": 0.02},
]


@pytest.mark.parametrize("changes", SETTING_CHANGES, ids=["default", "pareto_nbd-D", "mbgnbd"])
def test_each_buyers_value_equals_an_independent_recomputation(
    population: Engine, scored: Callable[..., Scored], changes: dict[str, Any]
) -> None:
    settings = {**SETTINGS, **changes}
    values, models = scored(**changes)
    expected, new_value, params = reference(population.db, settings)
    by_id = values.set_index("customer_id")
    bought = by_id[by_id["orders"] > 0]
    assert len(bought) > 150  # of 300 customers, less those who withheld consent
    assert sorted(bought.index) == sorted(expected.index)
    assert (expected.loc[bought.index, "clv"] > 0).all()
    for column in expected.columns:
        np.testing.assert_allclose(
            bought[column], expected.loc[bought.index, column], rtol=1e-9, err_msg=column
        )
    never = by_id[by_id["orders"] == 0]
    assert len(never) > 0
    assert (never["clv"] == 0).all()
    assert never["p_alive"].isna().all()
    purchase = models["purchase"]
    assert (purchase["model"], purchase["period"], purchase["status"]) == (
        settings["model"], settings["period"], "fitted",
    )  # fmt: skip
    assert purchase["new_customer_value"] == pytest.approx(new_value, rel=1e-9)
    assert models["spend"]["status"] == "fitted"
    fitted = json.loads(purchase["params"])
    assert fitted == pytest.approx(params, rel=1e-9)
    assert set(json.loads(purchase["standard_errors"])) == set(params)


def test_a_daily_period_counts_days(scored: Callable[..., Scored]) -> None:
    weekly, _ = scored()
    daily, _ = scored(model="pareto_nbd", period="D")
    # About a year of history: T runs to ~52 weeks or ~365 days.
    assert 45 < weekly["T"].max() <= 53
    assert 300 < daily["T"].max() <= 366


def test_half_the_margin_halves_every_currency_value_but_knowledge(
    scored: Callable[..., Scored],
) -> None:
    full, _ = scored()
    half, _ = scored(margin=0.5)
    assert full["clv"].sum() > 0 and full["crv"].sum() > 0 and (full["civ"] != 0).any()
    for column in ("clv", "clv_if_alive", "value_at_risk", "crv", "civ"):
        np.testing.assert_allclose(half[column], 0.5 * full[column], rtol=1e-12, err_msg=column)
    np.testing.assert_array_equal(half["ckv"], full["ckv"])
    np.testing.assert_array_equal(half["p_alive"], full["p_alive"])


def test_cev_is_clv_plus_crv_plus_civ_plus_ckv_for_every_customer(
    scored: Callable[..., Scored],
) -> None:
    values, _ = scored()
    # The population exercises every component.
    assert (values["referred_customers"] > 0).any()
    assert (values["civ"] > 0).any() and (values["ckv"] > 0).any()
    parts = values["clv"] + values["crv"] + values["civ"] + values["ckv"]
    np.testing.assert_allclose(values["cev"], parts, rtol=1e-12)


def test_value_at_risk_is_clv_if_alive_minus_clv(scored: Callable[..., Scored]) -> None:
    values, _ = scored()
    bought = values[values["orders"] > 0]
    np.testing.assert_allclose(
        bought["clv_if_alive"], bought["clv"] / bought["p_alive"], rtol=1e-12
    )
    np.testing.assert_allclose(
        bought["value_at_risk"], bought["clv_if_alive"] - bought["clv"], rtol=1e-9, atol=1e-9
    )
    assert values.loc[values["orders"] == 0, "value_at_risk"].isna().all()


@pytest.mark.parametrize(
    ("p_alive", "top_share", "both_bite"), [(0.5, 0.2, True), (0.7, 0.1, False), (1.0, 1.0, False)]
)
def test_at_risk_are_unlikely_alive_buyers_with_a_top_clv_if_alive(
    scored: Callable[..., Scored], p_alive: float, top_share: float, both_bite: bool
) -> None:
    values, _ = scored(at_risk_p_alive=p_alive, at_risk_top_share=top_share)
    buyers_ = values[values["clv_if_alive"].notna()]
    # In the top share: at most that share of the other buyers have a higher CLV if alive.
    higher = np.array([(buyers_["clv_if_alive"] > v).sum() for v in buyers_["clv_if_alive"]])
    top = higher / (len(buyers_) - 1) <= top_share
    expected = (buyers_["p_alive"] < p_alive) & top
    assert expected.any()
    assert (buyers_["at_risk"] == expected).all()
    assert not values.loc[values["clv_if_alive"].isna(), "at_risk"].any()
    assert values["at_risk"].sum() == expected.sum()
    if both_bite:
        # Both halves of the rule bite: low P(alive) alone, or a top value alone, is not enough.
        assert ((buyers_["p_alive"] < p_alive) & ~top).any()
        assert ((buyers_["p_alive"] >= p_alive) & top).any()


def test_the_report_reads_what_scoring_wrote(population: Engine) -> None:
    db = population.db
    score_value(db, DEMO_AS_OF, SETTINGS)
    values, _ = read(db)
    overview = value_overview(db, top=5)
    bought = values[values["orders"] > 0]
    risky = values[values["at_risk"]]
    assert (overview["customers"], overview["buyers"], overview["at_risk"]) == (
        len(values), len(bought), len(risky),
    )  # fmt: skip
    assert len(risky) > 0
    for column in ("clv", "crv", "civ", "ckv", "cev"):
        assert overview["totals"][column] == pytest.approx(values[column].sum(), rel=1e-9)
    assert overview["totals"]["value_at_risk"] == pytest.approx(risky["value_at_risk"].sum())
    assert sum(band["buyers"] for band in overview["p_alive_bands"]) == len(bought)
    assert [m["status"] for m in overview["models"]] == ["fitted", "fitted"]
    assert set(overview["models"][0]["params"]) == {"r", "alpha", "a", "b"}
    top = [row["customer_id"] for row in overview["top_cev"]]
    assert top == list(values.sort_values("cev", ascending=False)["customer_id"][:5])
    at_risk = at_risk_customers(db, limit=3)
    largest = risky.sort_values("value_at_risk", ascending=False)["customer_id"][:3]
    assert [row["customer_id"] for row in at_risk] == list(largest)
    one = values.iloc[0]
    assert customer_value(db, one["customer_id"])["cev"] == one["cev"]
    assert customer_value(db, "nobody") is None


def test_the_report_asks_for_a_scoring_first(db: Database) -> None:
    with pytest.raises(TrothError, match="run `troth score` first"):
        value_overview(db)
    assert customer_value(db, "anyone") is None
