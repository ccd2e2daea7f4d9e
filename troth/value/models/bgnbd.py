"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

While alive, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after each
repeat purchase they drop out for good with probability p ~ Beta(a, b). Fitted on
(frequency x, recency t_x, T) rows: x repeat purchases, the last at t_x, observed until T, all
measured from the first purchase, in one time unit of the caller's choosing (days, weeks).

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers" the Easy Way:
An Alternative to the Pareto/NBD Model. Marketing Science 24(2), 275-284.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2008). Computing P(alive) Using the BG/NBD Model.
http://brucehardie.com/notes/021/
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import digamma, gammaln, hyp2f1

from troth.value.models.base import (
    BTYDModel,
    CompressedRows,
    FloatArray,
    ModelInputError,
    as_prediction_inputs,
    compress_rows,
)
from troth.value.models.bgnbd_likelihood import Histories, prepare_histories, total_loglik

__all__ = ["BGNBD", "simulate"]

# Above this many customers, expected purchases evaluate 2F1 on the distinct (x, T) pairs.
_PAIR_ROWS = 10_000


def _hyp2f1_series(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """Return 2F1(a, b; c; z) by summing its power series, for the few rows SciPy returns NaN.

    SciPy's hyp2f1 fails for large c (heavy buyers, x in the thousands) even where the series
    converges quickly; with c - a - b > 0 the terms fall like z^k k^(a + b - c - 1).
    """
    total = np.ones_like(z)
    term = np.ones_like(z)
    for k in range(200_000):
        term = term * (a + k) * (b + k) / ((c + k) * (k + 1)) * z
        total = total + term
        if np.all(np.abs(term) <= 1e-17 * np.abs(total)) or not np.all(np.isfinite(total)):
            break
    return total


def _hyp_growth(
    a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray, power: FloatArray
) -> FloatArray:
    """Return 1 - (1 - z)^power 2F1(a, b; c; z), with power = a, for 0 <= z < 1.

    Evaluated as lifetimes does (the direct series) where SciPy's 2F1 is finite, so both agree;
    elsewhere by Euler's transformation
    2F1(a, b; c; z) = (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z), which turns the product
    into (1 - z)^(c - b) 2F1(c - a, c - b; c; z) with moderate arguments,
    and where SciPy fails on that too, by summing the transformed series directly.
    """
    a, b, c, z, power = np.broadcast_arrays(a, b, c, z, power)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        direct = 1 - hyp2f1(a, b, c, z) * np.exp(power * np.log1p(-z))
        bad = ~np.isfinite(direct)
        if np.any(bad):
            ca, cb, cc, zz = c[bad] - a[bad], c[bad] - b[bad], c[bad], z[bad]
            hyp = hyp2f1(ca, cb, cc, zz)
            failed = ~np.isfinite(hyp)
            if np.any(failed):
                hyp[failed] = _hyp2f1_series(ca[failed], cb[failed], cc[failed], zz[failed])
            exponent = c[bad] - a[bad] - b[bad] + power[bad]
            direct[bad] = 1 - hyp * np.exp(exponent * np.log1p(-zz))
    return direct


def _away_from_one(a: float) -> float:
    """Nudge a off 1, where the (a + b - 1) / (a - 1) prefactors have a removable singularity."""
    return a if abs(a - 1.0) > 1e-8 else 1.0 + 1e-8


class BGNBD(BTYDModel):
    """BG/NBD model (Fader, Hardie & Lee 2005) with parameters r, alpha, a, b.

    `alpha` is in the time unit of the data (it scales with time); r, a, b are unitless.

    Examples
    --------
    >>> model = BGNBD().fit(frequency, recency, T)  # doctest: +SKIP
    >>> model.params  # doctest: +SKIP
    {'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    time_params: ClassVar[tuple[str, ...]] = ("alpha",)
    # 1 in the modified model, where a customer may also drop out right after the first purchase:
    # it adds one dropout opportunity (b + x + shift) and keeps the "dead at t_x" term for x = 0.
    _shift: ClassVar[int] = 0

    @classmethod
    def _dropout_terms(cls, x: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Return the offset k in the dropout term's ln(b + k) and the rows that have the term."""
        if cls._shift:
            return x, np.ones(x.shape, dtype=bool)
        # b + x - 1 at x >= 1; x = 0 has no such term (masked), max() avoids log of b - 1 < 0.
        return np.maximum(x, 1) - 1, x > 0

    @classmethod
    def _row_loglik(
        cls, log_params: FloatArray, data: tuple[FloatArray, ...]
    ) -> tuple[FloatArray, FloatArray]:
        """Per-row log-likelihood, eq. (6) of Fader, Hardie & Lee (2005), and its log-gradient.

        L = A1 + A2 + log(exp(A3) + [x > 0] exp(A4)) with
        A1 = lnG(r + x) - lnG(r) + r ln(alpha),
        A2 = lnB(a, b + x) - lnB(a, b) written with lnG,
        A3 = -(r + x) ln(alpha + T)            (still alive at T),
        A4 = ln a - ln(b + x - 1) - (r + x) ln(alpha + t_x)   (dropped out at t_x).
        The gradient w.r.t. (ln r, ln alpha, ln a, ln b) is theta * dL/dtheta (digamma terms).
        """
        r, alpha, a, b = np.exp(log_params)
        x, t_x, t_cal = data
        s = cls._shift
        offset, has_dropout = cls._dropout_terms(x)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x + s) - gammaln(b) - gammaln(a + b + x + s)
        log_alive_term = -(r + x) * np.log(alpha + t_cal)
        log_dead_term = np.log(a) - np.log(b + offset) - (r + x) * np.log(alpha + t_x)
        log_dead_term = np.where(has_dropout, log_dead_term, -np.inf)
        log_sum = np.logaddexp(log_alive_term, log_dead_term)
        w_alive = np.exp(log_alive_term - log_sum)
        w_dead = np.exp(log_dead_term - log_sum)
        ll = a1 + a2 + log_sum

        grad = np.empty((4, x.size))
        grad[0] = (
            digamma(r + x)
            - digamma(r)
            + np.log(alpha)
            - w_alive * np.log(alpha + t_cal)
            - w_dead * np.log(alpha + t_x)
        )
        grad[1] = r / alpha - (r + x) * (w_alive / (alpha + t_cal) + w_dead / (alpha + t_x))
        psi_ab = digamma(a + b) - digamma(a + b + x + s)
        grad[2] = psi_ab + w_dead / a
        grad[3] = psi_ab + digamma(b + x + s) - digamma(b) - w_dead / (b + offset)
        grad *= np.array([[r], [alpha], [a], [b]])
        return ll, grad

    @classmethod
    def _prepare(cls, rows: CompressedRows, scale: float) -> Histories:
        """Return the rows laid out for `_total_loglik` (distinct values, codes, weights)."""
        return prepare_histories(rows, scale, *cls._dropout_terms(rows.values[0]))

    @classmethod
    def _total_loglik(cls, log_params: FloatArray, data: object) -> tuple[float, FloatArray]:
        """Total log-likelihood, eq. (6), and its log-gradient, as `_row_loglik` summed."""
        assert isinstance(data, Histories)
        ll, grad, _ = total_loglik(log_params, data, cls._shift, order=1)
        return ll, grad

    @classmethod
    def _loglik_grad_hess(
        cls, log_params: FloatArray, data: object
    ) -> tuple[float, FloatArray, FloatArray]:
        """Total log-likelihood with its log-gradient and analytic log-Hessian."""
        assert isinstance(data, Histories)
        return total_loglik(log_params, data, cls._shift, order=2)

    def _check_identifiable(self, x: FloatArray, weights: FloatArray) -> None:
        super()._check_identifiable(x, weights)
        if not np.any(x > 0):
            raise ModelInputError(
                "no customer made a repeat purchase (all frequency 0), so purchase rate and "
                "dropout cannot be estimated: fit on a longer period or more customers"
            )

    def _log_dropout_odds(self, x: FloatArray, t_x: FloatArray, t_cal: FloatArray) -> FloatArray:
        """Return ln(a / (b + k)) + (r + x) ln((alpha + T) / (alpha + t_x)), -inf without a
        dropout term (BG/NBD, x = 0)."""
        r, alpha, a, b = self._require_fit()
        ratio = alpha + t_cal
        ratio /= alpha + t_x
        log_odds = np.log(ratio, out=ratio)
        log_odds *= r + x
        if x.max() < 2**20:
            # ln(a / (b + k)) depends on the whole number x alone: a table, and one gather.
            counts = np.arange(x.max() + 1)
            offset, has_dropout = self._dropout_terms(counts)
            table = np.where(has_dropout, np.log(a / (b + offset)), -np.inf)
            log_odds += table[x.astype(np.intp)]
        else:
            offset, has_dropout = self._dropout_terms(x)
            log_odds += np.where(has_dropout, np.log(a / (b + offset)), -np.inf)
        return log_odds

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Return P(alive at T | x, t_x, T), a probability in [0, 1] per customer.

        BG/NBD: 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)),
        Fader, Hardie & Lee (2008) note 021, eq. (2); computed from the log-odds so that
        long-lapsed heavy buyers give 0, not NaN.
        """
        x, t_x, t_cal = as_prediction_inputs(frequency, recency, T)
        return self._probability_alive(x, t_x, t_cal)

    def _probability_alive(self, x: FloatArray, t_x: FloatArray, t_cal: FloatArray) -> FloatArray:
        # exp overflows to inf for long-lapsed heavy buyers: P(alive) 0 as it should be, and
        # ~4x faster than scipy's expit.
        with np.errstate(over="ignore"):
            odds = np.exp(self._log_dropout_odds(x, t_x, t_cal))
        odds += 1.0
        return np.reciprocal(odds, out=odds)

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Return E[repeat purchases in (T, T + t] | x, t_x, T], eq. (10), per customer.

        E = (a + b + x - 1) / (a - 1)
            * [1 - ((alpha + T) / (alpha + T + t))^(r + x) 2F1(r + x, b + x; a + b + x - 1; z)]
            * P(alive), with z = t / (alpha + T + t); `t` is in the time unit of the data.
        """
        x, t_x, t_cal = as_prediction_inputs(frequency, recency, T)
        t_future = np.asarray(t, dtype=np.float64)
        if not np.all(np.isfinite(t_future)) or np.any(t_future < 0):
            raise ModelInputError("t (future period length) must be finite and >= 0")
        r, alpha, a, b = self._require_fit()
        a = _away_from_one(a)
        s = self._shift
        pairs = None
        if t_future.ndim == 0 and x.size > _PAIR_ROWS:
            # The 2F1 term depends on (x, T) only: evaluate it on the distinct pairs, far fewer
            # than customers on real data, and gather.
            pairs = compress_rows(x, t_cal)
            x_hyp, t_hyp = pairs.columns
        else:
            x_hyp, t_hyp = x, t_cal
        c = a + b + x_hyp - 1 + s
        z = t_future / (alpha + t_hyp + t_future)
        growth = c / (a - 1) * _hyp_growth(r + x_hyp, b + x_hyp + s, c, z, r + x_hyp)
        if pairs is not None:
            growth = growth[pairs.inverse]
        return growth * self._probability_alive(x, t_x, t_cal)

    def expected_purchases_new_customer(self, t: ArrayLike) -> FloatArray:
        """Return E[repeat purchases in (0, t]] for a new customer, eq. (9) of Fader et al. 2005.

        E = (a + b - 1) / (a - 1) [1 - (alpha / (alpha + t))^r 2F1(r, b; a + b - 1; z)],
        z = t / (alpha + t), `t` in the time unit of the data.
        """
        t_future = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if not np.all(np.isfinite(t_future)) or np.any(t_future < 0):
            raise ModelInputError("t (period length) must be finite and >= 0")
        r, alpha, a, b = self._require_fit()
        a = _away_from_one(a)
        s = self._shift
        z = t_future / (alpha + t_future)
        growth = _hyp_growth(np.float64(r), np.float64(b + s), np.float64(a + b - 1 + s), z, r)
        # BG/NBD: E[1/p] - 1 style prefactor (a+b-1)/(a-1); modified: b/(a-1) (Batislam et al.).
        prefactor = (a + b - 1) / (a - 1) if s == 0 else b / (a - 1)
        return prefactor * growth


