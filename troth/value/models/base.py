"""Shared machinery for BTYD models: input checks, row compression and maximum likelihood.

Every model here is fitted on (frequency, recency, T) compressed to unique rows with weights
(Fader & Hardie fit CDNOW the same way), so the cost of a fit grows with the number of distinct
purchase histories, not with the number of customers. Parameters are optimised in log space
(they are all positive) with an analytic gradient supplied by the model: BFGS on a strided
subsample of the customers finds a starting point, then Newton steps (Hessian by differences
of the gradient) finish on all the rows, which then need a handful of evaluations, not ~100.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

from troth.errors import TrothError

__all__ = [
    "BTYDModel",
    "CompressedRows",
    "ConvergenceError",
    "ModelInputError",
    "as_prediction_inputs",
    "compress_rows",
    "fit_log_params",
    "hessian_from_gradient",
    "newton_log_params",
    "validate_rfm",
    "weighted_sum",
]

FloatArray = NDArray[np.float64]
# Per-row log-likelihood (n,) and its gradient with respect to the log-parameters (k, n):
# parameters first, so that weighting is k contiguous dot products (gemv on (n, k) is ~10x slower).
RowLogLikelihood = Callable[[FloatArray, tuple[FloatArray, ...]], tuple[FloatArray, FloatArray]]
# Total (weighted) log-likelihood and its gradient (k,) over data prepared by the model.
TotalLogLikelihood = Callable[[FloatArray, object], tuple[float, FloatArray]]

_Z95 = 1.959963984540054  # standard normal quantile for a two-sided 95% interval
# Inputs with more rows than this get a starting point fitted on a strided subsample of them.
_SUBSAMPLE_ROWS = 50_000
# A log-parameter known to no better than +-20 (a factor e^40 in the parameter) is not known:
# the likelihood rises towards a boundary and the optimiser stopped somewhere on the way.
_MAX_LOG_STD = 20.0


class ModelInputError(TrothError, ValueError):
    """The data given to a value model cannot be fitted or scored; the message says why."""


class ConvergenceError(TrothError):
    """Maximum likelihood did not converge to finite parameters for this data."""


def weighted_sum(weights: FloatArray, values: FloatArray) -> float:
    """Return sum(weights * values) in one pass, without BLAS.

    OpenBLAS spreads the dot product of long vectors over threads; on a busy machine waking
    them costs milliseconds a call (a 260k-row dot: 0.03 ms idle, 2-12 ms with the other core
    busy), which einsum's single-threaded loop never does (0.1-0.3 ms).
    """
    return float(np.einsum("i,i->", weights, values))


@dataclass(frozen=True)
class CompressedRows:
    """Unique rows of the input columns, their weights, and the map back to the input rows.

    `values[i]` holds the distinct values of column i in ascending order and `codes[i]` the
    position of each unique row's value in it, so that a model can evaluate a function of one
    column on its few distinct values and gather the result.
    """

    columns: tuple[FloatArray, ...]
    weights: FloatArray
    inverse: NDArray[np.intp]
    values: tuple[FloatArray, ...]
    codes: tuple[NDArray[np.intp], ...]


def _sorted_codes(column: FloatArray) -> tuple[FloatArray, NDArray[np.int64]]:
    """Return the distinct values of `column` in ascending order and each element's position."""
    low, high = column.min(), column.max()
    code = None
    if high - low < 2**20 and abs(low) < 2**52:
        # Whole numbers (counts, days): the offset is the code, no hashing needed; the unused
        # values in the range are dropped below.
        code = column.astype(np.int64)
        if np.array_equal(code, column):
            code -= int(low)
            values = np.arange(low, high + 1)
        else:
            code = None
    if code is None:
        # A hash table (pandas) is ~5x faster than np.unique's sort on 1M floats; only the few
        # distinct values need sorting.
        code, values = pd.factorize(column, sort=False)
        order = np.argsort(values, kind="stable")
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        values, code = values[order], rank[code]
    used = np.bincount(code, minlength=values.size) > 0
    if not used.all():
        renumber = np.cumsum(used) - 1
        values, code = values[used], renumber[code]
    return np.asarray(values, dtype=np.float64), code


