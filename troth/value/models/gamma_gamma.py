"""Gamma-Gamma model of the average value of a customer's repeat transactions.

Fader, Hardie & Lee (2005), "RFM and CLV: Using iso-value curves for customer base
analysis", JMR 42(4); Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
(the note). A customer's transaction values are Gamma(p, nu); nu varies across customers
as Gamma(q, v). The mean m of a customer's x repeat transactions is then Gamma(p x, nu x),
and m is independent of x, so the model is fitted on repeat buyers only.

The likelihood is evaluated on sufficient statistics: the gammaln/digamma terms depend on
x alone and are summed over the distinct frequencies with their weights, and the only
per-customer work is log(x m + v) and 1 / (x m + v). A 1M-customer fit therefore costs a
few vector operations per Newton step instead of an automatic-differentiation graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, polygamma

from troth.value.models.base import ConvergenceError, ModelInputError, weighted_sum

__all__ = ["GammaGamma"]

# Parameters beyond e**25 (~7e10) mean the optimiser ran to a boundary of the parameter
# space (e.g. no spread in spend between customers): there is no finite MLE to report.
_MAX_LOG_PARAM = 25.0
# Large inputs are first fitted on about this many rows to get a close starting point.
_SUBSAMPLE_ROWS = 20_000
# Largest gradient component of the mean log-likelihood (in log-parameters) at an optimum.
_GRADIENT_TOL = 1e-7
# A standard error of q this many times q itself means the data cannot tell q from infinity.
_MAX_RELATIVE_SE_Q = 10.0


def _vector(name: str, values: ArrayLike) -> NDArray[np.float64]:
    """Return `values` as a finite 1-D float array, or raise naming the column."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ModelInputError(f"{name} must be numeric; convert it to numbers first.") from error
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ModelInputError(f"{name} must be one-dimensional; got shape {array.shape}.")
    # min and max propagate NaN and meet any infinity, without a boolean array per check.
    if array.size and not (np.isfinite(array.min()) and np.isfinite(array.max())):
        raise ModelInputError(f"{name} contains NaN or infinite values; drop or fill those rows.")
    return array


