"""Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
the lifetime is exponential with rate ``mu ~ Gamma(s, beta)``. Equation numbers refer to
Fader, Hardie & Lee, "A Note on Deriving the Pareto/NBD Model and Related Expressions"
(2005, http://brucehardie.com/notes/009/), hereafter FHL.

The likelihood's hypergeometric terms are evaluated in log space after an Euler
transformation, ``2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, a+1-b; a+1; z)``, whose series is
bounded for every frequency: the untransformed ``alpha < beta`` branch overflows a double for
a few hundred purchases. The fit maximises the likelihood over log-parameters on the data
compressed to unique ``(x, t_x, T)`` rows with weights. The derivative of ``2F1`` with respect
to its parameters has no closed form, so the gradient is a central finite difference of the
vectorised log-likelihood (four parameters, eight evaluations on the unique rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from troth.errors import TrothError
from troth.value.models.base import compress_rows, weighted_sum

__all__ = ["ParetoNBD", "ParetoNBDFitError", "ParetoNBDInputError"]

PARAM_NAMES = ("r", "alpha", "s", "beta")
# Log-parameters are kept in [-BOUND, BOUND]: a fit that ends on this box has no interior MLE.
_LOG_BOUND = 13.0
# A fit ending beyond this (gamma shapes or scales ~8,000x off the unit, where scipy's 2F1 has
# long turned NaN) describes no heterogeneity at all: reported as having no interior maximum.
_PLAUSIBLE_LOG = 9.0
# Time is rescaled so the oldest customer has age 10 (as lifetimes does) for conditioning.
_TIME_SCALE_TARGET = 10.0
# Central-difference step in log-parameter space: ~ cube root of machine epsilon.
_GRAD_STEP = 6e-6
_HESS_STEP = 1e-4
# Above this many customers, predictions evaluate 2F1 on the distinct (x, t) pairs only.
_PAIR_ROWS = 10_000


class ParetoNBDInputError(TrothError, ValueError):
    """Customer summaries given to the Pareto/NBD model are malformed or cannot identify it."""


class ParetoNBDFitError(TrothError):
    """The Pareto/NBD likelihood has no interior maximum for these data."""


@dataclass(frozen=True)
class _Rows:
    """Unique (x, t_x, T) rows, how many customers each stands for, and the unique (x, t)
    pairs their 2F1 terms need (``recency_pair``/``age_pair`` index ``pair_x``/``pair_t``).

    ``x_code``/``T_code`` index the distinct frequencies and ages, so that terms of one column
    are evaluated on its distinct values and sums over rows are taken per value.
    """

    x: NDArray[np.float64]
    t_x: NDArray[np.float64]
    T: NDArray[np.float64]
    weight: NDArray[np.float64]
    pair_x: NDArray[np.float64]
    pair_t: NDArray[np.float64]
    recency_pair: NDArray[np.intp]
    age_pair: NDArray[np.intp]
    x_values: NDArray[np.float64]
    x_code: NDArray[np.intp]
    x_weight: NDArray[np.float64]  # customers per distinct frequency
    T_values: NDArray[np.float64]
    T_code: NDArray[np.intp]


def _validate(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Return the summaries as float arrays, raising ParetoNBDInputError on bad values."""
    x, t_x, age = (np.asarray(a, dtype=np.float64) for a in (frequency, recency, T))
    x, t_x, age = np.broadcast_arrays(x, t_x, age)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(age))):
        raise ParetoNBDInputError(
            "frequency, recency and T contain NaN or infinite values; drop or fill those customers"
        )
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ParetoNBDInputError(
            "frequency must hold non-negative whole numbers of repeat purchases"
        )
    if np.any(t_x < 0) or np.any(age <= 0):
        raise ParetoNBDInputError("recency must be >= 0 and T (customer age) > 0")
    if np.any(t_x > age):
        raise ParetoNBDInputError(
            "recency exceeds T for some customers; recency is the age at the last purchase, "
            "so it cannot be larger than the age T: check the observation end date"
        )
    if np.any((x == 0) & (t_x != 0)):
        raise ParetoNBDInputError(
            "customers with frequency 0 must have recency 0 (no repeat purchase yet)"
        )
    return x, t_x, age