def _simulate(
    T: ArrayLike,
    params: tuple[float, float, float, float],
    size: int | None,
    rng: np.random.Generator,
    shift: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r, alpha, a, b = params
    t_cal = np.asarray(T, dtype=np.float64)
    if size is not None:
        t_cal = np.broadcast_to(t_cal, (size,))
    t_cal = np.atleast_1d(t_cal).astype(np.float64)
    n = t_cal.size
    rate = rng.gamma(r, 1.0 / alpha, n)
    p = np.clip(rng.beta(a, b, n), 1e-12, 1.0)
    arrivals = rng.poisson(rate * t_cal)
    # Repeat purchases made before dropping out: geometric on {1, 2, ...} (BG/NBD: a dropout
    # chance follows each repeat purchase) or on {0, 1, ...} (modified: one more at the first).
    lifetime_purchases = rng.geometric(p) - shift
    x = np.minimum(lifetime_purchases, arrivals)
    # Given N(T) = n Poisson arrivals, the x-th arrival time is T times the x-th of n uniform
    # order statistics, Beta(x, n - x + 1).
    order_stat = rng.beta(np.maximum(x, 1), np.maximum(arrivals - x, 0) + 1)
    t_x = np.where(x > 0, t_cal * order_stat, 0.0)
    return x.astype(np.float64), t_x, t_cal


def simulate(
    T: ArrayLike,
    r: float,
    alpha: float,
    a: float,
    b: float,
    *,
    size: int | None = None,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Draw (frequency, recency, T) from the BG/NBD generative process, in continuous time.

    Parameters
    ----------
    T : array_like
        Observation length per customer (or one value broadcast to `size` customers).
    r, alpha, a, b : float
        Population parameters; alpha in the time unit of T.
    size : int, optional
        Number of customers when T is a scalar.
    rng : numpy.random.Generator
        Source of randomness (pass a seeded one for reproducible draws).
    """
    return _simulate(T, (r, alpha, a, b), size, rng, shift=0)
