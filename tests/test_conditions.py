"""Tests of utils.conditions against brute force and planted structure."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from utils import conditions as cond
from utils import encoding as enc
from utils.activations import log_mean_softmax, position_entropy
from utils.basis import principal_basis, random_orthogonal
from utils.head import OutputHead


def _head(V=60, d=8, seed=0, bias=False):
    g = torch.Generator().manual_seed(seed)
    E = torch.randn(V, d, generator=g)
    return OutputHead(E, torch.randn(V, generator=g) if bias else None)


def _hidden(n=40, d=8, seed=1):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * 1.5


def test_group_pass_matches_direct_computations():
    head, h = _head(bias=True), _hidden()
    labels = np.arange(len(h)) % 3
    out = cond.group_pass(h, head, labels=labels, n_labels=4, chunk_size=7)
    np.testing.assert_allclose(out.log_alpha, log_mean_softmax(h, head).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out.entropy, position_entropy(h, head).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.log_normaliser, torch.logsumexp(head.logits(h), -1).numpy(), rtol=1e-6)
    log_probs = torch.log_softmax(head.logits(h), -1).double()
    for label in range(3):
        direct = torch.logsumexp(log_probs[torch.as_tensor(labels == label)], 0).numpy()
        np.testing.assert_allclose(out.label_log_sums[label], direct, rtol=1e-6, atol=1e-6)
    assert np.all(np.isneginf(out.label_log_sums[3]))
    with pytest.raises(ValueError, match="labels"):
        cond.group_pass(h, head, labels=labels + 5, n_labels=4)


def test_dispersion_statistics_equal_brute_force():
    head, h = _head(V=200, bias=True), _hidden(n=50)
    E = head.E.numpy().astype(np.float64)
    meter = cond.DispersionMeter(E, n_tokens=150, seed=0)
    passed = cond.group_pass(h, head)
    stats = meter.measure(h, passed.log_normaliser, passed.log_alpha, passed.entropy)
    h64 = h.double().numpy()
    logits = h64 @ E.T  # (n, V); the bias is constant over positions
    log_probs = torch.log_softmax(head.logits(h).double(), -1).numpy()
    assert stats["logit_dispersion"] == pytest.approx(logits.var(axis=0).mean(), rel=1e-6)
    assert stats["log_prob_dispersion"] == pytest.approx(log_probs.var(axis=0).mean(), rel=1e-4)
    assert stats["hidden_dispersion"] == pytest.approx(h64.var(axis=0).sum() / np.sum(h64.mean(0) ** 2), rel=1e-6)
    assert stats["mean_entropy"] == pytest.approx(passed.entropy.mean())
    # identical positions: no dispersion at all, and alpha is exactly log-linear
    same = h[:1].repeat(10, 1)
    passed = cond.group_pass(same, head)
    flat = meter.measure(same, passed.log_normaliser, passed.log_alpha)
    for name in cond.DISPERSIONS:
        assert abs(flat[name]) < 1e-8, name
    assert math.isnan(flat["mean_entropy"])


def test_curvature_share_grows_with_spread():
    head = _head(V=300, d=8)
    E = head.E.numpy().astype(np.float64)
    meter = cond.DispersionMeter(E, n_tokens=300)
    shares = []
    for scale in (0.1, 1.0, 3.0):
        h = _hidden(n=60) * scale + 0.5
        passed = cond.group_pass(h, head)
        shares.append(meter.measure(h, passed.log_normaliser, passed.log_alpha)["curvature_share"])
    assert shares[0] < shares[1] < shares[2]


def _planted_table():
    rng = np.random.default_rng(0)
    dispersion = np.linspace(0, 1, 12)
    return pd.DataFrame({"grouping": ["a"] * 6 + ["b"] * 6, "r2": 1 - dispersion,
                         "hidden_dispersion": rng.permutation(dispersion), "logit_dispersion": dispersion,
                         "log_prob_dispersion": dispersion ** 2 + rng.normal(0, 0.05, 12),
                         "curvature_share": rng.random(12), "mean_entropy": dispersion[::-1]})


def test_rank_statistics_finds_the_planted_ordering():
    table = _planted_table()
    ranks = cond.rank_statistics(table)
    assert ranks.statistic.iloc[0] in ("logit_dispersion", "mean_entropy")
    assert ranks.set_index("statistic").loc["logit_dispersion", "all groups"] == pytest.approx(-1.0)
    assert cond.best_dispersion(ranks) == "logit_dispersion"
    sentence = cond.ordering_sentence(ranks, len(table))
    assert "logit_dispersion" in sentence and "falls" in sentence and "-1.00" in sentence
    with pytest.raises(ValueError, match="lacks"):
        cond.rank_statistics(table.drop(columns="r2"))


def test_condition_check_is_three_valued():
    table = _planted_table()
    assert cond.condition_check(table, "logit_dispersion", n_boot=200).verdict == "reproduced"
    table["rising"] = table.r2
    assert cond.condition_check(table, "rising", n_boot=200).verdict == "not reproduced"
    assert cond.condition_check(table, "curvature_share", n_boot=200).verdict == "inconclusive"


def _planted_encoding(V=400, d=12, seed=0):
    """-log alpha carried by 2 of d coordinates of E (plus a little noise)."""
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((V, d))
    target = 3 * E[:, 0] - 2 * E[:, 1] + 0.05 * rng.standard_normal(V)
    return E, -target


def test_basis_sparsity_model_basis_matches_encoding_and_is_privileged():
    E, log_alpha = _planted_encoding()
    d = E.shape[1]
    bases = {"model": np.eye(d), **{f"random {s}": random_orthogonal(d, s) for s in range(5)},
             "principal": principal_basis(E)}
    table = cond.basis_sparsity(E, log_alpha, bases, [2, 4], test_fraction=0.25, seed=1)
    fit = enc.fit_encoding(E, np.exp(log_alpha), test_fraction=0.25, seed=1)
    model = table[table.basis == "model"].set_index("k")
    assert model.loc[2, "abs_share"] == pytest.approx(enc.top_k_mass(fit.A, 2))
    assert model.loc[2, "r2_top_k"] == pytest.approx(enc.subset_r2(fit, E, 2), rel=1e-8)
    assert np.allclose(table.r2_full, fit.r2)  # the full fit does not depend on the basis
    at_2 = table[table.k == 2]
    random = at_2[at_2.basis.str.startswith("random")]
    model_row = at_2[at_2.basis == "model"].iloc[0].to_dict()
    assert cond.basis_verdict(model_row, random) == "privileged"
    sentence = cond.basis_sentence(model_row, random, at_2[at_2.basis == "principal"].iloc[0].to_dict(), 2)
    assert sentence.startswith("The model's basis is privileged")
    # the same encoding, hidden in a rotated embedding: the model's coordinates are no longer special
    rotated = E @ random_orthogonal(d, 99)
    table = cond.basis_sparsity(rotated, log_alpha, bases, [2], test_fraction=0.25, seed=1)
    random = table[table.basis.str.startswith("random")]
    assert cond.basis_verdict(table[table.basis == "model"].iloc[0].to_dict(), random) != "privileged"
    with pytest.raises(ValueError, match="orthogonal"):
        cond.basis_sparsity(E, log_alpha, {"bad": np.ones((d, d))}, [2])


def test_subset_log_alphas_equal_brute_force():
    head, h = _head(V=50), _hidden(n=23)
    subsets = [np.arange(50), np.array([3, 7, 11, 40])]
    full, small = cond.subset_log_alphas(h, head, subsets, chunk_size=5)
    np.testing.assert_allclose(full, log_mean_softmax(h, head).numpy(), rtol=1e-6, atol=1e-6)
    logits = head.logits(h).double()[:, subsets[1]]
    np.testing.assert_allclose(small, torch.log(torch.softmax(logits, -1).mean(0)).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="subsets"):
        cond.subset_log_alphas(h, head, [np.array([1])])


def test_fixed_rows_r2_recovers_a_linear_target():
    E, log_alpha = _planted_encoding(V=500)
    tokens = np.arange(0, 500, 2)
    r2 = cond.fixed_rows_r2(E, tokens, log_alpha[tokens], n_fit=150, n_test=80, seed=0)
    assert r2 > 0.99
    with pytest.raises(ValueError, match="n_fit"):
        cond.fixed_rows_r2(E, tokens, log_alpha[tokens], n_fit=200, n_test=80)


def test_windows_and_prefix_alphas_equal_direct_means():
    head, h = _head(V=30), _hidden(n=24)
    windows = h.reshape(4, 6, -1)
    sums = torch.stack([torch.logsumexp(torch.log_softmax(head.logits(w), -1), 0) for w in windows]).numpy()
    pick = np.array([0, 2])
    direct = log_mean_softmax(windows[pick].reshape(-1, h.shape[1]), head).numpy()
    np.testing.assert_allclose(cond.windows_log_alpha(sums, pick, 6), direct, rtol=1e-5)
    labels = np.tile(np.arange(6), 4)
    passed = cond.group_pass(h, head, labels=labels, n_labels=6)
    prefix = cond.prefix_log_alpha(passed.label_log_sums, np.bincount(labels), 3)
    direct = log_mean_softmax(windows[:, :3].reshape(-1, h.shape[1]), head).numpy()
    np.testing.assert_allclose(prefix, direct, rtol=1e-5, atol=1e-6)


def test_lasso_crossing_interpolates_in_log_k():
    k, r2 = np.array([1, 4, 16]), np.array([0.2, 0.5, 0.9])
    assert cond.lasso_crossing(k, r2, 0.7) == pytest.approx(8.0)
    assert cond.lasso_crossing(k, r2, 0.1) == 1.0
    assert math.isnan(cond.lasso_crossing(k, r2, 0.95))


def test_words_follow_the_numbers():
    assert [cond.trend_word(r) for r in (0.3, -0.2, 0.0, math.nan)] == ["rises", "falls", "does not move",
                                                                        "does not move"]
    assert [cond.range_word(v, 0.5, 0.7) for v in (0.4, 0.6, 0.8)] == ["below", "within", "above"]
    with pytest.raises(ValueError, match="low"):
        cond.range_word(0.1, 0.9, 0.2)
