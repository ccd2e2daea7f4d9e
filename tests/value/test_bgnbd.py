"""BG/NBD and modified BG/NBD: the CDNOW paper fit, lifetimes as an oracle, recovery, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import check_grad

from troth.errors import TrothError
from troth.value.models import bgnbd, modified_bgnbd
from troth.value.models.base import ConvergenceError, ModelInputError, compress_rows
from troth.value.models.bgnbd import BGNBD
from troth.value.models.modified_bgnbd import ModifiedBGNBD

lifetimes = pytest.importorskip("lifetimes")
lifetimes_datasets = pytest.importorskip("lifetimes.datasets")

MODELS = [
    pytest.param(BGNBD, bgnbd.simulate, "BetaGeoFitter", id="BGNBD"),
    pytest.param(ModifiedBGNBD, modified_bgnbd.simulate, "ModifiedBetaGeoFitter", id="MBGNBD"),
]


@pytest.fixture(scope="module")
def cdnow() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = lifetimes_datasets.load_cdnow_summary()
    return data["frequency"].to_numpy(), data["recency"].to_numpy(), data["T"].to_numpy()


def lifetimes_fit(name: str, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights=None):
    with warnings.catch_warnings():
        # lifetimes' autograd and pandas calls warn on current NumPy; not ours to fix.
        warnings.simplefilter("ignore")
        return getattr(lifetimes, name)().fit(x, t_x, T, weights=weights)


def population(simulate, n: int, params: dict[str, float], seed: int = 13):
    """Customers who joined over a year, observed in weeks, from the model's generative process."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(20, 52, n)
    return simulate(T, **params, rng=rng)


def test_params_out_is_close_to_Fader_Hardie_Lee_2005_paper(cdnow) -> None:
    model = BGNBD().fit(*cdnow)
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert model.params[name] == pytest.approx(value, abs=5e-4)
    assert model.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert model.n_customers == 2357
    assert model.n_rows < model.n_customers


@pytest.mark.parametrize(("model_cls", "simulate", "oracle"), MODELS)
def test_fit_and_standard_errors_match_lifetimes_on_CDNOW(
    model_cls, simulate, oracle, cdnow
) -> None:
    ours = model_cls().fit(*cdnow)
    theirs = lifetimes_fit(oracle, *cdnow)
    for name in ours.param_names:
        assert ours.params[name] == pytest.approx(theirs.params_[name], rel=1e-5)
        assert ours.standard_errors[name] == pytest.approx(theirs.standard_errors_[name], rel=1e-4)
    table = ours.summary()
    assert set(table) == set(ours.param_names)
    for row in table.values():
        assert 0 < row["lower_95"] < row["estimate"] < row["upper_95"]


@pytest.mark.parametrize(("model_cls", "simulate", "oracle"), MODELS)
def test_params_match_lifetimes_on_simulated_population(model_cls, simulate, oracle) -> None:
    truth = {"r": 0.6, "alpha": 5.0, "a": 0.9, "b": 3.0}
    x, t_x, T = population(simulate, 4000, truth)
    ours = model_cls().fit(x, t_x, T)
    theirs = lifetimes_fit(oracle, x, t_x, T)
    relative = max(abs(ours.params[k] / theirs.params_[k] - 1) for k in ours.param_names)
    assert relative < 1e-3
    assert ours.n_rows == x.size  # continuous times: nothing to compress


