"""The encoding fit recovers planted structure, and its sparsity tools behave as stated."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.activations import mean_softmax
from utils.encoding import (
    bootstrap_ci,
    dimensions_by_weight,
    fit_encoding,
    lasso_path_r2,
    score_encoding,
    subset_r2,
    top_k_mass,
)
from utils.head import OutputHead


def planted_head(V=4000, d=24, seed=0):
    """A head and hidden states whose averaged softmax is exactly log-linear in E with a known A.

    With every hidden state equal to the same vector h0, alpha = softmax(E @ h0), so
    -log alpha_w = E_w @ (-h0) + logsumexp(E @ h0): A = -h0 exactly, B = the log-partition.
    """
    rng = np.random.default_rng(seed)
    E = rng.normal(size=(V, d))
    h0 = np.zeros(d)
    h0[:3] = [1.5, -0.8, 0.6]  # sparse: three dimensions carry the encoding
    hidden = np.tile(h0, (50, 1))
    return E, hidden, -h0


def test_fit_recovers_planted_encoding_through_a_real_softmax():
    E, hidden, A_true = planted_head()
    alpha = mean_softmax(torch.tensor(hidden, dtype=torch.float32), OutputHead(torch.tensor(E, dtype=torch.float32)))
    fit = fit_encoding(E, alpha.numpy())
    assert fit.r2 > 0.99
    np.testing.assert_allclose(fit.A, A_true, atol=2e-3)
    assert fit.spearman > 0.99
    assert set(dimensions_by_weight(fit.A)[:3]) == {0, 1, 2}
    assert top_k_mass(fit.A, 3) > 0.99
    assert subset_r2(fit, E, 3) > 0.99
    assert subset_r2(fit, E, 1) < 0.9  # one dimension is not enough


def test_fit_fails_on_unrelated_targets():
    rng = np.random.default_rng(1)
    E = rng.normal(size=(3000, 16))
    alpha = rng.dirichlet(np.ones(3000))
    fit = fit_encoding(E, alpha)
    assert fit.r2 < 0.05


def test_held_out_tokens_are_disjoint_and_reproducible():
    E, hidden, _ = planted_head(V=500)
    alpha = np.exp(-(E @ np.ones(E.shape[1])))
    first, second = fit_encoding(E, alpha, seed=3), fit_encoding(E, alpha, seed=3)
    assert not set(first.train_tokens) & set(first.test_tokens)
    assert len(first.train_tokens) + len(first.test_tokens) == 500
    np.testing.assert_array_equal(first.test_tokens, second.test_tokens)
    assert not np.array_equal(first.test_tokens, fit_encoding(E, alpha, seed=4).test_tokens)


def test_score_encoding_transfers_a_fit():
    E, _, A_true = planted_head()
    alpha = np.exp(-(E @ A_true + 2.0))
    fit = fit_encoding(E, alpha)
    shifted = np.exp(-(E @ A_true + 7.0))  # same direction, other offset: R² suffers, correlation does not
    scores = score_encoding(fit, E, shifted)
    assert scores["pearson"] > 0.999 and scores["r2"] < 0


def test_lasso_keeps_r2_with_few_dimensions():
    E, _, A_true = planted_head()
    alpha = np.exp(-(E @ A_true))
    fit = fit_encoding(E, alpha)
    points = lasso_path_r2(fit, E, [0.05, 0.001])
    assert points[0].n_nonzero <= 3 and points[0].r2 > 0.9
    assert points[-1].n_nonzero >= 3
    with pytest.raises(ValueError, match="fractions"):
        lasso_path_r2(fit, E, [1.5])


def test_bootstrap_interval_contains_the_point_estimate():
    rng = np.random.default_rng(0)
    actual = rng.normal(size=400)
    predicted = actual + rng.normal(scale=0.5, size=400)
    low, high = bootstrap_ci(actual, predicted, "pearson", n_boot=300)
    point = np.corrcoef(actual, predicted)[0, 1]
    assert low < point < high and high - low < 0.2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fit_encoding(np.zeros((5, 2)), np.ones(4) / 4), "alpha must have shape"),
        (lambda: fit_encoding(np.zeros((5, 2)), np.array([0.5, 0.5, 0, 0, 0])), "alpha must be positive"),
        (lambda: fit_encoding(np.ones((5, 2)), np.ones(5) / 5, test_fraction=1.5), "test_fraction"),
        (lambda: top_k_mass(np.ones(4), 0), "k=0"),
        (lambda: bootstrap_ci(np.ones(3), np.ones(3), "mse"), "metric='mse'"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
