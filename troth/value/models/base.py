"""Shared machinery for BTYD models: input checks, row compression and maximum likelihood.

Every model here is fitted on (frequency, recency, T) compressed to unique rows with weights
(Fader & Hardie fit CDNOW the same way), so the cost of a fit grows with the number of distinct
purchase histories, not with the number of customers. Parameters are optimised in log space
(they are all positive) with an analytic gradient supplied by the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
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
    "validate_rfm",
]

FloatArray = NDArray[np.float64]
# Per-row log-likelihood (n,) and its gradient with respect to the log-parameters (k, n):
# parameters first, so that weighting is k contiguous dot products (gemv on (n, k) is ~10x slower).
RowLogLikelihood = Callable[[FloatArray, tuple[FloatArray, ...]], tuple[FloatArray, FloatArray]]

_Z95 = 1.959963984540054  # standard normal quantile for a two-sided 95% interval


class ModelInputError(TrothError, ValueError):
    """The data given to a value model cannot be fitted or scored; the message says why."""


class ConvergenceError(TrothError):
    """Maximum likelihood did not converge to finite parameters for this data."""


@dataclass(frozen=True)
class CompressedRows:
    """Unique rows of the input columns, their weights, and the map back to the input rows."""

    columns: tuple[FloatArray, ...]
    weights: FloatArray
    inverse: NDArray[np.intp]


def compress_rows(*columns: FloatArray, weights: FloatArray | None = None) -> CompressedRows:
    """Return the unique rows of the stacked `columns` with summed weights (1 each by default)."""
    # np.unique(axis=0) sorts rows lexicographically and is ~10x slower than a 1-D unique on
    # 1M rows; code each column, then combine the codes into one integer key (mixed radix).
    codes = []
    values = []
    radix = 1
    for column in columns:
        low, high = column.min(), column.max()
        if high - low < 2**20 and np.array_equal(column, np.floor(column)):
            # Whole numbers (counts, days): the offset is the code, no sort needed.
            unique_values = np.arange(low, high + 1)
            code = (column - low).astype(np.int64)
        else:
            unique_values, code = np.unique(column, return_inverse=True)
        values.append(unique_values)
        codes.append(code.reshape(-1).astype(np.int64))
        radix *= unique_values.size
    if radix < 2**62:
        key = np.zeros(columns[0].size, dtype=np.int64)
        for code, unique_values in zip(codes, values, strict=True):
            key = key * unique_values.size + code
        unique_keys, inverse = np.unique(key, return_inverse=True)
        unique_codes = []
        for unique_values in reversed(values):
            unique_codes.append(unique_keys % unique_values.size)
            unique_keys = unique_keys // unique_values.size
        unique_columns = tuple(v[c] for v, c in zip(values, reversed(unique_codes), strict=True))
    else:
        unique, inverse = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
        unique_columns = tuple(unique.T.copy())
    inverse = inverse.reshape(-1)
    n_unique = unique_columns[0].size
    if weights is None:
        summed = np.bincount(inverse, minlength=n_unique).astype(np.float64)
    else:
        summed = np.bincount(inverse, weights=weights, minlength=n_unique)
    return CompressedRows(unique_columns, summed, inverse)


def _as_float_array(name: str, values: ArrayLike) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelInputError(f"{name} must be numeric; convert it to numbers first") from exc
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ModelInputError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
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
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ModelInputError("frequency must count repeat purchases: non-negative whole numbers")
    if np.any(t_cal <= 0):
        raise ModelInputError("T (customer age) must be positive; drop customers seen for no time")
    if np.any(t_x < 0):
        raise ModelInputError("recency must be >= 0 (time of the last purchase since the first)")
    if np.any(t_x > t_cal):
        raise ModelInputError("recency exceeds T for some customers; recency must be <= T")
    if np.any(t_x[x == 0] != 0):
        raise ModelInputError("recency must be 0 for customers with frequency 0 (no repeat buy)")
    w = None
    if weights is not None:
        w = _as_float_array("weights", weights)
        if w.shape != x.shape:
            raise ModelInputError(f"weights must have {x.size} values, one per row; got {w.size}")
        if np.any(w < 0) or not np.any(w > 0):
            raise ModelInputError("weights count customers: non-negative with a positive total")
    return x, t_x, t_cal, w


def fit_log_params(
    row_loglik: RowLogLikelihood,
    x0: FloatArray,
    data: tuple[FloatArray, ...],
    weights: FloatArray,
    gtol: float = 1e-9,
) -> FloatArray:
    """Maximise the weighted log-likelihood over log-parameters; return the optimal log-parameters.

    The objective is the weighted mean negative log-likelihood (as lifetimes does) so that the
    gradient tolerance does not depend on the number of customers.
    """
    total = weights.sum()

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        ll, grad = row_loglik(log_params, data)
        value = -float(weights @ ll) / total
        gradient = -(grad @ weights) / total
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            # Steer the line search away from overflowing regions instead of failing.
            return 1e300, np.zeros_like(log_params)
        return value, gradient

    result = minimize(
        objective, x0, jac=True, method="BFGS", options={"gtol": gtol, "maxiter": 5000}
    )
    gradient_norm = np.max(np.abs(result.jac)) if result.jac is not None else np.inf
    # BFGS reports "precision loss" at the numerical optimum; accept it when the gradient is ~0.
    if not np.all(np.isfinite(result.x)) or (not result.success and gradient_norm > 1e-5):
        raise ConvergenceError(
            f"the likelihood did not converge ({result.message}); the data may be too few or "
            "too uniform to identify the model: fit on more customers"
        )
    if np.max(np.abs(result.x)) > 18:
        raise ConvergenceError(
            "a parameter ran off to 0 or infinity (the maximum likelihood is on the boundary); "
            "the data do not identify the model: fit on more customers with repeat purchases"
        )
    return np.asarray(result.x, dtype=np.float64)


def hessian_from_gradient(
    row_loglik: RowLogLikelihood,
    log_params: FloatArray,
    data: tuple[FloatArray, ...],
    weights: FloatArray,
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
        _, grad_up = row_loglik(log_params + shift, data)
        _, grad_down = row_loglik(log_params - shift, data)
        hessian[i] = -(grad_up @ weights - grad_down @ weights) / (2 * step)
    return (hessian + hessian.T) / 2


class BTYDModel:
    """Base of the models fitted on (frequency, recency, T) by maximum likelihood.

    Subclasses set `param_names`, `time_params` (parameters measured in time units, rescaled
    during the fit so that the longest T is 1, which keeps the optimiser well conditioned) and
    implement `_row_loglik` and, if needed, `_check_identifiable`.

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
        ux, utx, uT = rows.columns
        self._check_identifiable(ux, rows.weights)
        scale = 1.0 / uT.max()
        scaled = (ux, utx * scale, uT * scale)
        x0 = np.zeros(len(self.param_names))
        log_params = fit_log_params(self._row_loglik, x0, scaled, rows.weights)
        shift = np.array(
            [np.log(scale) if n in self.time_params else 0.0 for n in self.param_names]
        )
        log_params = log_params - shift
        data = (ux, utx, uT)
        hessian = hessian_from_gradient(self._row_loglik, log_params, data, rows.weights)
        try:
            np.linalg.cholesky(hessian)
        except np.linalg.LinAlgError as exc:
            raise ConvergenceError(
                "the fit stopped where the likelihood is not at a maximum (flat or saddle); "
                "the data do not identify the model: fit on more customers"
            ) from exc
        log_cov = np.linalg.inv(hessian)
        values = np.exp(log_params)
        self.params = {n: float(v) for n, v in zip(self.param_names, values, strict=True)}
        self.log_likelihood = float(rows.weights @ self._row_loglik(log_params, data)[0])
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