def compress_rows(*columns: FloatArray, weights: FloatArray | None = None) -> CompressedRows:
    """Return the unique rows of the stacked `columns` with summed weights (1 each by default).

    The rows come in lexicographic order, as from np.unique(axis=0).
    """
    # np.unique(axis=0) sorts rows lexicographically and is ~10x slower than a 1-D unique on
    # 1M rows; code each column, then combine the codes into one integer key (mixed radix),
    # folding each column in as it is coded so that one key array is alive, not one per column.
    n = np.asarray(columns[0]).size
    values: list[FloatArray] = []
    key = np.zeros(n, dtype=np.int64)
    radix = 1
    for column in columns:
        distinct, code = _sorted_codes(np.asarray(column))
        values.append(distinct)
        radix *= distinct.size
        if radix >= 2**62:
            break
        key *= distinct.size
        key += code
        del code
    if radix < 2**62:
        if radix <= max(2 * n, 2**16):
            # Few possible keys (pairs of short columns): count them, no hashing or sorting.
            unique_keys = np.flatnonzero(np.bincount(key, minlength=radix))
            rank = np.zeros(radix, dtype=np.intp)
            rank[unique_keys] = np.arange(unique_keys.size)
            inverse = rank[key]
        else:
            # Hash the keys, then sort only the distinct ones (sorting all costs ~5x more).
            key_code, unique_keys = pd.factorize(key, sort=False)
            del key
            order = np.argsort(unique_keys)
            rank = np.empty(order.size, dtype=np.intp)
            rank[order] = np.arange(order.size)
            unique_keys, inverse = unique_keys[order], rank[key_code]
        unique_codes = []
        for distinct in reversed(values):
            unique_codes.append(unique_keys % distinct.size)
            unique_keys = unique_keys // distinct.size
        row_codes = tuple(reversed(unique_codes))
        unique_columns = tuple(v[c] for v, c in zip(values, row_codes, strict=True))
    else:
        values = [np.unique(column) for column in columns]
        unique, inverse = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
        unique_columns = tuple(unique.T.copy())
        row_codes = tuple(
            np.searchsorted(v, c) for v, c in zip(values, unique_columns, strict=True)
        )
    inverse = inverse.reshape(-1)
    n_unique = unique_columns[0].size
    if weights is None:
        summed = np.bincount(inverse, minlength=n_unique).astype(np.float64)
    else:
        summed = np.bincount(inverse, weights=weights, minlength=n_unique)
    return CompressedRows(
        unique_columns,
        summed,
        inverse,
        tuple(values),
        tuple(c.astype(np.intp) for c in row_codes),
    )


def _as_float_array(name: str, values: ArrayLike) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelInputError(f"{name} must be numeric; convert it to numbers first") from exc
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ModelInputError(f"{name} must be one-dimensional, got shape {array.shape}")
    # min and max propagate NaN and meet any infinity, without a boolean array per check.
    if array.size and not (np.isfinite(array.min()) and np.isfinite(array.max())):
        raise ModelInputError(f"{name} holds NaN or infinite values; drop or fill those customers")
    return array


def validate_rfm(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray | None]:
    """Check and convert (frequency, recency, T[, weights]) to float arrays of one length.

    Raises
    ------
    ModelInputError
        When a column is not finite, lengths differ, frequency is not a non-negative integer,
        recency is negative or above T, recency is not 0 for a customer with no repeat purchase,
        T is not positive, or a weight is negative.
    """
    x = _as_float_array("frequency", frequency)
    t_x = _as_float_array("recency", recency)
    t_cal = _as_float_array("T", T)
    if not (x.shape == t_x.shape == t_cal.shape):
        raise ModelInputError(
            f"frequency, recency and T must have one length; got {x.size}, {t_x.size}, {t_cal.size}"
        )
    if x.size == 0:
        raise ModelInputError("no customers given; pass at least one (frequency, recency, T) row")
    if x.min() < 0 or not np.array_equal(x, np.floor(x)):
        raise ModelInputError("frequency must count repeat purchases: non-negative whole numbers")
    if t_cal.min() <= 0:
        raise ModelInputError("T (customer age) must be positive; drop customers seen for no time")
    if t_x.min() < 0:
        raise ModelInputError("recency must be >= 0 (time of the last purchase since the first)")
    if np.any(t_x > t_cal):
        raise ModelInputError("recency exceeds T for some customers; recency must be <= T")
    if np.any((x == 0) & (t_x != 0)):
        raise ModelInputError("recency must be 0 for customers with frequency 0 (no repeat buy)")
    w = None
    if weights is not None:
        w = _as_float_array("weights", weights)
        if w.shape != x.shape:
            raise ModelInputError(f"weights must have {x.size} values, one per row; got {w.size}")
        if np.any(w < 0) or not np.any(w > 0):
            raise ModelInputError("weights count customers: non-negative with a positive total")
    return x, t_x, t_cal, w