def _frequency_and_spend(
    frequency: ArrayLike, monetary_value: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate (x, m): x a non-negative integer count, m > 0 wherever x > 0, m >= 0 else."""
    x = _vector("frequency", frequency)
    m = _vector("monetary_value", monetary_value)
    if x.shape != m.shape:
        raise ModelInputError(
            f"frequency and monetary_value differ in length ({x.size} vs {m.size})."
        )
    if x.size and (x.min() < 0 or not np.array_equal(x, np.floor(x))):
        raise ModelInputError("frequency must hold non-negative whole numbers of repeat purchases.")
    if m.size and m.min() < 0:
        raise ModelInputError(
            "monetary_value is negative for some customers; Gamma-Gamma models positive spend, "
            "so net refunds out or drop those customers."
        )
    if np.any((m == 0) & (x > 0)):
        raise ModelInputError(
            "monetary_value is zero for some repeat buyers; Gamma-Gamma needs a positive mean "
            "spend for every customer with frequency > 0 (drop zero-value customers first)."
        )
    return x, m


@dataclass(frozen=True)
class _SpendData:
    """Sufficient statistics of repeat buyers for the log-likelihood."""

    x: NDArray[np.float64]  # frequency per row (> 0)
    s: NDArray[np.float64]  # x * m, the customer's total repeat spend
    w: NDArray[np.float64]  # row weights
    wx: NDArray[np.float64]  # w * x
    x_unique: NDArray[np.float64]
    w_unique: NDArray[np.float64]  # summed weight per distinct frequency
    total_weight: float
    sum_wx_log_s: float  # sum w x log(x m): the (p x) log m + p x log x terms
    sum_w_log_m: float

    @classmethod
    def build(
        cls, x: NDArray[np.float64], m: NDArray[np.float64], w: NDArray[np.float64]
    ) -> _SpendData:
        """Return the statistics of the rows with x > 0 and w > 0."""
        keep = (x > 0) & (w > 0)
        x, m, w = x[keep], m[keep], w[keep]
        if x.size and x.max() <= 4 * x.size + 1000:
            # x holds whole numbers (validated), so counting beats sorting for distinct x
            counts = np.bincount(x.astype(np.int64), weights=w)
            x_unique = np.flatnonzero(counts).astype(float)
            w_unique = counts[x_unique.astype(np.int64)]
        else:
            x_unique, inverse = np.unique(x, return_inverse=True)
            w_unique = np.bincount(inverse, weights=w)
        s = x * m
        wx = w * x
        return cls(
            x=x,
            s=s,
            w=w,
            wx=wx,
            x_unique=x_unique,
            w_unique=w_unique,
            total_weight=float(w.sum()),
            sum_wx_log_s=weighted_sum(wx, np.log(s)),
            sum_w_log_m=weighted_sum(w, np.log(m)),
        )


def _log_likelihood(
    params: NDArray[np.float64], data: _SpendData, order: int
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Total weighted log-likelihood, its gradient and Hessian in (p, q, v).

    Sums, over customers, the log of the marginal density of the mean spend (the note,
    section 2; Fader, Hardie & Lee 2005, appendix):
    ``gammaln(px+q) - gammaln(px) - gammaln(q) + q log v + (px-1) log m + px log x
    - (px+q) log(xm+v)``. Derivatives use digamma (order >= 1) and trigamma (order 2);
    entries not requested are returned as zeros.
    """
    p, q, v = params
    xu, wu, n = data.x_unique, data.w_unique, data.total_weight
    shifted = data.s + v
    log_shifted = np.log(shifted)
    a_sum = weighted_sum(data.w, log_shifted)
    b_sum = weighted_sum(data.wx, log_shifted)
    ll = (
        float(wu @ (gammaln(p * xu + q) - gammaln(p * xu)))
        - n * gammaln(q)
        + n * q * np.log(v)
        + p * data.sum_wx_log_s
        - data.sum_w_log_m
        - p * b_sum
        - q * a_sum
    )
    grad = np.zeros(3)
    hess = np.zeros((3, 3))
    if order >= 1:
        inv = 1.0 / shifted
        c_sum, d_sum = weighted_sum(data.w, inv), weighted_sum(data.wx, inv)
        psi_pq = digamma(p * xu + q)
        grad[0] = float((wu * xu) @ (psi_pq - digamma(p * xu))) + data.sum_wx_log_s - b_sum
        grad[1] = float(wu @ psi_pq) - n * digamma(q) + n * np.log(v) - a_sum
        grad[2] = n * q / v - (p * d_sum + q * c_sum)
    if order >= 2:
        inv2 = inv * inv
        e_sum, f_sum = weighted_sum(data.w, inv2), weighted_sum(data.wx, inv2)
        tri_pq = polygamma(1, p * xu + q)
        hess[0, 0] = float((wu * xu * xu) @ (tri_pq - polygamma(1, p * xu)))
        hess[0, 1] = hess[1, 0] = float((wu * xu) @ tri_pq)
        hess[0, 2] = hess[2, 0] = -d_sum
        hess[1, 1] = float(wu @ tri_pq) - n * polygamma(1, q)
        hess[1, 2] = hess[2, 1] = n / v - c_sum
        hess[2, 2] = -n * q / v**2 + p * f_sum + q * e_sum
    return float(ll), grad, hess


class _Objective:
    """Mean negative log-likelihood in log-parameters, caching the last evaluation."""

    def __init__(self, data: _SpendData) -> None:
        self._data = data
        self._theta: NDArray[np.float64] | None = None
        self._value: tuple[float, NDArray[np.float64], NDArray[np.float64]] | None = None
        self._natural: tuple[float, NDArray[np.float64], NDArray[np.float64]] | None = None

    def evaluate(
        self, theta: NDArray[np.float64]
    ) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
        """Return objective, gradient and Hessian at log-parameters `theta`."""
        if self._theta is None or not np.array_equal(theta, self._theta):
            params = np.exp(theta)
            ll, grad, hess = _log_likelihood(params, self._data, order=2)
            self._natural = (ll, grad, hess)
            scale = -1.0 / self._data.total_weight
            # chain rule for d/d(log phi): g_i phi_i and H_ij phi_i phi_j + delta_ij g_i phi_i
            g_log = grad * params
            h_log = hess * np.outer(params, params) + np.diag(g_log)
            self._theta = theta.copy()
            self._value = (scale * ll, scale * g_log, scale * h_log)
        assert self._value is not None
        return self._value

    def natural(
        self, theta: NDArray[np.float64]
    ) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
        """Return the total log-likelihood, gradient and Hessian in (p, q, v) at `theta`."""
        self.evaluate(theta)
        assert self._natural is not None
        return self._natural

    def value_and_grad(self, theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        """Return the objective and its gradient at log-parameters `theta`."""
        value, grad, _ = self.evaluate(theta)
        return (value if np.isfinite(value) else np.inf), grad

    def hessian(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return the objective's Hessian at log-parameters `theta`."""
        return self.evaluate(theta)[2]


def _starting_point(data: _SpendData) -> NDArray[np.float64] | None:
    """Return log-parameters fitted on an evenly strided subsample, or None for small data.

    Far from the optimum the optimiser needs ~10 steps; taking them on 1 row in k makes
    them cheap, and the full data then needs only a few (quadratic) Newton steps.
    """
    stride = data.x.size // _SUBSAMPLE_ROWS
    if stride < 2:
        return None
    rows = slice(0, None, stride)
    sample = _SpendData.build(data.x[rows], data.s[rows] / data.x[rows], data.w[rows])
    try:
        return _maximise(_Objective(sample), np.zeros(3))
    except ConvergenceError:
        return None


def _newton(objective: _Objective, theta: NDArray[np.float64], steps: int) -> NDArray[np.float64]:
    """Take up to `steps` Newton steps from `theta` while the Hessian is positive definite."""
    for _ in range(steps):
        _, grad, hess = objective.evaluate(theta)
        if not np.all(np.isfinite(hess)) or np.abs(theta).max() > _MAX_LOG_PARAM:
            break
        try:
            # only near a minimum is the Newton step a descent step
            np.linalg.cholesky(hess)
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        theta = theta - step
        if np.abs(step).max() < 1e-10:
            break
    return theta


def _converged(objective: _Objective, theta: NDArray[np.float64]) -> bool:
    """Return whether `theta` is a finite stationary point of the objective."""
    _, grad, _ = objective.evaluate(theta)
    return bool(np.all(np.abs(grad) < _GRADIENT_TOL)) and np.abs(theta).max() <= _MAX_LOG_PARAM


def _maximise(
    objective: _Objective, start: NDArray[np.float64], newton_first: bool = False
) -> NDArray[np.float64]:
    """Return the log-parameters maximising the likelihood, or raise `ConvergenceError`.

    `newton_first` tries plain Newton steps from a start known to be close (the subsample
    fit) before the safeguarded trust-region method.
    """
    if newton_first:
        theta = _newton(objective, start, steps=8)
        if _converged(objective, theta):
            return theta
    result = minimize(
        objective.value_and_grad,
        x0=start,
        jac=True,
        hess=objective.hessian,
        method="trust-exact",
        options={"gtol": 1e-9, "maxiter": 500},
    )
    # Near the optimum the decrease of the mean log-likelihood falls below float precision
    # and trust-exact may stop ("bad approximation") just short of gtol. Newton steps need
    # only the gradient and Hessian, which stay accurate there, so finish with a few.
    theta = _newton(objective, result.x, steps=5)
    if not _converged(objective, theta):
        raise ConvergenceError(
            "Gamma-Gamma fit did not converge to finite parameters "
            f"(log p, log q, log v = {np.round(theta, 3).tolist()}: {result.message}). "
            "This happens when mean spend varies between customers no more than one "
            "customer's transactions do (q and v grow without bound: no heterogeneity to "
            "model), or with too few repeat buyers; check the data or fit more customers."
        )
    return theta


class GammaGamma:
    """Gamma-Gamma spend model with parameters p, q, v (Fader, Hardie & Lee 2005).

    After `fit`: `params` maps "p", "q", "v" to their maximum likelihood estimates,
    `standard_errors` maps the same names to asymptotic standard errors (inverse observed
    information), and `log_likelihood` is the weighted total log-likelihood at the optimum.
    """

    def __init__(self) -> None:
        """Create an unfitted model; call `fit` before predicting."""
        self.params: dict[str, float] = {}
        self.standard_errors: dict[str, float] = {}
        self.log_likelihood: float = float("nan")

    def fit(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> GammaGamma:
        """Fit p, q, v by maximum likelihood and return the fitted model itself.

        Parameters
        ----------
        frequency : array_like
            Number of repeat purchases x per customer (or per compressed row).
            Rows with x == 0 are ignored: their spend carries no information (the note, §2).
        monetary_value : array_like
            Mean value m of the customer's repeat purchases, in currency units; must be
            > 0 for every row with x > 0.
        weights : array_like, optional
            Number of customers each row stands for (default 1); fitting rows with
            weights equals fitting the expanded rows.

        Raises
        ------
        ModelInputError
            On NaN, negative or zero spend of a repeat buyer, negative weights, no repeat
            buyers, or fewer than two distinct spends (no finite MLE exists then).
        ConvergenceError
            When the optimiser does not converge to a finite optimum, or when mean spend
            shows no heterogeneity between customers (q not distinguishable from infinity).

        Notes
        -----
        A fitted q <= 1 is returned as is: the likelihood is fine, but the population mean
        spend p v / (q - 1) is infinite, so `population_mean_value` raises and
        `expected_average_value` raises for customers with p x + q <= 1.
        """
        x, m = _frequency_and_spend(frequency, monetary_value)
        w = np.ones_like(x) if weights is None else _vector("weights", weights)
        if w.shape != x.shape:
            raise ModelInputError(f"weights and frequency differ in length ({w.size} vs {x.size}).")
        if np.any(w < 0):
            raise ModelInputError("weights must be non-negative customer counts.")
        data = _SpendData.build(x, m, w)
        if data.total_weight == 0:
            raise ModelInputError(
                "no repeat buyers (frequency > 0 with positive weight): Gamma-Gamma is fitted "
                "on the mean spend of repeat purchases, so there is nothing to fit."
            )
        mean_spend = data.s / data.x
        if mean_spend.min() == mean_spend.max():
            raise ModelInputError(
                "all repeat buyers have the same mean spend (or there is only one): the "
                "likelihood has no finite maximum; fit on more customers."
            )
        start = _starting_point(data)
        objective = _Objective(data)
        if start is None:
            theta = _maximise(objective, np.zeros(3))
        else:
            theta = _maximise(objective, start, newton_first=True)
        params = np.exp(theta)
        ll, _, hess = objective.natural(theta)  # the optimiser's last evaluation, cached
        try:
            # observed information -H must be positive definite at a proper maximum
            chol = np.linalg.cholesky(-hess)
        except np.linalg.LinAlgError as error:
            raise ConvergenceError(
                "Gamma-Gamma fit ended where the likelihood is not at a maximum; "
                "standard errors are undefined. Check the data for outliers."
            ) from error
        covariance = np.linalg.inv(chol).T @ np.linalg.inv(chol)
        if np.sqrt(covariance[1, 1]) > _MAX_RELATIVE_SE_Q * params[1]:
            # q -> infinity is the limit with no spread of nu between customers: the
            # likelihood is flat in q there, and q, v would be arbitrary points on that ridge
            raise ConvergenceError(
                "Gamma-Gamma found no heterogeneity in spend between customers (q grows "
                f"without bound; q = {params[1]:.3g} is not identified). Every customer's "
                f"expected transaction value is then the overall mean, "
                f"{params[0] * params[2] / (params[1] - 1):.4g}; use it directly."
            )
        names = ("p", "q", "v")
        self.params = {name: float(value) for name, value in zip(names, params, strict=True)}
        self.standard_errors = {
            name: float(np.sqrt(value))
            for name, value in zip(names, np.diag(covariance), strict=True)
        }
        self.log_likelihood = ll
        return self

    def _fitted(self) -> tuple[float, float, float]:
        if not self.params:
            raise ModelInputError("GammaGamma is not fitted yet; call fit() first.")
        return self.params["p"], self.params["q"], self.params["v"]

    def population_mean_value(self) -> float:
        """Return E[Z] = p v / (q - 1), the mean transaction value of a new customer.

        In currency units (the note, eq. 2). Raises `ModelInputError` when q <= 1: the
        Gamma(q, v) spread of nu is then so heavy that the mean spend is infinite.
        """
        p, q, v = self._fitted()
        if q <= 1:
            raise ModelInputError(
                f"fitted q = {q:.4g} <= 1: the population mean spend p v / (q - 1) is infinite "
                "(a few customers with very large spends dominate); check for outliers."
            )
        return p * v / (q - 1)

    def expected_average_value(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> NDArray[np.float64]:
        """Return E[Z | x, m] = p (v + x m) / (p x + q - 1) per customer, in currency units.

        The conditional expectation of the value of a customer's future transactions
        (the note, eq. 5): a weighted average of the population mean p v / (q - 1) and the
        customer's own mean spend m, with weight p x / (p x + q - 1) on m. Customers with
        x == 0 get the population mean (their `monetary_value` is ignored). Raises
        `ModelInputError` for rows where p x + q <= 1 (infinite expectation: q <= 1 and
        x too small to offset it).
        """
        p, q, v = self._fitted()
        x, m = _frequency_and_spend(frequency, monetary_value)
        denominator = p * x + q - 1
        if np.any(denominator <= 0):
            raise ModelInputError(
                f"fitted q = {q:.4g} <= 1 makes the expected spend infinite for customers "
                f"with frequency <= {np.max(x[denominator <= 0]):.0f}; "
                "predict for repeat buyers only or check the spend data for outliers."
            )
        return p * (v + x * m) / denominator

    conditional_expected_average_profit = expected_average_value
