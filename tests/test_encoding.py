"""The encoding fit recovers planted structure, and its sparsity tools behave as stated."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.activations import mean_softmax
from utils.encoding.accuracy import (
    METRICS,
    accuracy_table,
    bootstrap_ci,
    error_table,
    second_model_status,
    worst_tokens,
)
from utils.encoding.fit import (
    EncodingRefitter,
    LeastSquares,
    SubsetRefitter,
    dimensions_by_weight,
    fit_encoding,
    fit_pass,
    r2_score,
    score_encoding,
    token_counts,
)
from utils.encoding.scorecard import headline_checks
from utils.encoding.sparsity import lasso_dims_needed, lasso_path_r2, lasso_table, sparsity_table, subset_r2, top_k_mass
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


def svd_least_squares(X, y):
    """Reference: least squares with an intercept through an SVD of the full design (numpy's lstsq)."""
    design = np.hstack([X, np.ones((X.shape[0], 1))])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    return solution[:-1], solution[-1]


def test_least_squares_matches_an_svd_solution_on_badly_scaled_columns():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 12)) * rng.uniform(0.01, 10, size=12) + 3.0
    y = X @ rng.normal(size=12) + 0.5 + rng.normal(size=500)
    solver = LeastSquares(X)
    assert solver.full_rank
    coefficients, intercept = solver.solve(y)
    expected_coefficients, expected_intercept = svd_least_squares(X, y)
    np.testing.assert_allclose(coefficients, expected_coefficients, rtol=1e-8, atol=1e-10)
    assert intercept == pytest.approx(expected_intercept, rel=1e-8)


def test_least_squares_takes_the_minimum_norm_solution_when_rank_deficient():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 6))
    X = np.hstack([X, X[:, :1] * 2.0, np.zeros((300, 1))])  # a repeated and an empty column
    y = X[:, :6] @ rng.normal(size=6) + rng.normal(size=300)
    solver = LeastSquares(X)
    assert not solver.full_rank
    coefficients, intercept = solver.solve(y)
    expected_coefficients, expected_intercept = svd_least_squares(X - X.mean(axis=0), y)
    np.testing.assert_allclose(coefficients, expected_coefficients, atol=1e-9)
    reference = svd_least_squares(X, y)
    np.testing.assert_allclose(X @ coefficients + intercept, X @ reference[0] + reference[1],
                               atol=1e-9)


def test_one_refitter_serves_many_alphas_like_an_svd_fit_each():
    g = np.random.default_rng(4)
    V, d = 3000, 12
    E = g.normal(size=(V, d))
    refitter = EncodingRefitter(E, test_fraction=0.25, seed=3)
    train, test = refitter.train_tokens, refitter.test_tokens
    assert len(test) == 750 and np.intersect1d(train, test).size == 0
    for alpha in (g.dirichlet(np.ones(V)), np.exp(-(E @ g.normal(size=d))) / 50.0):
        refit = refitter.fit(alpha)
        coefficients, intercept = refitter.coefficients(alpha)  # the bootstraps' shortcut: the same numbers
        assert np.array_equal(coefficients, refit.A) and intercept == refit.B
        A, B = svd_least_squares(E[train], -np.log(alpha[train]))
        np.testing.assert_allclose(refit.A, A, rtol=1e-9, atol=1e-12)
        assert refit.B == pytest.approx(B, rel=1e-9)
        residual = -np.log(alpha[test]) - (E[test] @ A + B)
        centred = -np.log(alpha[test]) + np.log(alpha[test]).mean()
        assert refit.r2 == pytest.approx(1 - residual @ residual / (centred @ centred), rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError, match="alpha must be positive"):
        refitter.fit(np.zeros(V))


def test_token_counts_count_and_reject_ids_outside_the_vocabulary():
    assert token_counts(np.array([[0, 3], [3, 3]]), 5).tolist() == [1, 0, 0, 3, 0]
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\)"):
        token_counts(np.array([1, 5]), 5)
    with pytest.raises(ValueError, match="token ids must lie"):
        token_counts(np.array([-1, 2]), 5)


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