def _check_interior(log_params: FloatArray) -> None:
    """Raise ConvergenceError when a log-parameter ran off towards 0 or infinity."""
    if not np.all(np.isfinite(log_params)) or np.max(np.abs(log_params)) > 18:
        raise ConvergenceError(
            "a parameter ran off to 0 or infinity (the maximum likelihood is on the boundary); "
            "the data do not identify the model: fit on more customers with repeat purchases"
        )


def fit_log_params(
    total_loglik: TotalLogLikelihood,
    x0: FloatArray,
    data: object,
    n_customers: float,
    gtol: float = 1e-9,
) -> FloatArray:
    """Maximise the log-likelihood over log-parameters by BFGS; return the optimal log-parameters.

    The objective is the weighted mean negative log-likelihood (as lifetimes does) so that the
    gradient tolerance does not depend on the number of customers.
    """

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        ll, grad = total_loglik(log_params, data)
        value, gradient = -ll / n_customers, -grad / n_customers
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            # Steer the line search away from overflowing regions instead of failing.
            return 1e300, np.zeros_like(log_params)
        return value, gradient

    result = minimize(
        objective, x0, jac=True, method="BFGS", options={"gtol": gtol, "maxiter": 5000}
    )
    gradient_norm = np.max(np.abs(result.jac)) if result.jac is not None else np.inf
    # BFGS reports "precision loss" at the numerical optimum; accept it when the gradient is ~0.
    # On a flat ridge (a, b of the dropout beta both large: homogeneous dropout) it stops with
    # mean gradients ~1e-5 per customer, where the log-likelihood no longer moves.
    if not np.all(np.isfinite(result.x)) or (not result.success and gradient_norm > 1e-4):
        raise ConvergenceError(
            f"the likelihood did not converge ({result.message}); the data may be too few or "
            "too uniform to identify the model: fit on more customers"
        )
    _check_interior(result.x)
    return np.asarray(result.x, dtype=np.float64)


def newton_log_params(
    loglik_grad_hess: Callable[[FloatArray, object], tuple[float, FloatArray, FloatArray]],
    start: FloatArray,
    data: object,
    n_customers: float,
    gtol: float = 1e-9,
    max_steps: int = 20,
) -> tuple[FloatArray, float, FloatArray] | None:
    """Return the log-parameters maximising the likelihood (Newton steps from `start`), and
    the total log-likelihood and its Hessian there.

    Each step is halved until the likelihood does not fall. Returns None where Newton does not
    apply (the Hessian is not negative definite, or no step helps): the caller falls back to
    BFGS. Converged means the largest gradient component of the mean log-likelihood is below
    `gtol`, the criterion `fit_log_params` uses.
    """
    theta = np.asarray(start, dtype=np.float64)
    ll, grad, hessian = loglik_grad_hess(theta, data)
    for _ in range(max_steps):
        if not (np.isfinite(ll) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hessian))):
            return None
        if np.max(np.abs(grad)) < gtol * n_customers:
            return theta, ll, hessian
        try:
            np.linalg.cholesky(-hessian)
        except np.linalg.LinAlgError:
            return None
        step = np.linalg.solve(-hessian, grad)
        for _ in range(30):
            new = loglik_grad_hess(theta + step, data)
            # Rounding may cost ~1e-12 of the total at the optimum; that is no worse point.
            if np.isfinite(new[0]) and new[0] >= ll - 1e-12 * abs(ll):
                break
            step = step / 2
        else:
            return None
        theta = theta + step
        ll, grad, hessian = new
    return None


def hessian_from_gradient(
    total_loglik: TotalLogLikelihood,
    log_params: FloatArray,
    data: object,
    step: float = 1e-5,
) -> FloatArray:
    """Return the Hessian of the total negative log-likelihood in log-parameter space.

    Central finite differences of the analytic gradient, symmetrised.
    """
    k = log_params.size
    hessian = np.empty((k, k))
    for i in range(k):
        shift = np.zeros(k)
        shift[i] = step
        _, grad_up = total_loglik(log_params + shift, data)
        _, grad_down = total_loglik(log_params - shift, data)
        hessian[i] = -(grad_up - grad_down) / (2 * step)
    return (hessian + hessian.T) / 2


