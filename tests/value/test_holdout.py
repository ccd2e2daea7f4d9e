"""The holdout check: predicted against actual purchases after a calibration end (FHL 2005)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.value.orders import stored_orders
from troth.config import Settings
from troth.engine import Engine
from troth.errors import TrothError
from troth.store import Database
from troth.value import scoring
from troth.value.holdout import holdout_check
from troth.value.models.bgnbd import BGNBD
from troth.value.models.modified_bgnbd import ModifiedBGNBD
from troth.value.models.pareto_nbd import ParetoNBD
from troth.value.summary import rfm_summary

CALIBRATION_END = datetime(2026, 7, 1, tzinfo=UTC)
OBSERVATION_END = datetime(2026, 10, 1, tzinfo=UTC)
MODELS = {"bgnbd": BGNBD, "modified_bgnbd": ModifiedBGNBD, "pareto_nbd": ParetoNBD}


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Database:
    from troth.demo import write_events_parquet

    folder = tmp_path_factory.mktemp("holdout")
    write_events_parquet(folder / "events.parquet", customers=400, months=12, seed=5)
    engine = Engine.open(Settings(), folder / "holdout.duckdb")
    engine.import_file(folder / "events.parquet")  # and resolves identities
    yield engine.db
    engine.close()


def direct(
    db: Database, calibration_end: datetime, observation_end: datetime, model: str, period: str
) -> dict[str, Any]:
    """Return the holdout totals computed from the orders with a fresh fit."""
    orders = stored_orders(db, observation_end, through=True)
    rfm = rfm_summary(
        orders, "customer_id", "timestamp", "revenue", calibration_end=calibration_end,
        observation_end=observation_end, freq=period,
    )  # fmt: skip
    seen, new = rfm[rfm["T"] > 0], rfm[rfm["T"] == 0]
    x, t_x, age = (seen[c] for c in ("frequency", "recency", "T"))
    fitted = MODELS[model]().fit(x, t_x, age)
    duration = rfm["duration_holdout"].iloc[0]
    new_purchases = np.asarray(fitted.expected_purchases_new_customer(duration)).item()
    return {
        "customers": len(rfm),
        "duration": duration,
        "params": fitted.params,
        "actual_total": rfm["frequency_holdout"].sum(),
        "predicted_total": fitted.expected_purchases(duration, x, t_x, age).sum()
        + len(new) * new_purchases,
        "naive_total": (x / age * duration).sum(),
    }


@pytest.mark.parametrize(("model", "period"), [("bgnbd", "W"), ("pareto_nbd", "D")])
def test_the_totals_equal_a_direct_computation(
    population: Database, model: str, period: str
) -> None:
    check = holdout_check(population, CALIBRATION_END, OBSERVATION_END, model, period)
    expected = direct(population, CALIBRATION_END, OBSERVATION_END, model, period)
    total = check["total"]
    assert check["customers"] == total["customers"] == expected["customers"] > 150
    assert total["actual_total"] == expected["actual_total"] > 100
    assert total["predicted_total"] == pytest.approx(expected["predicted_total"], rel=1e-9)
    assert total["naive"] * total["customers"] == pytest.approx(expected["naive_total"], rel=1e-9)
    assert check["params"] == pytest.approx(expected["params"], rel=1e-9)
    assert check["holdout_periods"] == expected["duration"]
    assert check["holdout_days"] == pytest.approx(92.0, abs=7.0)  # July to September
    # The buckets split the customers and their purchases; the last gathers 7 and more.
    buckets = check["by_frequency"]
    assert [b["frequency"] for b in buckets] == [*map(str, range(7)), "7+"]
    assert sum(b["customers"] for b in buckets) == expected["customers"]
    assert sum(b["actual_total"] for b in buckets) == expected["actual_total"]
    assert sum(b["predicted_total"] for b in buckets) == pytest.approx(
        expected["predicted_total"], rel=1e-9
    )


def test_the_holdout_includes_orders_at_the_observation_end(population: Database) -> None:
    # End the holdout at the instant of some calibration customer's first holdout order.
    orders = stored_orders(population)
    first = orders.groupby("customer_id")["timestamp"].min()
    calibrated = first[first <= CALIBRATION_END].index
    later = orders[orders["customer_id"].isin(calibrated) & (orders["timestamp"] > CALIBRATION_END)]
    end = later.groupby("customer_id")["timestamp"].min().max().to_pydatetime()
    check = holdout_check(population, CALIBRATION_END, end, "bgnbd", "W")
    assert (
        check["total"]["actual_total"]
        == direct(population, CALIBRATION_END, end, "bgnbd", "W")["actual_total"]
    )


def test_by_default_the_holdout_ends_at_the_last_order(population: Database) -> None:
    last = stored_orders(population)["timestamp"].max().to_pydatetime()
    default = holdout_check(population, CALIBRATION_END, None, "bgnbd", "W")
    explicit = holdout_check(population, CALIBRATION_END, last, "bgnbd", "W")
    assert pd.Timestamp(default["observation_end"]) == pd.Timestamp(last)
    assert default["total"] == explicit["total"]
    assert (
        default["total"]["actual_total"]
        == direct(population, CALIBRATION_END, last, "bgnbd", "W")["actual_total"]
    )


def test_a_calibration_end_before_any_order_is_refused(population: Database) -> None:
    early = datetime(2020, 1, 1, tzinfo=UTC)
    for end in (None, OBSERVATION_END):
        with pytest.raises(TrothError, match="no orders on or before the calibration end"):
            holdout_check(population, early, end, "bgnbd", "W")


@pytest.mark.parametrize("days", [0, 10])
def test_a_calibration_end_not_before_the_observation_end_is_refused(
    population: Database, days: int
) -> None:
    end = OBSERVATION_END - timedelta(days=days)
    with pytest.raises(TrothError, match="must be before the observation end"):
        holdout_check(population, OBSERVATION_END, end, "bgnbd", "W")


def test_a_calibration_end_after_the_last_order_is_refused(population: Database) -> None:
    last = stored_orders(population)["timestamp"].max().to_pydatetime()
    for when in (last, last + timedelta(days=30)):
        with pytest.raises(TrothError, match="no orders after the calibration end"):
            holdout_check(population, when, None, "bgnbd", "W")


def test_a_calibration_period_too_short_to_fit_is_a_troth_error(population: Database) -> None:
    first = stored_orders(population)["timestamp"].min().to_pydatetime()
    with pytest.raises(TrothError, match="could not be fitted on the calibration period"):
        holdout_check(population, first + timedelta(hours=1), None, "bgnbd", "W")


class Overflowing(BGNBD):
    """BG/NBD whose expected purchases overflow for one customer, as Pareto/NBD's can."""

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        expected = super().expected_purchases(t, frequency, recency, T)
        expected[0] = np.inf
        return expected


def test_a_fit_predicting_infinity_is_a_troth_error(
    population: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(scoring.MODELS, "bgnbd", Overflowing)
    with pytest.raises(TrothError, match="predicts NaN or infinite purchases"):
        holdout_check(population, CALIBRATION_END, OBSERVATION_END, "bgnbd", "W")