def test_subset_refitter_equals_the_ordinary_fits():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(600, 12))
    alpha = np.exp(-(E @ rng.normal(size=12) + rng.normal(0, 0.5, size=600)))
    alpha /= alpha.sum()
    fit = fit_encoding(E, alpha, seed=3)
    refitter = SubsetRefitter(E, seed=3)
    both = refitter.r2(np.log(alpha)[None], top_k=4)[0]
    assert both[0] == pytest.approx(fit.r2, rel=1e-9)
    assert both[1] == pytest.approx(subset_r2(fit, E, 4), rel=1e-9)


class PlantedPass:
    """A pass whose alpha is log-linear in E on the first k dimensions; windows differ by noise, in 12 documents."""

    def __init__(self, E, k: int, n_windows: int = 48, window_length: int = 8, noise: float = 0.05, seed: int = 0):
        import torch

        from utils.head import OutputHead

        rng = np.random.default_rng(seed)
        A = np.zeros(E.shape[1])
        A[:k] = rng.normal(size=k)
        logits = -(E @ A)
        per_window = logits[None, :] + rng.normal(0, noise, size=(n_windows, E.shape[0]))
        log_probs = per_window - np.logaddexp.reduce(per_window, axis=1, keepdims=True)
        self.window_log_sums = torch.from_numpy(log_probs + np.log(window_length)).float()
        self.document = torch.from_numpy(np.repeat(np.arange(12), n_windows // 12))
        self.token_ids = torch.zeros((n_windows, window_length), dtype=torch.int64)
        log_alpha = np.logaddexp.reduce(log_probs, axis=0) - np.log(n_windows)
        self.log_alpha = torch.from_numpy(log_alpha)
        self.alpha = self.log_alpha.exp()
        self.head = OutputHead(torch.from_numpy(E).float())


def test_headline_checks_reproduce_a_planted_sparse_encoding_and_reject_a_dense_one():
    rng = np.random.default_rng(1)
    E = rng.normal(size=(2000, 16)).astype(np.float32).astype(np.float64)
    sparse = headline_checks(PlantedPass(E, k=2), n_boot=50, sparse_share=0.25)
    assert [c.verdict for c in sparse] == ["reproduced", "reproduced"]
    # resampled alphas are noisier than the whole sample's, and noise in the target lowers R²: the percentile
    # interval may sit just below the point estimate, never far from it
    assert sparse[0].interval.low <= sparse[0].value <= sparse[0].interval.high + 0.005
    dense = headline_checks(PlantedPass(E, k=16), n_boot=50, sparse_share=0.25)
    assert dense[0].verdict == "reproduced" and dense[1].verdict == "not reproduced"


def _former_bootstrap_ci(actual, predicted, metric, n_boot, seed, level=0.95):
    """The hand-written percentile bootstrap that scipy.stats.bootstrap replaced (kept here as the reference)."""
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for i in range(n_boot):
        sample = rng.integers(0, len(actual), len(actual))
        values[i] = METRICS[metric](actual[sample], predicted[sample])
    tail = (1.0 - level) / 2.0
    return np.quantile(values, tail), np.quantile(values, 1.0 - tail)


@pytest.mark.parametrize("n", [400, 401])
def test_scipy_bootstrap_draws_the_same_resamples_as_the_hand_written_loop(n):
    rng = np.random.default_rng(3)
    actual = rng.normal(size=n)
    predicted = actual + rng.normal(scale=0.7, size=n)
    for metric in METRICS:
        # the same resampled tokens; the ends differ at most in the last bits of the percentile arithmetic
        np.testing.assert_allclose(bootstrap_ci(actual, predicted, metric, n_boot=250, seed=5),
                                   _former_bootstrap_ci(actual, predicted, metric, 250, 5), rtol=1e-13, atol=1e-15)


def test_r2_score_is_sklearns_and_equals_one_minus_sse_over_sst():
    from sklearn import metrics

    assert r2_score is metrics.r2_score
    rng = np.random.default_rng(0)
    actual = rng.normal(size=300)
    predicted = actual + rng.normal(size=300)
    direct = 1 - np.sum((actual - predicted) ** 2) / np.sum((actual - actual.mean()) ** 2)
    assert r2_score(actual, predicted) == direct  # bit for bit: the numbers of the book do not move


def test_accuracy_and_sparsity_tables_equal_their_parts():
    E, hidden, _ = planted_head(V=1500, d=12)
    alpha = mean_softmax(torch.tensor(hidden, dtype=torch.float32), OutputHead(torch.tensor(E, dtype=torch.float32)))
    alpha = alpha.numpy() * np.exp(np.random.default_rng(2).normal(scale=0.3, size=1500))  # noise: R² < 1
    fit = fit_encoding(E, alpha / alpha.sum(), seed=1)
    table = accuracy_table(fit, n_boot=40, seed=2)
    assert list(table.metric) == ["r2", "pearson", "spearman"]
    actual, predicted = fit.target[fit.test_tokens], fit.predicted[fit.test_tokens]
    for metric, point, low, high in table.itertuples(index=False):
        assert point == getattr(fit, metric)
        assert (low, high) == bootstrap_ci(actual, predicted, metric, n_boot=40, seed=2)
        assert low < point < high
    sparsity = sparsity_table(fit, E, [1, 3, 12])
    assert list(sparsity["share of |A| mass"]) == [top_k_mass(fit.A, k) for k in (1, 3, 12)]
    assert list(sparsity["held-out R² (OLS on top-k)"]) == [subset_r2(fit, E, k) for k in (1, 3, 12)]
    assert sparsity["held-out R² (OLS on top-k)"].iloc[-1] == pytest.approx(fit.r2)
    lasso = lasso_table(fit, E, [0.5, 0.1, 0.01])
    assert list(lasso.columns) == ["penalty", "n_nonzero", "r2"] and lasso.penalty.is_monotonic_decreasing


def test_lasso_dims_needed_reads_the_path():
    import pandas as pd

    lasso = pd.DataFrame({"n_nonzero": [1, 3, 5, 9, 12], "r2": [0.2, 0.6, 0.85, 0.93, 0.95]})
    assert lasso_dims_needed(lasso, 0.9) == (9, 5)  # 9 dims reach it; the next sparser point (5) falls short
    assert lasso_dims_needed(lasso, 0.1) == (1, 0)  # no sparser point
    assert lasso_dims_needed(lasso, 0.99) == (None, 12)  # never reached


def test_worst_tokens_are_the_largest_held_out_residuals():
    rng = np.random.default_rng(4)
    fit = fit_encoding(rng.normal(size=(400, 5)), rng.dirichlet(np.ones(400)), seed=0)
    worst = worst_tokens(fit, 7)
    brute = sorted(fit.test_tokens, key=lambda t: -abs(fit.residual[t]))[:7]
    assert list(worst) == brute and set(worst) <= set(fit.test_tokens)
    assert list(error_table(fit, SimpleTokenizer(), np.zeros(400, int), n=7).token_id) == brute


class SimpleTokenizer:
    all_special_ids: list = []

    def decode(self, ids):
        return f"t{ids[0]}"


def test_fit_pass_fits_a_pass_and_the_second_model_status_says_why():
    from types import SimpleNamespace

    rng = np.random.default_rng(6)
    E = rng.normal(size=(300, 4)).astype(np.float32)
    alpha = rng.dirichlet(np.ones(300))
    pass_ = SimpleNamespace(head=SimpleNamespace(E=torch.tensor(E)), alpha=torch.tensor(alpha))
    assert fit_pass(pass_, seed=3).r2 == fit_encoding(E.astype(np.float64), alpha, seed=3).r2
    assert second_model_status(None, "a", False) == "not computed: no second model was asked for"
    assert second_model_status("a", "a", True) == "not computed: no second model was asked for"
    assert second_model_status("b", "a", True) == "computed for b"
    assert second_model_status("b", "a", False).startswith("not computed: 'b' is not installed here")
