"""Gamma-Gamma spend model: the CDNOW paper values, lifetimes as oracle, recovery, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes import GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from scipy.special import gammaln

from troth.errors import TrothError
from troth.value.models.base import ConvergenceError, ModelInputError
from troth.value.models.gamma_gamma import GammaGamma


def simulate_spend(
    n: int, p: float, q: float, v: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return (frequency, mean spend) from the model's generative process.

    nu ~ Gamma(q, rate v) per customer; the mean of x transactions of Gamma(p, rate nu)
    is Gamma(p x, rate nu x).
    """
    x = 1 + rng.poisson(2.0, n)
    nu = rng.gamma(q, 1.0 / v, n)
    return x.astype(float), rng.gamma(p * x, 1.0 / (nu * x))


def reference_log_likelihood(p: float, q: float, v: float, x: np.ndarray, m: np.ndarray) -> float:
    """Return the plain, unweighted sum of the note's log-density of the mean spend."""
    return float(
        np.sum(
            gammaln(p * x + q)
            - gammaln(p * x)
            - gammaln(q)
            + q * np.log(v)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(x * m + v)
        )
    )


@pytest.fixture(scope="module")
def cdnow_repeat_buyers() -> pd.DataFrame:
    data = load_cdnow_summary_data_with_monetary_value()
    return data[data["frequency"] > 0]


@pytest.fixture(scope="module")
def simulated() -> tuple[np.ndarray, np.ndarray]:
    return simulate_spend(10_000, p=6.0, q=3.5, v=15.0, rng=np.random.default_rng(13))


def test_params_out_is_close_to_Fader_Hardie_Lee_paper(cdnow_repeat_buyers: pd.DataFrame):
    model = GammaGamma().fit(
        cdnow_repeat_buyers["frequency"], cdnow_repeat_buyers["monetary_value"]
    )
    assert model.params["p"] == pytest.approx(6.25, abs=0.01)
    assert model.params["q"] == pytest.approx(3.74, abs=0.01)
    assert model.params["v"] == pytest.approx(15.44, abs=0.01)


def test_zero_frequency_rows_are_left_out_of_the_fit(cdnow_repeat_buyers: pd.DataFrame):
    everyone = load_cdnow_summary_data_with_monetary_value()
    full = GammaGamma().fit(everyone["frequency"], everyone["monetary_value"])
    repeat = GammaGamma().fit(
        cdnow_repeat_buyers["frequency"], cdnow_repeat_buyers["monetary_value"]
    )
    assert full.params == pytest.approx(repeat.params, rel=1e-12)


def test_cdnow_fit_agrees_with_lifetimes(cdnow_repeat_buyers: pd.DataFrame):
    x, m = cdnow_repeat_buyers["frequency"], cdnow_repeat_buyers["monetary_value"]
    model = GammaGamma().fit(x, m)
    oracle = GammaGammaFitter().fit(x, m)
    for name in ("p", "q", "v"):
        assert model.params[name] == pytest.approx(oracle.params_[name], rel=1e-6)
        assert model.standard_errors[name] == pytest.approx(oracle.standard_errors_[name], rel=1e-4)
    assert model.log_likelihood == pytest.approx(
        -oracle._negative_log_likelihood_ * len(x), rel=1e-10
    )


def test_params_and_predictions_agree_with_lifetimes_on_simulated_data(
    simulated: tuple[np.ndarray, np.ndarray],
):
    x, m = simulated
    model = GammaGamma().fit(x, m)
    oracle = GammaGammaFitter().fit(x, m)
    for name in ("p", "q", "v"):
        assert model.params[name] == pytest.approx(oracle.params_[name], rel=1e-3)
    ours = model.expected_average_value(x, m)
    theirs = np.asarray(oracle.conditional_expected_average_profit(x, m))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    # with identical parameters the prediction formula itself agrees to rounding
    oracle.params_ = pd.Series(model.params)
    theirs = np.asarray(oracle.conditional_expected_average_profit(x, m))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_log_likelihood_and_standard_errors_match_a_plain_implementation(
    simulated: tuple[np.ndarray, np.ndarray],
):
    x, m = simulated[0][:2000], simulated[1][:2000]
    model = GammaGamma().fit(x, m)
    p, q, v = model.params["p"], model.params["q"], model.params["v"]
    assert model.log_likelihood == pytest.approx(reference_log_likelihood(p, q, v, x, m))
    # observed information by central differences of the plain log-likelihood
    theta, step = np.array([p, q, v]), 1e-4 * np.array([p, q, v])
    hessian = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            ei, ej = np.eye(3)[i] * step[i], np.eye(3)[j] * step[j]
            f = [
                reference_log_likelihood(*(theta + si * ei + sj * ej), x, m)
                for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1))
            ]
            hessian[i, j] = (f[0] - f[1] - f[2] + f[3]) / (4 * step[i] * step[j])
    expected = np.sqrt(np.diag(np.linalg.inv(-hessian)))
    np.testing.assert_allclose(
        [model.standard_errors[name] for name in ("p", "q", "v")], expected, rtol=1e-3
    )