class BTYDModel:
    """Base of the models fitted on (frequency, recency, T) by maximum likelihood.

    Subclasses set `param_names`, `time_params` (parameters measured in time units, rescaled
    during the fit so that the longest T is 1, which keeps the optimiser well conditioned) and
    implement `_row_loglik` (the per-row reference) and, if needed, `_check_identifiable`; they
    may override `_prepare` and `_total_loglik` with a faster evaluation of the same total.

    Attributes (after `fit`)
    ------------------------
    params : dict[str, float]
        Maximum-likelihood estimates, in the time unit of the input.
    log_likelihood : float
        Total (weighted) log-likelihood at `params`, in the time unit of the input.
    covariance : ndarray
        Asymptotic covariance of the parameters (inverse Hessian, delta method from log space).
    standard_errors : dict[str, float]
        Square roots of the covariance diagonal.
    n_customers : float
        Total weight (number of customers) fitted.
    n_rows : int
        Number of distinct (frequency, recency, T) rows the likelihood was evaluated on.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    time_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.params: dict[str, float] = {}
        self.log_likelihood: float = float("nan")
        self.covariance: FloatArray = np.full((0, 0), np.nan)
        self.standard_errors: dict[str, float] = {}
        self.n_customers: float = 0.0
        self.n_rows: int = 0

    @staticmethod
    def _row_loglik(
        log_params: FloatArray, data: tuple[FloatArray, ...]
    ) -> tuple[FloatArray, FloatArray]:
        """Per-row log-likelihood (n,) and its gradient w.r.t. log-parameters (k, n)."""
        raise NotImplementedError

    @classmethod
    def _prepare(cls, rows: CompressedRows, scale: float) -> object:
        """Return the data `_total_loglik` evaluates, with times multiplied by `scale`."""
        x, t_x, t_cal = rows.columns
        return (x, t_x * scale, t_cal * scale), rows.weights

    @classmethod
    def _total_loglik(cls, log_params: FloatArray, data: object) -> tuple[float, FloatArray]:
        """Total weighted log-likelihood and its gradient w.r.t. log-parameters (k,)."""
        columns, weights = data
        ll, grad = cls._row_loglik(log_params, columns)
        return float(weights @ ll), grad @ weights

    @classmethod
    def _loglik_grad_hess(
        cls, log_params: FloatArray, data: object
    ) -> tuple[float, FloatArray, FloatArray]:
        """Total log-likelihood, its log-gradient and log-Hessian (differences of the gradient)."""
        ll, grad = cls._total_loglik(log_params, data)
        return ll, grad, -hessian_from_gradient(cls._total_loglik, log_params, data)

    def _check_identifiable(self, x: FloatArray, weights: FloatArray) -> None:
        """Raise ModelInputError when the data cannot identify the parameters."""
        if weights.sum() < 2:
            raise ModelInputError(
                "at least two customers are needed to fit a population model; got "
                f"{weights.sum():g}"
            )

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Fit by maximum likelihood on unique (frequency, recency, T) rows; return self.

        Parameters
        ----------
        frequency : array_like
            Number of repeat purchases x of each row.
        recency : array_like
            Time t_x of the last purchase since the first one (0 when x is 0).
        T : array_like
            Time since the first purchase to the end of the calibration period.
        weights : array_like, optional
            Number of customers each row stands for (1 each by default).
        """
        x, t_x, t_cal, w = validate_rfm(frequency, recency, T, weights)
        if w is not None:
            keep = w > 0
            x, t_x, t_cal, w = x[keep], t_x[keep], t_cal[keep], w[keep]
        rows = compress_rows(x, t_x, t_cal, weights=w)
        ux = rows.columns[0]
        self._check_identifiable(ux, rows.weights)
        n_customers = float(rows.weights.sum())
        # Times in units of the longest T keep the optimiser well conditioned. In log-parameters
        # rescaling time only shifts the time parameters, so the Hessian is the same; each
        # purchase's rate factor (per time unit) shifts the log-likelihood by ln(scale).
        scale = 1.0 / rows.columns[2].max()
        scaled = self._prepare(rows, scale)
        x0 = np.zeros(len(self.param_names))
        if ux.size > _SUBSAMPLE_ROWS:
            # Far from the optimum BFGS needs ~100 evaluations; on 1 customer in k they are
            # cheap, and from there Newton needs a few on all rows.
            stride = max(2, x.size // _SUBSAMPLE_ROWS)
            sample = compress_rows(
                x[::stride],
                t_x[::stride],
                t_cal[::stride],
                weights=None if w is None else w[::stride],
            )
            try:
                x0 = fit_log_params(
                    self._total_loglik, x0, self._prepare(sample, scale), sample.weights.sum(), 1e-6
                )
            except ConvergenceError:
                x0 = np.zeros(len(self.param_names))
        else:
            x0 = fit_log_params(self._total_loglik, x0, scaled, n_customers)
        # From BFGS's optimum Newton stops at once: it checks, and gives the Hessian.
        newton = newton_log_params(self._loglik_grad_hess, x0, scaled, n_customers)
        if newton is None:
            x0 = fit_log_params(self._total_loglik, x0, scaled, n_customers)
            ll, _, hessian = self._loglik_grad_hess(x0, scaled)
            newton = x0, ll, hessian
        log_params, ll, hessian = newton
        _check_interior(log_params)
        hessian = -hessian
        try:
            np.linalg.cholesky(hessian)
        except np.linalg.LinAlgError as exc:
            raise ConvergenceError(
                "the fit stopped where the likelihood is not at a maximum (flat or saddle); "
                "the data do not identify the model: fit on more customers"
            ) from exc
        purchases = float(rows.weights @ ux)
        self.log_likelihood = ll + purchases * np.log(scale)
        shift = np.array(
            [np.log(scale) if n in self.time_params else 0.0 for n in self.param_names]
        )
        log_params = log_params - shift
        log_cov = np.linalg.inv(hessian)
        if np.max(np.diag(log_cov)) > _MAX_LOG_STD**2:
            raise ConvergenceError(
                "a parameter is not identified (the likelihood keeps rising towards 0 or "
                "infinity); the data do not identify the model: fit on more customers with "
                "repeat purchases"
            )
        values = np.exp(log_params)
        self.params = {n: float(v) for n, v in zip(self.param_names, values, strict=True)}
        self.covariance = log_cov * np.outer(values, values)
        self._log_std = np.sqrt(np.clip(np.diag(log_cov), 0, None))
        self.standard_errors = {
            n: float(v * s) for n, v, s in zip(self.param_names, values, self._log_std, strict=True)
        }
        self.n_customers = float(rows.weights.sum())
        self.n_rows = int(ux.size)
        return self

    def _require_fit(self) -> tuple[float, ...]:
        if not self.params:
            raise ModelInputError(
                f"{type(self).__name__} is not fitted: call fit(...) or set_params(...) first"
            )
        return tuple(self.params[n] for n in self.param_names)

    def set_params(self, **params: float) -> Self:
        """Set the parameters directly (e.g. published values) instead of fitting; return self."""
        missing = set(self.param_names) - params.keys()
        extra = params.keys() - set(self.param_names)
        if missing or extra:
            raise ModelInputError(
                f"{type(self).__name__} takes exactly {', '.join(self.param_names)}; "
                f"missing {sorted(missing)}, unknown {sorted(extra)}"
            )
        for name, value in params.items():
            if not (np.isfinite(value) and value > 0):
                raise ModelInputError(f"parameter {name} must be positive and finite, got {value}")
        self.params = {n: float(params[n]) for n in self.param_names}
        return self

    def summary(self) -> dict[str, dict[str, float]]:
        """Return per parameter: estimate, standard error and a 95% interval (log-normal, > 0)."""
        self._require_fit()
        log_std = getattr(self, "_log_std", np.full(len(self.param_names), np.nan))
        table: dict[str, dict[str, float]] = {}
        for name, s in zip(self.param_names, log_std, strict=True):
            value = self.params[name]
            table[name] = {
                "estimate": value,
                "std_error": self.standard_errors.get(name, float("nan")),
                "lower_95": float(value * np.exp(-_Z95 * s)),
                "upper_95": float(value * np.exp(_Z95 * s)),
            }
        return table

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items()) or "not fitted"
        return f"{type(self).__name__}({shown})"


def as_prediction_inputs(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate customer histories for scoring; return them broadcast to one shape (1-D)."""
    try:
        x, t_x, t_cal = np.broadcast_arrays(
            np.atleast_1d(np.asarray(frequency, dtype=np.float64)),
            np.atleast_1d(np.asarray(recency, dtype=np.float64)),
            np.atleast_1d(np.asarray(T, dtype=np.float64)),
        )
    except (TypeError, ValueError) as exc:
        raise ModelInputError(
            f"frequency, recency and T must be numbers or arrays of one length: {exc}"
        ) from exc
    x, t_x, t_cal, _ = validate_rfm(x.ravel(), t_x.ravel(), t_cal.ravel())
    return x, t_x, t_cal
