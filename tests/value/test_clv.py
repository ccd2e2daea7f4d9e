"""CLV: lifetimes' customer_lifetime_value as oracle, closed forms, unit handling, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from numpy.typing import ArrayLike

from troth.value.clv import clv
from troth.value.models.base import ModelInputError
from troth.value.models.bgnbd import BGNBD
from troth.value.models.gamma_gamma import GammaGamma


class LifetimesPurchases:
    """Adapter giving lifetimes' BetaGeoFitter troth's `expected_purchases` name."""

    def __init__(self, fitter: BetaGeoFitter) -> None:
        self.fitter = fitter

    def expected_purchases(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        return np.asarray(
            self.fitter.conditional_expected_number_of_purchases_up_to_time(
                t, frequency, recency, T
            )
        )


class ConstantRate:
    """Every customer buys `rate` times per time unit, forever."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def expected_purchases(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        return self.rate * t * np.ones(np.shape(frequency))


class FixedSpend:
    """Every transaction is worth `value`."""

    def __init__(self, value: float) -> None:
        self.value = value

    def expected_average_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> np.ndarray:
        return np.full(np.shape(frequency), self.value)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> tuple[BetaGeoFitter, GammaGamma]:
    purchases = BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    repeat = cdnow[cdnow["frequency"] > 0]
    spend = GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])
    return purchases, spend


@pytest.mark.parametrize(
    ("time_months", "discount_rate_monthly"), [(12, 0.01), (3, 0.0), (24, 0.05)]
)
def test_clv_agrees_with_lifetimes_customer_lifetime_value(
    cdnow: pd.DataFrame,
    fitted: tuple[BetaGeoFitter, GammaGamma],
    time_months: int,
    discount_rate_monthly: float,
):
    purchases, spend = fitted
    oracle = GammaGammaFitter()
    oracle.params_ = pd.Series(spend.params)
    columns = cdnow["frequency"], cdnow["recency"], cdnow["T"], cdnow["monetary_value"]
    expected = oracle.customer_lifetime_value(
        purchases, *columns, time=time_months, discount_rate=discount_rate_monthly, freq="D"
    ).to_numpy()
    ours = clv(
        LifetimesPurchases(purchases),
        spend,
        *columns,
        time_months=time_months,
        discount_rate_monthly=discount_rate_monthly,
        freq_days=1,
    )
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    assert np.all(ours > 0)


def test_clv_of_a_constant_rate_is_a_discounted_annuity():
    frequency = np.array([0, 1, 5])
    value = clv(
        ConstantRate(0.5),
        FixedSpend(20.0),
        frequency,
        frequency,
        frequency + 10,
        np.full(3, 20.0),
        time_months=12,
        discount_rate_monthly=0.01,
        freq_days=7,
    )
    per_month = 0.5 * 30 / 7 * 20.0
    annuity = sum(1 / 1.01**i for i in range(1, 13))
    np.testing.assert_allclose(value, per_month * annuity, rtol=1e-12)


def test_freq_days_converts_months_into_the_models_time_unit():
    args = (np.array([1, 2]), np.array([1, 2]), np.array([5, 5]), np.array([10.0, 10.0]))
    daily = clv(ConstantRate(1.0), FixedSpend(10.0), *args, freq_days=1)
    weekly = clv(ConstantRate(7.0), FixedSpend(10.0), *args, freq_days=7)
    np.testing.assert_allclose(daily, weekly, rtol=1e-12)


def test_clv_grows_with_horizon_and_falls_with_discount(
    cdnow: pd.DataFrame, fitted: tuple[BetaGeoFitter, GammaGamma]
):
    purchases, spend = fitted
    columns = cdnow["frequency"], cdnow["recency"], cdnow["T"], cdnow["monetary_value"]
    model = LifetimesPurchases(purchases)
    base = clv(model, spend, *columns, time_months=12, freq_days=7)
    longer = clv(model, spend, *columns, time_months=24, freq_days=7)
    dearer = clv(model, spend, *columns, time_months=12, discount_rate_monthly=0.05)
    assert np.all(longer > base)
    assert np.all(dearer < base)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_months": 0}, "time_months"),
        ({"time_months": 1.5}, "time_months"),
        ({"time_months": True}, "time_months"),
        ({"discount_rate_monthly": -0.1}, "discount_rate_monthly"),
        ({"discount_rate_monthly": float("nan")}, "discount_rate_monthly"),
        ({"freq_days": 0}, "freq_days"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict, message: str):
    args = (np.array([1]), np.array([1]), np.array([5]), np.array([10.0]))
    with pytest.raises(ModelInputError, match=message):
        clv(ConstantRate(1.0), FixedSpend(10.0), *args, **kwargs)


def test_models_without_the_prediction_methods_are_rejected():
    args = (np.array([1]), np.array([1]), np.array([5]), np.array([10.0]))
    with pytest.raises(ModelInputError, match="expected_purchases"):
        clv(object(), FixedSpend(10.0), *args)  # type: ignore[arg-type]
    with pytest.raises(ModelInputError, match="expected_average_value"):
        clv(ConstantRate(1.0), object(), *args)  # type: ignore[arg-type]


def test_non_finite_predictions_are_a_clear_error():
    args = (np.array([1, 2]), np.array([1, 2]), np.array([5, 5]), np.array([10.0, 10.0]))
    with pytest.raises(ModelInputError, match="NaN or infinite"):
        clv(ConstantRate(float("nan")), FixedSpend(10.0), *args)


def test_spend_input_errors_surface_through_clv(fitted: tuple[BetaGeoFitter, GammaGamma]):
    _, spend = fitted
    args = (np.array([1, 2]), np.array([1, 2]), np.array([5, 5]), np.array([10.0, -1.0]))
    with pytest.raises(ModelInputError, match="negative"):
        clv(ConstantRate(1.0), spend, *args)


def test_clv_with_troth_bgnbd_agrees_with_lifetimes_end_to_end(
    cdnow: pd.DataFrame, fitted: tuple[BetaGeoFitter, GammaGamma]
):
    purchases, spend = fitted
    oracle = GammaGammaFitter()
    repeat = cdnow[cdnow["frequency"] > 0]
    oracle.fit(repeat["frequency"], repeat["monetary_value"])
    columns = cdnow["frequency"], cdnow["recency"], cdnow["T"], cdnow["monetary_value"]
    expected = oracle.customer_lifetime_value(purchases, *columns, freq="D").to_numpy()
    transactions = BGNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    ours = clv(transactions, spend, *columns, freq_days=1)
    # both fits are independent here, so agreement is limited by their optimisers
    np.testing.assert_allclose(ours, expected, rtol=1e-4)