@pytest.mark.parametrize(("model_cls", "simulate", "oracle"), MODELS)
def test_predictions_match_lifetimes_at_same_params(model_cls, simulate, oracle) -> None:
    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    x, t_x, T = population(simulate, 3000, params)
    # Heavy, long-lapsed buyers push 2F1 past overflow (lifetimes' Euler fallback) and P(alive)
    # to 0; a > 1 covers the other branch of the (a + b + x - 1) / (a - 1) prefactor.
    x = np.concatenate([x, [150.0, 400.0, 40.0]])
    t_x = np.concatenate([t_x, [30.0, 51.0, 1.0]])
    T = np.concatenate([T, [52.0, 52.0, 52.0]])
    oracle_model = getattr(lifetimes, oracle)()
    for a in (0.793, 1.7):
        ours = model_cls().set_params(**{**params, "a": a})
        oracle_model.params_ = pd.Series(ours.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = oracle_model.conditional_expected_number_of_purchases_up_to_time(
                39.0, x, t_x, T
            )
            alive = oracle_model.conditional_probability_alive(x, t_x, T)
            new = oracle_model.expected_number_of_purchases_up_to_time(np.arange(1.0, 80.0))
        np.testing.assert_allclose(ours.expected_purchases(39.0, x, t_x, T), expected, rtol=1e-6)
        np.testing.assert_allclose(ours.probability_alive(x, t_x, T), alive, rtol=1e-6, atol=1e-300)
        np.testing.assert_allclose(
            ours.expected_purchases_new_customer(np.arange(1.0, 80.0)), new, rtol=1e-6
        )


@pytest.mark.parametrize(("model_cls", "simulate", "oracle"), MODELS)
def test_analytic_gradient_matches_finite_differences(model_cls, simulate, oracle) -> None:
    x, t_x, T = population(simulate, 300, {"r": 0.5, "alpha": 3.0, "a": 1.2, "b": 2.5})
    weights = np.random.default_rng(13).integers(1, 5, x.size).astype(float)
    data = (x, t_x, T)

    def value(log_params: np.ndarray) -> float:
        return float(weights @ model_cls._row_loglik(log_params, data)[0])

    def gradient(log_params: np.ndarray) -> np.ndarray:
        return model_cls._row_loglik(log_params, data)[1] @ weights

    for point in ([0.0, 0.0, 0.0, 0.0], [-0.7, 1.1, 0.2, 0.9], [1.0, 2.0, -1.0, -0.5]):
        point = np.array(point)
        error = check_grad(value, gradient, point, epsilon=1e-6)
        assert error < 1e-4 * max(1.0, np.linalg.norm(gradient(point)))


@pytest.mark.parametrize(("model_cls", "simulate", "oracle"), MODELS)
def test_weighted_unique_rows_fit_like_the_expanded_data(
    model_cls, simulate, oracle, cdnow
) -> None:
    x, t_x, T = cdnow
    rows, counts = np.unique(np.column_stack(cdnow), axis=0, return_counts=True)
    expanded = model_cls().fit(x, t_x, T)
    compressed = model_cls().fit(rows[:, 0], rows[:, 1], rows[:, 2], weights=counts)
    for name in expanded.param_names:
        assert compressed.params[name] == pytest.approx(expanded.params[name], rel=1e-8)
        assert compressed.standard_errors[name] == pytest.approx(
            expanded.standard_errors[name], rel=1e-6
        )
    assert compressed.log_likelihood == pytest.approx(expanded.log_likelihood, rel=1e-10)
    assert compressed.n_customers == expanded.n_customers


@pytest.mark.parametrize(("model_cls", "simulate", "oracle"), MODELS)
def test_simulated_mean_purchases_match_the_model(model_cls, simulate, oracle) -> None:
    params = {"r": 0.8, "alpha": 4.0, "a": 0.7, "b": 2.0}
    x, _, _ = simulate(30.0, **params, size=200_000, rng=np.random.default_rng(13))
    expected = model_cls().set_params(**params).expected_purchases_new_customer(30.0)[0]
    assert x.mean() == pytest.approx(expected, rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize(("model_cls", "simulate", "oracle"), MODELS)
@settings(max_examples=4)
@given(
    r=st.floats(0.3, 2.0),
    alpha=st.floats(2.0, 10.0),
    a=st.floats(0.5, 2.0),
    b=st.floats(1.5, 5.0),
)
def test_fit_recovers_simulated_params(model_cls, simulate, oracle, r, alpha, a, b) -> None:
    truth = {"r": r, "alpha": alpha, "a": a, "b": b}
    x, t_x, T = population(simulate, 20_000, truth)
    # Weekly data, as customers are usually summarised: many customers share a row.
    t_x, T = np.floor(t_x * 7) / 7, np.ceil(T)
    model = model_cls().fit(x, t_x, T)
    for name, value in truth.items():
        # Within 4.5 standard errors (plus the weekly rounding's small bias).
        assert abs(model.params[name] - value) < 4.5 * model.standard_errors[name] + 0.02 * value


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([0, 0, 0], [0, 0, 0], [10, 12, 9], "no customer made a repeat purchase"),
        ([2], [3.0], [5.0], "at least two customers"),
        ([1, 2], [6.0, 3.0], [5.0, 5.0], "recency exceeds T"),
        ([1, np.nan], [1.0, 3.0], [5.0, 5.0], "NaN"),
        ([1, -1], [1.0, 3.0], [5.0, 5.0], "non-negative whole"),
        ([1, 1.5], [1.0, 3.0], [5.0, 5.0], "non-negative whole"),
        ([0, 2], [1.0, 3.0], [5.0, 5.0], "recency must be 0"),
        ([1, 2], [1.0, 3.0], [5.0, 0.0], r"T \(customer age\) must be positive"),
        ([1, 2], [1.0, 3.0], [5.0], "one length"),
        ([], [], [], "no customers"),
    ],
)
@pytest.mark.parametrize("model_cls", [BGNBD, ModifiedBGNBD])
def test_bad_input_is_a_clear_error(model_cls, frequency, recency, T, message) -> None:
    with pytest.raises(ModelInputError, match=message) as caught:
        model_cls().fit(frequency, recency, T)
    assert isinstance(caught.value, TrothError)
    assert isinstance(caught.value, ValueError)