def test_weights_equal_expanded_rows():
    rng = np.random.default_rng(13)
    x, m = simulate_spend(400, p=4.0, q=3.0, v=20.0, rng=rng)
    counts = rng.integers(1, 6, x.size)
    weighted = GammaGamma().fit(x, m, weights=counts)
    expanded = GammaGamma().fit(np.repeat(x, counts), np.repeat(m, counts))
    assert weighted.params == pytest.approx(expanded.params, rel=1e-8)
    assert weighted.log_likelihood == pytest.approx(expanded.log_likelihood, rel=1e-12)
    assert weighted.standard_errors == pytest.approx(expanded.standard_errors, rel=1e-6)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    p=st.floats(1.0, 10.0),
    q=st.floats(2.0, 8.0),
    v=st.floats(5.0, 50.0),
)
def test_fit_recovers_simulated_parameters(p: float, q: float, v: float):
    x, m = simulate_spend(20_000, p, q, v, np.random.default_rng(13))
    model = GammaGamma().fit(x, m)
    for name, true in (("p", p), ("q", q), ("v", v)):
        # within 4 of the model's own standard errors, which must be informative
        assert abs(model.params[name] - true) < 4 * model.standard_errors[name]
        assert model.standard_errors[name] < 0.25 * true
    mean = model.population_mean_value()
    assert mean == pytest.approx(p * v / (q - 1), rel=0.1)


def test_expected_average_value_shrinks_toward_population_mean(
    cdnow_repeat_buyers: pd.DataFrame,
):
    model = GammaGamma().fit(
        cdnow_repeat_buyers["frequency"], cdnow_repeat_buyers["monetary_value"]
    )
    mean = model.population_mean_value()
    assert model.expected_average_value([0], [0.0]) == pytest.approx([mean])
    few, many = model.expected_average_value([1, 50], [100.0, 100.0])
    assert mean < few < many < 100.0
    assert model.conditional_expected_average_profit([2], [30.0]) == pytest.approx(
        model.expected_average_value([2], [30.0])
    )


def test_q_at_most_one_fits_but_mean_spend_is_undefined():
    rng = np.random.default_rng(13)
    x, m = simulate_spend(20_000, p=3.0, q=0.7, v=10.0, rng=rng)
    model = GammaGamma().fit(x, m)
    assert model.params["q"] < 1
    with pytest.raises(ModelInputError, match="infinite"):
        model.population_mean_value()
    with pytest.raises(ModelInputError, match="frequency <= 0"):
        model.expected_average_value([0, 3], [0.0, 20.0])
    # a repeat buyer's posterior mean stays finite while p x + q > 1
    value = model.expected_average_value([1, 3], [20.0, 20.0])
    assert np.all(np.isfinite(value)) and np.all(value > 0)


def test_no_heterogeneity_is_a_clear_fit_error():
    rng = np.random.default_rng(13)
    x = 1.0 + rng.poisson(2.0, 5000)
    m = rng.gamma(4 * x, 1 / (0.3 * x))  # every customer has the same nu
    with pytest.raises(ConvergenceError, match="no heterogeneity"):
        GammaGamma().fit(x, m)


@pytest.mark.parametrize(
    ("frequency", "monetary_value", "weights", "message"),
    [
        ([0, 0, 0], [0.0, 0.0, 0.0], None, "no repeat buyers"),
        ([3], [20.0], None, "same mean spend"),
        ([2, 2, 4], [20.0, 20.0, 20.0], None, "same mean spend"),
        ([1, 2, 3], [10.0, 0.0, 12.0], None, "zero for some repeat buyers"),
        ([1, 2, 3], [10.0, -5.0, 12.0], None, "negative"),
        ([0, 2, 3], [-1.0, 5.0, 12.0], None, "negative"),
        ([1, np.nan, 3], [10.0, 5.0, 12.0], None, "frequency contains NaN"),
        ([1, 2, 3], [10.0, np.nan, 12.0], None, "monetary_value contains NaN"),
        ([1, 2, 3], [10.0, 5.0, 12.0], [1, np.nan, 1], "weights contains NaN"),
        ([1, 2, 3], [10.0, 5.0, 12.0], [1, -1, 1], "non-negative"),
        ([1, 2, 3], [10.0, 5.0, 12.0], [1, 1], "differ in length"),
        ([1, 2], [10.0, 5.0, 12.0], None, "differ in length"),
        ([1, 2.5, 3], [10.0, 5.0, 12.0], None, "whole numbers"),
        ([1, -2, 3], [10.0, 5.0, 12.0], None, "whole numbers"),
    ],
)
def test_bad_input_is_a_clear_error(frequency, monetary_value, weights, message):
    with pytest.raises(ModelInputError, match=message) as caught:
        GammaGamma().fit(frequency, monetary_value, weights=weights)
    assert isinstance(caught.value, TrothError)
    assert isinstance(caught.value, ValueError)


def test_predicting_before_fit_is_a_clear_error():
    with pytest.raises(ModelInputError, match="not fitted"):
        GammaGamma().expected_average_value([1], [10.0])
    with pytest.raises(ModelInputError, match="not fitted"):
        GammaGamma().population_mean_value()


def test_very_large_frequencies_fit_like_small_ones():
    x, m = simulate_spend(2000, p=4.0, q=3.0, v=20.0, rng=np.random.default_rng(13))
    model = GammaGamma().fit(x, m)
    # one extreme customer would make a count table over 0..max(x) huge: handled by sorting
    x_big, m_big = np.append(x, 10**9), np.append(m, 30.0)
    big = GammaGamma().fit(x_big, m_big)
    assert big.params == pytest.approx(model.params, rel=0.05)


def test_non_numeric_input_is_a_clear_error():
    with pytest.raises(ModelInputError, match="numeric"):
        GammaGamma().fit(["a", "b"], [1.0, 2.0])
