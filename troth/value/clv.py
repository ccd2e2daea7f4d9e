"""Customer lifetime value: discounted expected purchases times expected transaction value.

Follows lifetimes' `GammaGammaFitter.customer_lifetime_value` (Fader, Hardie & Lee 2005,
"RFM and CLV: Using iso-value curves for customer base analysis", eq. 2 discretised by
month): for months i = 1..n,

    CLV = sum_i (E[X(t_i)] - E[X(t_{i-1})]) * E[Z | x, m] / (1 + d)**i,

where E[X(t)] is the transaction model's conditional expected number of purchases in
(T, T + t], E[Z | x, m] the spend model's expected transaction value and d the monthly
discount rate. A month is 30 days, as in lifetimes with freq="D".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from troth.value.models.base import ModelInputError

__all__ = ["DAYS_PER_MONTH", "PurchaseModel", "SpendModel", "clv", "new_customer_clv"]

DAYS_PER_MONTH = 30.0


class PurchaseModel(Protocol):
    """A fitted transaction model (BG/NBD, Pareto/NBD, ...)."""

    def expected_purchases(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> NDArray[np.float64]:
        """Return expected purchases in (T, T + t] per customer, t in the model's unit."""
        ...


class SpendModel(Protocol):
    """A fitted spend model (Gamma-Gamma)."""

    def expected_average_value(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> NDArray[np.float64]:
        """Return the expected value of a future transaction per customer, in currency."""
        ...


def clv(
    transaction_model: PurchaseModel,
    spend_model: SpendModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    time_months: int = 12,
    discount_rate_monthly: float = 0.01,
    freq_days: float = 7,
) -> NDArray[np.float64]:
    """Return each customer's discounted value over the next `time_months`, in currency.

    Parameters
    ----------
    transaction_model : PurchaseModel
        Any fitted object with ``expected_purchases(t, frequency, recency, T)``.
    spend_model : SpendModel
        Any fitted object with ``expected_average_value(frequency, monetary_value)``,
        e.g. `troth.value.models.gamma_gamma.GammaGamma`.
    frequency, recency, T : array_like
        Repeat purchases x, time of the last purchase t_x and age T, in the unit the
        transaction model was fitted in (`freq_days` days).
    monetary_value : array_like
        Mean value of each customer's repeat purchases (ignored where frequency == 0).
    time_months : int
        Horizon in whole months of 30 days.
    discount_rate_monthly : float
        Discount rate d per month; cash in month i is divided by (1 + d)**i.
    freq_days : float
        Length of the transaction model's time unit in days (7 for weeks, 1 for days);
        month i ends at t_i = 30 i / freq_days units. lifetimes' freq="W" uses
        4.345 weeks per month instead, so compare with lifetimes through freq="D".

    Returns
    -------
    numpy.ndarray
        CLV per customer, in the currency of `monetary_value`.
    """
    if not callable(getattr(transaction_model, "expected_purchases", None)):
        raise ModelInputError(
            "transaction_model has no expected_purchases(t, frequency, recency, T) method; "
            "pass a fitted BG/NBD or Pareto/NBD model."
        )
    if not callable(getattr(spend_model, "expected_average_value", None)):
        raise ModelInputError(
            "spend_model has no expected_average_value(frequency, monetary_value) method; "
            "pass a fitted GammaGamma model."
        )
    _check_horizon(time_months, discount_rate_monthly, freq_days)
    value = np.asarray(spend_model.expected_average_value(frequency, monetary_value), dtype=float)
    total = value * _discounted_purchases(
        lambda t: np.asarray(transaction_model.expected_purchases(t, frequency, recency, T)),
        time_months,
        discount_rate_monthly,
        freq_days,
    )
    if not np.all(np.isfinite(total)):
        raise ModelInputError(
            "CLV is NaN or infinite for some customers: the transaction or spend model "
            "returned non-finite predictions; check their inputs."
        )
    return total


def new_customer_clv(
    transaction_model: PurchaseModel,
    mean_value: float,
    time_months: int = 12,
    discount_rate_monthly: float = 0.01,
    freq_days: float = 7,
) -> float:
    """Return the discounted value of a customer just acquired over `time_months`, in currency.

    The first purchase, now, plus the model's expected repeat purchases of a new customer
    (`expected_purchases_new_customer`) discounted by month as in `clv`, each worth
    `mean_value` (the spend model's population mean transaction value).
    """
    new = getattr(transaction_model, "expected_purchases_new_customer", None)
    if not callable(new):
        raise ModelInputError(
            "transaction_model has no expected_purchases_new_customer(t) method; "
            "pass a fitted BG/NBD or Pareto/NBD model."
        )
    _check_horizon(time_months, discount_rate_monthly, freq_days)
    if not np.isfinite(mean_value) or mean_value < 0:
        raise ModelInputError(f"mean_value must be a finite amount >= 0; got {mean_value!r}.")
    repeat = _discounted_purchases(
        lambda t: np.asarray(new(t), dtype=float).reshape(-1)[:1],
        time_months,
        discount_rate_monthly,
        freq_days,
    )
    return float(mean_value * (1.0 + repeat[0]))


def _check_horizon(time_months: int, discount_rate_monthly: float, freq_days: float) -> None:
    """Raise ModelInputError unless the horizon, discount rate and time unit are usable."""
    if isinstance(time_months, bool) or int(time_months) != time_months or time_months < 1:
        raise ModelInputError(f"time_months must be a whole number >= 1; got {time_months!r}.")
    if not np.isfinite(discount_rate_monthly) or discount_rate_monthly < 0:
        raise ModelInputError(
            f"discount_rate_monthly must be a finite rate >= 0; got {discount_rate_monthly!r}."
        )
    if not np.isfinite(freq_days) or freq_days <= 0:
        raise ModelInputError(f"freq_days must be a positive number of days; got {freq_days!r}.")


def _discounted_purchases(
    cumulative: Callable[[float], NDArray[np.float64]],
    time_months: int,
    discount_rate_monthly: float,
    freq_days: float,
) -> NDArray[np.float64]:
    """Return sum over months i of (E[X(t_i)] - E[X(t_(i-1))]) / (1 + d)**i, in purchases."""
    units_per_month = DAYS_PER_MONTH / freq_days
    # E[X(t)] is cumulative, so each month adds the increase since the previous month end;
    # t = 0 is asked of the model too (rather than assumed 0), as lifetimes does.
    previous = cumulative(0.0)
    total = np.zeros_like(previous, dtype=float)
    for month in range(1, int(time_months) + 1):
        current = cumulative(month * units_per_month)
        total = total + (current - previous) / (1.0 + discount_rate_monthly) ** month
        previous = current
    return total
