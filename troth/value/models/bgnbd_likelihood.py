"""The BG/NBD log-likelihood summed over customers, with its gradient and Hessian.

The same total as summing `BGNBD._row_loglik` over weighted rows (Fader, Hardie & Lee 2005,
eq. 6), arranged so that a 1M-customer fit costs milliseconds an evaluation. Write
d = ln a - ln(b + k) + (r + x)(ln(alpha + T) - ln(alpha + t_x)), the log-odds of "dropped out
at t_x" against "alive at T" (k = x - 1, or x in the modified model); then per customer

    L = A(x) - (r + x) ln(alpha + T) + [has a dropout term] softplus(d),

where A(x) gathers the lnG terms and r ln(alpha). A(x) depends on the frequency alone and
(r + x) ln(alpha + T) on (x, T) linearly, so both are weighted sums over the distinct values
of one column; only softplus(d) needs work per row. Derivatives are taken in the natural
parameters (r, alpha, a, b) and then carried to log-parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma, gammaln, polygamma

from troth.value.models.base import CompressedRows, FloatArray, weighted_sum

__all__ = ["Histories", "prepare_histories", "total_loglik"]


@dataclass(frozen=True)
class Histories:
    """Unique (x, t_x, T) rows as distinct values with weights, and per-row codes into them."""

    x: FloatArray  # distinct frequencies
    x_weight: FloatArray  # customers per distinct frequency
    offset: FloatArray  # k in ln(b + k), per distinct frequency
    t_x: FloatArray  # distinct recencies
    T: FloatArray  # distinct ages
    T_weight: FloatArray  # customers per distinct age
    T_weight_x: FloatArray  # sum of their frequencies
    # The rows with a dropout term: frequency, codes into the distinct values, weight.
    row_x: FloatArray
    row_x_code: NDArray[np.intp]
    row_t_x_code: NDArray[np.intp]
    row_T_code: NDArray[np.intp]
    row_weight: FloatArray


def prepare_histories(
    rows: CompressedRows, scale: float, offset: FloatArray, has_dropout: NDArray[np.bool_]
) -> Histories:
    """Return the rows laid out for `total_loglik`, times multiplied by `scale`.

    `offset` and `has_dropout` give, per distinct frequency, k in ln(b + k) and whether
    customers with that frequency have the dropout term.
    """
    x_values, t_x_values, T_values = rows.values
    x_code, t_x_code, T_code = rows.codes
    weights, x = rows.weights, rows.columns[0]
    dropout_rows = has_dropout[x_code]
    return Histories(
        x=x_values,
        x_weight=np.bincount(x_code, weights, minlength=x_values.size),
        offset=offset,
        t_x=t_x_values * scale,
        T=T_values * scale,
        T_weight=np.bincount(T_code, weights, minlength=T_values.size),
        T_weight_x=np.bincount(T_code, weights * x, minlength=T_values.size),
        row_x=x[dropout_rows],
        row_x_code=x_code[dropout_rows],
        row_t_x_code=t_x_code[dropout_rows],
        row_T_code=T_code[dropout_rows],
        row_weight=weights[dropout_rows],
    )


def total_loglik(
    log_params: FloatArray, h: Histories, shift: int, order: int
) -> tuple[float, FloatArray, FloatArray]:
    """Return the total log-likelihood, its gradient and Hessian in log-parameters.

    `shift` is 0 for BG/NBD and 1 for the modified model (b + x + shift in the Beta terms);
    with `order` 1 the Hessian is returned as zeros.
    """
    params = np.exp(log_params)
    r, alpha, a, b = params
    s, x = shift, h.x
    log_alpha_T, inv_alpha_T = np.log(alpha + h.T), 1.0 / (alpha + h.T)
    log_alpha_t_x, inv_alpha_t_x = np.log(alpha + h.t_x), 1.0 / (alpha + h.t_x)
    n = h.x_weight.sum()
    per_x = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x + s)
        - gammaln(b)
        - gammaln(a + b + x + s)
    )
    # Each customer's (r + x) ln(alpha + T), summed by age.
    age_weight = r * h.T_weight + h.T_weight_x
    ll = float(h.x_weight @ per_x - age_weight @ log_alpha_T)

    # d and its first derivatives in (r, alpha); those in (a, b) depend on x alone.
    gap = log_alpha_T[h.row_T_code] - log_alpha_t_x[h.row_t_x_code]
    inv_gap = inv_alpha_T[h.row_T_code] - inv_alpha_t_x[h.row_t_x_code]
    rate = r + h.row_x
    inv_b = 1.0 / (b + h.offset)
    log_odds = (np.log(a) + np.log(inv_b))[h.row_x_code] + rate * gap
    d_alpha = rate * inv_gap
    small = np.exp(-np.abs(log_odds))
    ll += weighted_sum(h.row_weight, np.maximum(log_odds, 0.0) + np.log1p(small))
    dead = np.where(log_odds >= 0, 1.0, small) / (1.0 + small)  # sigmoid(d)
    dead_weight = h.row_weight * dead
    dead_by_x = np.bincount(h.row_x_code, dead_weight, minlength=x.size)
    dead_total = dead_by_x.sum()

    psi_ab = digamma(a + b) - digamma(a + b + x + s)
    grad = np.array(
        [
            h.x_weight @ (digamma(r + x) - digamma(r) + np.log(alpha))
            - h.T_weight @ log_alpha_T
            + weighted_sum(dead_weight, gap),
            n * r / alpha - age_weight @ inv_alpha_T + weighted_sum(dead_weight, d_alpha),
            h.x_weight @ psi_ab + dead_total / a,
            h.x_weight @ (psi_ab + digamma(b + x + s) - digamma(b)) - dead_by_x @ inv_b,
        ]
    )
    hess = np.zeros((4, 4))
    if order >= 2:
        # softplus'' = sigmoid (1 - sigmoid): the curvature weight of each row.
        curve = dead_weight * (1.0 - dead)
        curve_by_x = np.bincount(h.row_x_code, curve, minlength=x.size)
        curve_gap_by_x = np.bincount(h.row_x_code, curve * gap, minlength=x.size)
        curve_alpha_by_x = np.bincount(h.row_x_code, curve * d_alpha, minlength=x.size)
        sq_gap = (inv_alpha_T**2)[h.row_T_code] - (inv_alpha_t_x**2)[h.row_t_x_code]
        tri_ab = polygamma(1, a + b) - polygamma(1, a + b + x + s)
        hess[0, 0] = h.x_weight @ (polygamma(1, r + x) - polygamma(1, r)) + weighted_sum(
            curve * gap, gap
        )
        hess[0, 1] = (
            n / alpha
            - h.T_weight @ inv_alpha_T
            + weighted_sum(curve * gap, d_alpha)
            + weighted_sum(dead_weight, inv_gap)
        )
        hess[1, 1] = (
            -n * r / alpha**2
            + age_weight @ inv_alpha_T**2
            + weighted_sum(curve * d_alpha, d_alpha)
            - weighted_sum(dead_weight * rate, sq_gap)
        )
        hess[0, 2] = curve_gap_by_x.sum() / a
        hess[0, 3] = -(curve_gap_by_x @ inv_b)
        hess[1, 2] = curve_alpha_by_x.sum() / a
        hess[1, 3] = -(curve_alpha_by_x @ inv_b)
        hess[2, 2] = h.x_weight @ tri_ab + (curve_by_x.sum() - dead_total) / a**2
        hess[2, 3] = h.x_weight @ tri_ab - (curve_by_x @ inv_b) / a
        hess[3, 3] = (
            h.x_weight @ (tri_ab + polygamma(1, b + x + s) - polygamma(1, b))
            + curve_by_x @ inv_b**2
            + dead_by_x @ inv_b**2
        )
        hess = np.triu(hess) + np.triu(hess, 1).T
        # Chain rule to log-parameters: H_ij p_i p_j + delta_ij g_i p_i.
        hess = hess * np.outer(params, params) + np.diag(grad * params)
    return ll, grad * params, hess