def test_bad_weights_and_unfitted_model_are_clear_errors() -> None:
    with pytest.raises(ModelInputError, match="weights count customers"):
        BGNBD().fit([1, 2], [1.0, 2.0], [3.0, 3.0], weights=[1, -1])
    with pytest.raises(ModelInputError, match="not fitted"):
        BGNBD().probability_alive(1, 1.0, 2.0)
    with pytest.raises(ModelInputError, match="takes exactly"):
        BGNBD().set_params(r=1.0, alpha=1.0, a=1.0)
    with pytest.raises(ModelInputError, match=r"t \(.*\) must be finite"):
        BGNBD().set_params(r=1, alpha=1, a=1, b=1).expected_purchases(-1, 1, 1.0, 2.0)


def test_degenerate_data_raise_convergence_error_not_nan() -> None:
    # Two identical one-purchase customers: the likelihood keeps rising towards a boundary.
    with pytest.raises((ConvergenceError, ModelInputError)):
        BGNBD().fit([1, 1], [1.0, 1.0], [2.0, 2.0])


@pytest.mark.parametrize("model_cls", [BGNBD, ModifiedBGNBD])
def test_extreme_histories_and_a_equal_one_give_finite_predictions(model_cls) -> None:
    x = np.array([0.0, 1.0, 500.0, 5000.0, 3.0])
    t_x = np.array([0.0, 0.001, 1.0, 999.0, 1e6])
    T = np.array([1e-3, 1e4, 1e6, 1000.0, 1e6])
    for a in (1.0, 0.01, 50.0):
        model = model_cls().set_params(r=2.0, alpha=0.5, a=a, b=0.3)
        for t in (0.0, 1.0, 1e7):
            assert np.all(np.isfinite(model.expected_purchases(t, x, t_x, T)))
        alive = model.probability_alive(x, t_x, T)
        assert np.all((alive >= 0) & (alive <= 1))
        assert np.all(np.isfinite(model.expected_purchases_new_customer([0.0, 1.0, 1e7])))


def test_probability_alive_of_non_repeaters_is_one_only_in_BGNBD() -> None:
    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert BGNBD().set_params(**params).probability_alive(0, 0.0, 30.0)[0] == 1.0
    assert ModifiedBGNBD().set_params(**params).probability_alive(0, 0.0, 30.0)[0] < 1.0


def test_compress_rows_matches_numpy_unique_rows() -> None:
    rng = np.random.default_rng(13)
    x = rng.integers(0, 20, 5000).astype(float)
    t_x = np.floor(rng.uniform(0, 30, 5000)) / 7  # fractional weeks: sorted, not offset, codes
    T = rng.integers(30, 40, 5000).astype(float)
    weights = rng.uniform(0, 2, 5000)
    rows = compress_rows(x, t_x, T, weights=weights)
    unique, inverse = np.unique(np.column_stack([x, t_x, T]), axis=0, return_inverse=True)
    np.testing.assert_array_equal(np.column_stack(rows.columns), unique)
    np.testing.assert_array_equal(rows.inverse, inverse.reshape(-1))
    np.testing.assert_allclose(rows.weights, np.bincount(inverse.reshape(-1), weights))