def _compress(
    x: NDArray[np.float64],
    t_x: NDArray[np.float64],
    age: NDArray[np.float64],
    weights: NDArray[np.float64],
) -> _Rows:
    """Return the unique (x, t_x, T) rows with summed weights (zero-weight rows dropped)."""
    keep = weights > 0
    if not keep.all():
        x, t_x, age, weights = x[keep], t_x[keep], age[keep], weights[keep]
    rows = compress_rows(x, t_x, age, weights=weights)
    x, t_x, age = rows.columns
    # The 2F1 terms depend on (x, t) only: far fewer pairs than rows (a few thousand at 1M
    # customers on a daily grid), so each likelihood evaluation calls hyp2f1 on those.
    pairs = compress_rows(np.concatenate((x, x)), np.concatenate((t_x, age)))
    x_values, x_code = rows.values[0], rows.codes[0]
    return _Rows(
        x,
        t_x,
        age,
        rows.weights,
        *pairs.columns,
        pairs.inverse[: len(x)],
        pairs.inverse[len(x) :],
        x_values,
        x_code,
        np.bincount(x_code, rows.weights, minlength=x_values.size),
        rows.values[2],
        rows.codes[2],
    )


def _log1mexp(d: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return log(1 - exp(d)) for d <= 0, accurately for d near 0 and very negative d."""
    d = np.minimum(d, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(d > -np.log(2.0), np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


def _log_term(
    params: NDArray[np.float64], x: NDArray[np.float64], t: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Return log of ``2F1(a, b; a+1; z) / (m+t)^a``, one of the two terms of FHL eqs. (19)-(20).

    Here ``a = r+s+x``, ``m = max(alpha, beta)``, ``z = |alpha-beta| / (m+t)``, and ``b = s+1``
    when alpha >= beta (eq. 19), ``b = r+x`` otherwise (eq. 20). The Euler transformation
    leaves a bounded series ``2F1(1, a+1-b; a+1; z)`` times ``(1-z)^(1-b)``, with
    ``1-z = (min(alpha, beta)+t)/(m+t)``, so nothing overflows for large x.
    """
    r, alpha, s, beta = params
    a = r + s + x
    if alpha >= beta:
        big, small, power, b_prime = alpha, beta, s, r + x
    else:
        big, small, power, b_prime = beta, alpha, r + x - 1.0, s + 1.0
    log_big = np.log(big + t)
    return (
        -a * log_big
        - power * (np.log(small + t) - log_big)
        + np.log(hyp2f1(1.0, b_prime, a + 1.0, (big - small) / (big + t)))
    )


def _log_likelihood_parts(
    params: NDArray[np.float64],
    x: NDArray[np.float64],
    t_x: NDArray[np.float64],
    age: NDArray[np.float64],
    log_terms: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Return (log A_1, log of the 'alive at T' term, log of the 'died in (t_x, T]' term).

    The individual log-likelihood, FHL eq. (18), is ``A_1 + logaddexp(alive, died)``.
    ``log_terms`` are `_log_term` at (x, t_x) and (x, T) when the caller has them already.
    """
    r, alpha, s, beta = params
    alive, died = _branches(params, x, t_x, age, log_terms)
    log_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return log_a1, alive, died


def _branches(
    params: NDArray[np.float64],
    x: NDArray[np.float64],
    t_x: NDArray[np.float64],
    age: NDArray[np.float64],
    log_terms: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the logs of the 'alive at T' and 'died in (t_x, T]' terms of FHL eq. (18)."""
    r, alpha, s, beta = params
    if log_terms is None:
        log_terms = _terms_at(params, x, t_x, age)
    at_recency, at_age = log_terms
    # log A_0 = log(term(t_x) - term(T)); the difference is >= 0 and 0 when t_x = T.
    log_a0 = at_recency + _log1mexp(at_age - at_recency)
    alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    died = np.log(s) - np.log(r + s + x) + log_a0
    return alive, died


def _terms_at(
    params: NDArray[np.float64],
    x: NDArray[np.float64],
    t_x: NDArray[np.float64],
    age: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return `_log_term` at (x, t_x) and at (x, T) for every customer."""
    if x.size <= _PAIR_ROWS:
        return _log_term(params, x, t_x), _log_term(params, x, age)
    # 2F1 costs ~0.2 us a call: evaluate it on the distinct (x, t) pairs and gather.
    terms = []
    for t in (t_x, age):
        pairs = compress_rows(x.ravel(), t.ravel())
        terms.append(_log_term(params, *pairs.columns)[pairs.inverse].reshape(x.shape))
    return terms[0], terms[1]


def _individual_log_likelihood(
    params: NDArray[np.float64],
    x: NDArray[np.float64],
    t_x: NDArray[np.float64],
    age: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Return the log-likelihood of each customer's (x, t_x, T), FHL eq. (18)."""
    log_a1, alive, died = _log_likelihood_parts(params, x, t_x, age)
    return log_a1 + np.logaddexp(alive, died)


def _negative_log_likelihood(
    log_params: NDArray[np.float64], rows: _Rows
) -> tuple[float, NDArray[np.float64]]:
    """Return minus the weighted log-likelihood (FHL eq. 18) and its gradient in log-params.

    The gradient is analytic (digamma and rational terms) except for the derivatives of the
    2F1 terms with respect to r, alpha, s, beta, which have no closed form: those are central
    differences of `_log_term` on the unique (x, t) pairs only, then chained through the rows.
    Terms of one column are evaluated on its distinct values, and the rows' weights in the
    gradient are summed per distinct value (or pair) before multiplying.
    """
    params = np.exp(log_params)
    r, alpha, s, beta = params
    x, weight = rows.x, rows.weight
    xv, Tv = rows.x_values, rows.T_values
    terms = _log_term(params, rows.pair_x, rows.pair_t)
    d_terms = np.empty((4, len(terms)))
    for k in range(4):
        step = np.zeros(4)
        step[k] = _GRAD_STEP
        d_terms[k] = (
            _log_term(np.exp(log_params + step), rows.pair_x, rows.pair_t)
            - _log_term(np.exp(log_params - step), rows.pair_x, rows.pair_t)
        ) / (2 * _GRAD_STEP)
    at_recency, at_age = terms[rows.recency_pair], terms[rows.age_pair]
    log_alpha_T, log_beta_T = np.log(alpha + Tv), np.log(beta + Tv)
    log_rsx = np.log(r + s + xv)
    alive = -(r + x) * log_alpha_T[rows.T_code] - s * log_beta_T[rows.T_code]
    delta = at_age - at_recency
    # log A_0 = log(term(t_x) - term(T)); the difference is >= 0 and 0 when t_x = T.
    died = (np.log(s) - log_rsx)[rows.x_code] + at_recency + _log1mexp(delta)
    n = rows.x_weight.sum()
    ll = (
        rows.x_weight @ (gammaln(r + xv) - gammaln(r))
        + n * (r * np.log(alpha) + s * np.log(beta))
        + weighted_sum(weight, np.logaddexp(alive, died))
    )
    # d log A_0 = (d term(t_x) - e^delta d term(T)) / (1 - e^delta), delta = term(T) - term(t_x);
    # rows with t_x = T have A_0 = 0 and no 'died' branch (all weight on 'alive').
    ratio = np.exp(np.minimum(delta, 0.0))
    open_span = ratio < 1.0
    inv_gap = np.where(open_span, 1.0 / np.where(open_span, 1.0 - ratio, 1.0), 0.0)
    # The weight of each branch in d logaddexp: sigmoid(alive - died), 1 where no 'died'.
    died_weight = np.where(open_span, weight * expit(died - alive), 0.0)
    alive_weight = weight - died_weight
    alive_by_T = np.bincount(rows.T_code, alive_weight, minlength=Tv.size)
    alive_x_by_T = np.bincount(rows.T_code, alive_weight * x, minlength=Tv.size)
    died_by_x = np.bincount(rows.x_code, died_weight, minlength=xv.size)
    a0_weight = died_weight * inv_gap
    by_pair = np.bincount(rows.recency_pair, a0_weight, minlength=len(terms)) - np.bincount(
        rows.age_pair, a0_weight * ratio, minlength=len(terms)
    )
    grad = d_terms @ by_pair + np.array(
        [
            r * (rows.x_weight @ (digamma(r + xv) - digamma(r) + np.log(alpha)))
            - r * (alive_by_T @ log_alpha_T)
            - died_by_x @ (r / (r + s + xv)),
            n * r - alpha * ((r * alive_by_T + alive_x_by_T) @ (1.0 / (alpha + Tv))),
            n * s * np.log(beta)
            - s * (alive_by_T @ log_beta_T)
            + died_by_x @ (1.0 - s / (r + s + xv)),
            n * s - beta * s * (alive_by_T @ (1.0 / (beta + Tv))),
        ]
    )
    return -float(ll), -grad


def _log_covariance(log_params: NDArray[np.float64], rows: _Rows) -> NDArray[np.float64]:
    """Return the inverse observed information in log-parameter space.

    The Hessian is a central difference of the gradient, symmetrised; a flat or saddle-shaped
    likelihood has no finite variance, which is reported as inf (never NaN).
    """
    hess = np.empty((4, 4))
    for k in range(4):
        step = np.zeros(4)
        step[k] = _HESS_STEP
        hess[k] = (
            _negative_log_likelihood(log_params + step, rows)[1]
            - _negative_log_likelihood(log_params - step, rows)[1]
        ) / (2 * _HESS_STEP)
    try:
        cov = np.linalg.inv((hess + hess.T) / 2)
    except np.linalg.LinAlgError:
        cov = np.full((4, 4), np.inf)
    diag = np.diag(cov).copy()
    diag[~np.isfinite(diag) | (diag <= 0)] = np.inf
    np.fill_diagonal(cov, diag)
    return cov


class ParetoNBD:
    """Pareto/NBD purchase-frequency model with parameters r, alpha, s, beta.

    Time is in whatever unit ``recency`` and ``T`` are given in (days, weeks); ``alpha`` and
    ``beta`` are in that unit, ``r`` and ``s`` are unitless.

    Examples
    --------
    >>> model = ParetoNBD().fit(frequency, recency, T)  # doctest: +SKIP
    >>> model.params  # doctest: +SKIP
    {'r': 0.55, 'alpha': 10.6, 's': 0.61, 'beta': 11.7}
    """

    def __init__(self) -> None:
        self._params: NDArray[np.float64] | None = None
        self._log_cov: NDArray[np.float64] | None = None
        self.log_likelihood: float = float("nan")
        """Total weighted log-likelihood at the fitted parameters (nats); NaN before `fit`."""

    @classmethod
    def from_params(cls, r: float, alpha: float, s: float, beta: float) -> ParetoNBD:
        """Return a model with the given parameters (all > 0), ready to predict without `fit`."""
        values = np.array([r, alpha, s, beta], dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ParetoNBDInputError("r, alpha, s and beta must be finite and > 0")
        model = cls()
        model._params = values
        return model

    @property
    def params(self) -> dict[str, float]:
        """Fitted parameters by name: r, alpha (time unit), s, beta (time unit)."""
        return dict(zip(PARAM_NAMES, self._require_params().tolist(), strict=True))

    @property
    def standard_errors(self) -> dict[str, float]:
        """Asymptotic standard errors of the parameters (same units as `params`).

        From the observed information in log-parameter space (central second differences)
        and the delta method; ``inf`` for a parameter the data do not pin down.
        """
        if self._log_cov is None:
            raise ParetoNBDFitError("standard errors exist only after fit(); call fit first")
        params = self._require_params()
        return dict(
            zip(PARAM_NAMES, (params * np.sqrt(np.diag(self._log_cov))).tolist(), strict=True)
        )

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> ParetoNBD:
        """Fit r, alpha, s, beta by maximum likelihood (FHL eq. 18) and return self.

        Parameters
        ----------
        frequency : array_like
            Repeat purchases ``x`` of each customer (or row).
        recency : array_like
            Age at the last repeat purchase, ``t_x`` (0 when ``x`` is 0).
        T : array_like
            Age of the customer at the end of observation, same time unit.
        weights : array_like, optional
            Number of customers each row stands for; default 1 each.
        """
        x, t_x, age = _validate(frequency, recency, T)
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != x.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ParetoNBDInputError("weights must be finite, >= 0 and one per customer row")
        if w.sum() < 2:
            raise ParetoNBDInputError(
                "the Pareto/NBD model needs at least two customers to fit; "
                "use a larger population or a fixed model from from_params()"
            )
        if not np.any((x > 0) & (w > 0)):
            raise ParetoNBDInputError(
                "no customer made a repeat purchase (all frequency 0), so the purchase rate "
                "cannot be estimated; wait for more history or use from_params()"
            )
        scale = _TIME_SCALE_TARGET / float(age.max())
        rows = _compress(x, t_x * scale, age * scale, w)
        total = float(rows.weight.sum())

        best: list[Any] = [np.inf, np.zeros(4)]

        def mean_objective(log_params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            # Per customer, so the gradient tolerance means the same at 1k and 1M customers.
            value, grad = _negative_log_likelihood(log_params, rows)
            value, grad = value / total, grad / total
            if not (np.isfinite(value) and np.all(np.isfinite(grad))):
                # scipy's 2F1 has no finite value for large s or r + x with z near 1 (the
                # likelihood's flat ridge towards homogeneous dropout): a wall, never a NaN
                # that would send the line search anywhere.
                return np.inf, np.zeros(4)
            if value < best[0]:
                best[0], best[1] = value, log_params.copy()
            return value, grad

        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 4
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            result = minimize(
                mean_objective,
                np.zeros(4),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-9},
            )
        # The optimiser may stop after a failed step into the wall: keep the best point seen.
        log_params = result.x if result.fun <= best[0] else best[1]
        fun = min(float(result.fun), float(best[0]))
        if not np.isfinite(fun) or np.any(np.abs(log_params) > _PLAUSIBLE_LOG):
            raise ParetoNBDFitError(
                "the Pareto/NBD likelihood has no interior maximum for these data "
                f"(log-parameters {np.round(log_params, 2).tolist()}); the population is too "
                "small or too homogeneous: fit on more customers or a simpler model"
            )
        params = np.exp(log_params)
        params[[1, 3]] /= scale  # alpha and beta back to the caller's time unit
        self._params = params
        # Each purchase contributes a rate factor lambda (per time unit): undo the rescaling.
        self.log_likelihood = -fun * total + weighted_sum(rows.weight, rows.x) * np.log(scale)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self._log_cov = _log_covariance(log_params, rows)
        return self

    def _require_params(self) -> NDArray[np.float64]:
        if self._params is None:
            raise ParetoNBDFitError(
                "the model has no parameters yet; call fit() or ParetoNBD.from_params()"
            )
        return self._params

    def individual_log_likelihood(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> NDArray[np.float64]:
        """Return each customer's log-likelihood (nats), FHL eq. (18)."""
        x, t_x, age = _validate(frequency, recency, T)
        return _individual_log_likelihood(self._require_params(), x, t_x, age)

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> NDArray[np.float64]:
        """Return P(alive at T | x, t_x, T), a probability in [0, 1], FHL eq. (36)-(37)."""
        x, t_x, age = _validate(frequency, recency, T)
        return self._probability_alive(x, t_x, age)

    def _probability_alive(
        self, x: NDArray[np.float64], t_x: NDArray[np.float64], age: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        alive, died = _branches(self._require_params(), x, t_x, age)
        # 1 / (1 + died/alive) from the log-ratio: exp overflows to inf, giving 0, never NaN.
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(died - alive))

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> NDArray[np.float64]:
        """Return E[purchases in (T, T + t] | x, t_x, T], a count, FHL eq. (41)."""
        x, t_x, age = _validate(frequency, recency, T)
        horizon = self._horizon(t)
        r, alpha, s, beta = self._require_params()
        alive = self._probability_alive(x, t_x, age)
        return (
            alive
            * (r + x)
            / (alpha + age)
            * (beta + age)
            * _one_minus_power_over(s - 1.0, horizon / (beta + age))
        )

    def expected_purchases_new_customer(self, t: ArrayLike) -> NDArray[np.float64]:
        """Return E[purchases in (0, t]] for a customer just acquired, a count, FHL eq. (27)."""
        horizon = self._horizon(t)
        r, alpha, s, beta = self._require_params()
        return r * beta / alpha * _one_minus_power_over(s - 1.0, horizon / beta)

    @staticmethod
    def _horizon(t: ArrayLike) -> NDArray[np.float64]:
        horizon = np.asarray(t, dtype=np.float64)
        if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
            raise ParetoNBDInputError("the horizon t must be finite and >= 0")
        return horizon


def _one_minus_power_over(k: float, u: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return (1 - (1+u)^(-k)) / k, and its limit log(1+u) at k = 0, without cancellation."""
    log1p_u = np.log1p(u)
    if k == 0.0:
        return log1p_u
    return -np.expm1(-k * log1p_u) / k
