"""Tests of chapter 1's dispersion, transfer and output-space analyses against brute force and planted structure."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from utils.activations import log_mean_softmax, position_entropy
from utils.basis import principal_basis, random_orthogonal
from utils.encoding import basis_control
from utils.encoding.dispersion import (
    DISPERSIONS,
    POSITION_STATISTICS,
    DispersionMeter,
    GroupFitter,
    ProbeSample,
    _rank_check,
    best_dispersion,
    bootstrap_rank,
    condition_check,
    context_lengths,
    drop_duplicate_groups,
    entropy_groups,
    group_pass,
    length_groups,
    partial_spearman,
    prefix_log_alpha,
    rank_statistics,
    windows_log_alpha,
)
from utils.encoding.fit import EncodingRefitter, fit_encoding, score_encoding
from utils.encoding.output_space import OutputSpace, fixed_rows_r2, output_space, stratified_draws, subset_log_alphas
from utils.encoding.sparsity import lasso_crossing, subset_r2, top_k_mass
from utils.encoding.transfer import equal_positions_r2, rescaled_transfer_r2, transfer_table
from utils.encoding.wording import ordering_sentence, range_word, transfer_sentence, trend_word
from utils.head import OutputHead
from utils.pruning.basis_control import basis_verdict


def _head(V=60, d=8, seed=0, bias=False):
    g = torch.Generator().manual_seed(seed)
    E = torch.randn(V, d, generator=g)
    return OutputHead(E, torch.randn(V, generator=g) if bias else None)


def _hidden(n=40, d=8, seed=1):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * 1.5


def test_group_pass_matches_direct_computations():
    head, h = _head(bias=True), _hidden()
    labels = np.arange(len(h)) % 3
    out = group_pass(h, head, labels=labels, n_labels=4, chunk_size=7)
    np.testing.assert_allclose(out.log_alpha, log_mean_softmax(h, head).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out.entropy, position_entropy(h, head).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.log_normaliser, torch.logsumexp(head.logits(h), -1).numpy(), rtol=1e-6)
    log_probs = torch.log_softmax(head.logits(h), -1).double()
    for label in range(3):
        direct = torch.logsumexp(log_probs[torch.as_tensor(labels == label)], 0).numpy()
        np.testing.assert_allclose(out.label_log_sums[label], direct, rtol=1e-6, atol=1e-6)
    assert np.all(np.isneginf(out.label_log_sums[3]))
    with pytest.raises(ValueError, match="labels"):
        group_pass(h, head, labels=labels + 5, n_labels=4)


def test_dispersion_statistics_equal_brute_force():
    head, h = _head(V=200, bias=True), _hidden(n=50)
    E = head.E.numpy().astype(np.float64)
    meter = DispersionMeter(E, n_tokens=150, seed=0)
    passed = group_pass(h, head)
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
    passed = group_pass(same, head)
    flat = meter.measure(same, passed.log_normaliser, passed.log_alpha)
    for name in DISPERSIONS:
        assert abs(flat[name]) < 1e-8, name
    assert math.isnan(flat["mean_entropy"])


def test_curvature_share_grows_with_spread():
    head = _head(V=300, d=8)
    E = head.E.numpy().astype(np.float64)
    meter = DispersionMeter(E, n_tokens=300)
    shares = []
    for scale in (0.1, 1.0, 3.0):
        h = _hidden(n=60) * scale + 0.5
        passed = group_pass(h, head)
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
    ranks = rank_statistics(table)
    assert ranks.statistic.iloc[0] in ("logit_dispersion", "mean_entropy")
    assert ranks.set_index("statistic").loc["logit_dispersion", "all groups"] == pytest.approx(-1.0)
    assert best_dispersion(ranks) == "logit_dispersion"
    sentence = ordering_sentence(ranks, len(table))
    # the declared statistic is reported first; the best candidate only as chosen after looking
    assert sentence.startswith("Over 12 groups of positions, R² falls as the declared statistic log_prob_dispersion")
    assert "logit_dispersion orders R² best (-1.00; chosen after looking" in sentence
    with pytest.raises(ValueError, match="lacks"):
        rank_statistics(table.drop(columns="r2"))


def test_condition_check_is_three_valued():
    table = _planted_table()
    table["n_positions"], table["group"] = 100, [str(i) for i in range(12)]
    assert condition_check(table, "logit_dispersion", n_boot=200).verdict == "reproduced"
    table["rising"] = table.r2
    assert condition_check(table, "rising", n_boot=200).verdict == "not reproduced"
    assert condition_check(table, "curvature_share", n_boot=200).verdict == "inconclusive"


def test_condition_check_uses_the_declared_statistic_and_controls_for_positions():
    table = _planted_table()
    table["group"] = [str(i) for i in range(12)]
    # positions averaged drive both R² and the planted statistic: the raw correlation is strong, the partial one
    # (controlling for log n_positions) is not
    rng = np.random.default_rng(4)
    n = np.exp(np.linspace(3, 9, 12))
    table["n_positions"] = n.astype(int)
    table["r2"] = np.log(n) / 10 + 0.06 * rng.normal(size=12)
    table["log_prob_dispersion"] = -np.log(n) + 0.5 * rng.normal(size=12)
    result = condition_check(table, n_boot=300)
    assert result.statistic == "log_prob_dispersion" and result.raw.value < -0.8
    assert result.checks[0].verdict == "reproduced" and result.checks[1].verdict != "reproduced"
    assert "interval over 300 resamples of the groups, not over texts" in result.checks[0].name
    # the entropy is worded three-valued and the leave-one-grouping-out range is given
    assert set(result.leave_one_out) == {"a", "b"} and "Leaving one grouping out" in result.describe()
    assert "R² rises with the mean entropy, the opposite" in condition_check(
        table.assign(mean_entropy=table.r2), n_boot=200).describe()


def test_drop_duplicate_groups_removes_the_repeated_row():
    table = _planted_table()
    table["n_positions"], table["group"] = 100, [str(i) for i in range(12)]
    # the same positions (equal statistics of the positions), another alpha (curvature share and R² differ)
    table.loc[3, list(POSITION_STATISTICS)] = table.loc[10, list(POSITION_STATISTICS)].to_numpy()
    assert table.curvature_share[3] != table.curvature_share[10]
    kept, dropped = drop_duplicate_groups(table)
    assert len(kept) == 11 and dropped == ["a 3"] and "3" not in set(kept.group)
    assert condition_check(table, "logit_dispersion", n_boot=50).n_groups == 11


def test_bootstrap_rank_counts_undefined_samples():
    x, y = np.arange(6.0), np.arange(6.0)
    draws = np.array([[0, 1, 2, 3, 4, 5], [2, 2, 2, 2, 2, 2], [0, 0, 0, 0, 0, 5], [1, 1, 1, 1, 1, 1]])
    result = bootstrap_rank(x, y, draws)
    assert result.n_undefined == 2 and result.n_boot == 4  # all-tied draws are counted, not silently dropped
    assert "2 undefined, left out" in result.interval_text()
    planted = bootstrap_rank(x, y, np.array([[2] * 6, [3] * 6, [0, 1, 2, 3, 4, 5]]))
    assert planted.interval is None and planted.word("up", "down", "neither") == "neither"
    check = _rank_check("c", planted)
    assert check.verdict == "inconclusive" and "2 undefined resamples left out" in check.name


def test_partial_spearman_removes_a_planted_confounder():
    rng = np.random.default_rng(0)
    z = rng.normal(size=200)
    x, y = z + 0.1 * rng.normal(size=200), z + 0.1 * rng.normal(size=200)
    assert partial_spearman(x, y) > 0.9
    assert abs(partial_spearman(x, y, z)) < 0.2
    assert math.isnan(partial_spearman(x[:3], y[:3], z[:3]))


def _planted_encoding(V=400, d=12, seed=0):
    """-log alpha carried by 2 of d coordinates of E (plus a little noise)."""
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((V, d))
    target = 3 * E[:, 0] - 2 * E[:, 1] + 0.05 * rng.standard_normal(V)
    return E, -target


def _noisy_samples(log_alpha, n=40, block=16):
    """Blocks of log alpha with small noise, standing in for resamples over texts."""
    rng = np.random.default_rng(5)
    samples = log_alpha + 0.05 * rng.standard_normal((n, len(log_alpha)))
    return [samples[i : i + block] for i in range(0, n, block)]


def test_basis_sparsity_model_basis_matches_encoding_and_is_privileged():
    E, log_alpha = _planted_encoding()
    d = E.shape[1]
    bases = {"model": np.eye(d), **{f"random {s}": random_orthogonal(d, s) for s in range(5)},
             "principal": principal_basis(E)}
    table = basis_control.basis_sparsity(E, log_alpha, bases, [2, 4], test_fraction=0.25, seed=1)
    fit = fit_encoding(E, np.exp(log_alpha), test_fraction=0.25, seed=1)
    model = table[table.basis == "model"].set_index("k")
    assert model.loc[2, "abs_share"] == pytest.approx(top_k_mass(fit.A, 2))
    assert model.loc[2, "r2_top_k"] == pytest.approx(subset_r2(fit, E, 2), rel=1e-8)
    assert np.allclose(table.r2_full, fit.r2)  # the full fit does not depend on the basis
    at_2 = table[table.k == 2]
    random = at_2[at_2.basis.str.startswith("random")]
    shares = basis_control.BasisShares(E, bases, 2, test_fraction=0.25, seed=1).shares(log_alpha)
    assert np.allclose(shares, at_2.set_index("basis").loc[list(bases), ["abs_share", "kept_share"]].to_numpy())
    model_row, principal_row = (at_2[at_2.basis == name].iloc[0].to_dict() for name in ("model", "principal"))
    checks = basis_control.basis_checks(E, log_alpha, _noisy_samples(log_alpha), 2, n_random=5, test_fraction=0.25,
                                        seed=1)
    assert basis_verdict(checks) == "privileged" and all(check.interval.n_boot == 40 for check in checks)
    control = basis_control.basis_control(E, log_alpha, [2], n_random=5, test_fraction=0.25, seed=1)
    expected = control[control.kind == "model"].kept_share.iloc[0] - control[control.kind == "random"].kept_share.mean()
    assert checks[1].value == pytest.approx(expected)  # the same random bases (seeded seed + i) as the table
    sentence = basis_control.basis_sentence(checks, basis_verdict(checks), model_row, random, principal_row, 2)
    assert sentence.startswith("The model's basis is privileged") and "40 resamples of documents" in sentence
    # an encoding spread evenly over every coordinate (|A_i| all equal): the model's basis is the least sparse
    dense = -(E @ np.ones(d)) - 0.01 * np.random.default_rng(2).standard_normal(len(E))
    dense_checks = basis_control.basis_checks(E, dense, _noisy_samples(dense), 2, n_random=5, test_fraction=0.25,
                                              seed=1)
    assert basis_verdict(dense_checks) == "not privileged"
    with pytest.raises(ValueError, match="orthogonal"):
        basis_control.basis_sparsity(E, log_alpha, {"bad": np.ones((d, d))}, [2])


def test_subset_log_alphas_equal_brute_force():
    head, h = _head(V=50), _hidden(n=23)
    subsets = [np.arange(50), np.array([3, 7, 11, 40])]
    full, small = subset_log_alphas(h, head, subsets, chunk_size=5)
    np.testing.assert_allclose(full, log_mean_softmax(h, head).numpy(), rtol=1e-6, atol=1e-6)
    logits = head.logits(h).double()[:, subsets[1]]
    np.testing.assert_allclose(small, torch.log(torch.softmax(logits, -1).mean(0)).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="subsets"):
        subset_log_alphas(h, head, [np.array([1])])


def test_fixed_rows_r2_recovers_a_linear_target():
    E, log_alpha = _planted_encoding(V=500)
    tokens = np.arange(0, 500, 2)
    r2 = fixed_rows_r2(E, tokens, log_alpha[tokens], n_fit=150, n_test=80, seed=0)
    assert r2 > 0.99
    with pytest.raises(ValueError, match="n_fit"):
        fixed_rows_r2(E, tokens, log_alpha[tokens], n_fit=200, n_test=80)


def test_windows_and_prefix_alphas_equal_direct_means():
    head, h = _head(V=30), _hidden(n=24)
    windows = h.reshape(4, 6, -1)
    sums = torch.stack([torch.logsumexp(torch.log_softmax(head.logits(w), -1), 0) for w in windows]).numpy()
    pick = np.array([0, 2])
    direct = log_mean_softmax(windows[pick].reshape(-1, h.shape[1]), head).numpy()
    np.testing.assert_allclose(windows_log_alpha(sums, pick, 6), direct, rtol=1e-5)
    labels = np.tile(np.arange(6), 4)
    passed = group_pass(h, head, labels=labels, n_labels=6)
    prefix = prefix_log_alpha(passed.label_log_sums, np.bincount(labels), 3)
    direct = log_mean_softmax(windows[:, :3].reshape(-1, h.shape[1]), head).numpy()
    np.testing.assert_allclose(prefix, direct, rtol=1e-5, atol=1e-6)


def test_lasso_crossing_interpolates_in_log_k():
    k, r2 = np.array([1, 4, 16]), np.array([0.2, 0.5, 0.9])
    assert lasso_crossing(k, r2, 0.7) == pytest.approx(8.0)
    assert lasso_crossing(k, r2, 0.1) == 1.0
    assert math.isnan(lasso_crossing(k, r2, 0.95))


def test_words_follow_the_numbers():
    assert [trend_word(r) for r in (0.3, -0.2, 0.0, math.nan)] == ["rises", "falls", "does not move",
                                                                   "does not move"]
    assert [range_word(v, 0.5, 0.7) for v in (0.4, 0.6, 0.8)] == ["below", "within", "above"]
    with pytest.raises(ValueError, match="low"):
        range_word(0.1, 0.9, 0.2)


def _pass(n_windows=6, window_length=8, V=40, d=6, seed=0):
    """A small pass: head, hidden states (n_windows * window_length, d), per-window log sums, alpha."""
    from types import SimpleNamespace

    head = _head(V=V, d=d, seed=seed)
    hidden = _hidden(n=n_windows * window_length, d=d, seed=seed + 1)
    windows = hidden.reshape(n_windows, window_length, d)
    sums = torch.stack([torch.logsumexp(torch.log_softmax(head.logits(w).double(), -1), 0) for w in windows])
    log_alpha = log_mean_softmax(hidden, head).double()
    return head, SimpleNamespace(hidden_flat=hidden, n_positions=len(hidden), log_alpha=log_alpha,
                                 alpha=log_alpha.exp(), window_log_sums=sums, describe=lambda: "a text")


def test_groups_of_positions_are_what_they_say():
    assert context_lengths(128) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert context_lengths(12) == [1, 2, 4, 8, 12]
    groups = length_groups(5, 12, [1, 4, 12], np.random.default_rng(0))
    assert list(groups) == ["1", "4", "12", "random"]
    assert np.array_equal(groups["4"] % 12, np.full(5, 3)) and np.array_equal(groups["4"] // 12, np.arange(5))
    assert len(set(groups["random"])) == 5 and groups["random"].max() < 60
    entropy = np.random.default_rng(1).permutation(np.arange(12.0))
    bins = entropy_groups(entropy, 3)
    assert sorted(np.concatenate(list(bins.values()))) == list(range(12))  # a partition
    assert [sorted(entropy[b]) for b in bins.values()] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(ValueError, match="lengths=13"):
        length_groups(5, 12, [13], np.random.default_rng(0))


def test_group_fitter_rows_equal_direct_fits():
    head, acts = _pass()
    E = head.E.numpy().astype(np.float64)
    refitter = EncodingRefitter(E, test_fraction=0.25, seed=0)
    fitter = GroupFitter(refitter, DispersionMeter(E, seed=0), head)
    h = acts.hidden_flat

    def direct_r2(rows):  # the fit of alpha averaged over exactly these positions of the pass
        return refitter.fit(np.exp(log_mean_softmax(h[torch.as_tensor(rows)], head).double().numpy())).r2

    groups = {"a": np.array([0, 5, 9]), "b": np.arange(20, 40)}
    rows = fitter.rows("test", groups, h)
    assert [row["n_positions"] for row in rows] == [3, 20]
    assert [row["r2"] for row in rows] == pytest.approx([direct_r2(g) for g in groups.values()], rel=1e-6)
    probe = ProbeSample.draw(h, head, np.arange(0, 48, 2), 8)  # every other position of 6 windows of 8
    assert np.array_equal(probe.context, np.arange(0, 48, 2) % 8)
    by_length = fitter.window_length_rows(probe, [3, 8])  # alpha of the probed positions with context below L
    probed, all_positions = probe.positions, np.arange(48)
    assert by_length[0]["r2"] == pytest.approx(direct_r2(probed[probed % 8 < 3]), rel=1e-6)
    assert by_length[1]["r2"] == pytest.approx(direct_r2(probed), rel=1e-6)
    assert [row["n_positions"] for row in by_length] == [12, 24]  # probed positions of context below 3, and all
    by_count = fitter.window_count_rows(probe, acts.window_log_sums, [2], seed=4)
    windows = np.random.default_rng(4).choice(6, 2, replace=False)
    assert by_count[0]["r2"] == pytest.approx(direct_r2(np.isin(all_positions // 8, windows).nonzero()[0]), rel=1e-6)
    assert by_count[0]["n_positions"] == 16
    corpus = fitter.corpus_rows({"other": acts}, n_probe=10, seed=0)[0]
    assert corpus["group"] == "other" and corpus["n_positions"] == 48
    assert corpus["r2"] == pytest.approx(refitter.fit(acts.alpha.numpy()).r2)


def test_transfer_table_and_equal_positions_equal_direct_fits():
    head, acts = _pass(V=60)
    _, other = _pass(V=60, seed=5)
    E = head.E.numpy().astype(np.float64)
    refitter = EncodingRefitter(E, test_fraction=0.25, seed=0)
    fit = refitter.fit(acts.alpha.numpy())
    table = transfer_table(fit, refitter, {"itself": acts, "other": other})
    itself, moved = table.iloc[0], table.iloc[1]
    assert itself["R² (A from main corpus)"] == pytest.approx(fit.r2) and itself["cosine(A_main, A_own)"] == 1.0
    assert moved["R² (own A)"] == refitter.fit(other.alpha.numpy()).r2
    assert moved["R² (A from main corpus)"] == score_encoding(fit, E, other.alpha.numpy())["r2"]
    equal = equal_positions_r2(refitter, acts.window_log_sums, 3, 8, n_subsets=2, seed=7)
    for i, r2 in enumerate(equal):
        windows = np.random.default_rng(7 + i).choice(6, 3, replace=False)
        rows = acts.hidden_flat.reshape(6, 8, -1)[windows].reshape(-1, acts.hidden_flat.shape[1])
        assert r2 == pytest.approx(refitter.fit(log_mean_softmax(rows, head).double().exp().numpy()).r2, rel=1e-6)
    with pytest.raises(ValueError, match="n_windows=7"):
        equal_positions_r2(refitter, acts.window_log_sums, 7, 8, n_subsets=1, seed=0)
    table["R² (own A)"] = [0.5, 0.9]
    sentence = transfer_sentence(table, np.array([0.6, 0.8]))
    assert "own fit reaches 0.500, below the main corpus's range" in sentence
    assert "own fit reaches 0.900, above the main corpus's range" in sentence and sentence.count("On ") == 2
    assert "with its intercept and scale refitted on other's training tokens, reaches R²" in sentence
    # a corpus whose -log alpha is the main prediction stretched and shifted: the direction is exact, the raw
    # prediction is not
    planted = np.exp(-(2.5 * (E @ fit.A + fit.B) + 3.0))
    assert rescaled_transfer_r2(fit, refitter, planted) == pytest.approx(1.0)
    assert score_encoding(fit, E, planted)["r2"] < 0.5
    assert itself["R² (main direction, rescaled)"] == pytest.approx(fit.r2, abs=0.05)


def test_basis_control_builds_the_bases_and_reads_one_k():
    E, log_alpha = _planted_encoding()
    table = basis_control.basis_control(E, log_alpha, [2, 4], n_random=3, test_fraction=0.25, seed=1)
    assert sorted(set(table.basis)) == ["model", "principal", "random 0", "random 1", "random 2"]
    assert set(table.kind) == {"model", "principal", "random"}
    direct = basis_control.basis_sparsity(E, log_alpha, {"random 1": random_orthogonal(E.shape[1], 2)}, [2, 4],
                                          test_fraction=0.25, seed=1)  # random basis i is seeded seed + i
    assert np.allclose(table[table.basis == "random 1"].kept_share, direct.kept_share)
    model, principal, random = basis_control.basis_rows_at(table, 2)
    assert model["basis"] == "model" and principal["basis"] == "principal" and len(random) == 3
    assert set(random.k) == {2}
    with pytest.raises(ValueError, match="k=3"):
        basis_control.basis_rows_at(table, 3)


def test_output_space_fits_every_subset_on_the_same_rows():
    head, acts = _pass(V=80, d=4)
    E = head.E.numpy().astype(np.float64)
    space = output_space(acts.hidden_flat, head, E, [20, 40], n_subsets=2, n_positions=30, test_fraction=0.25,
                         seed=3)
    assert space.n_positions == 30 and space.n_fit_rows == 15
    assert list(space.table["size"]) == [20, 20, 40, 40, 80, 80] and list(space.table.draw) == [0, 0, 0, 0, 0, 1]
    # the full vocabulary's first fit, by hand: the same probed positions, rows drawn with seed + 4
    rng = np.random.default_rng(3)
    for _ in range(4):
        rng.choice(80, 20 if _ < 2 else 40, replace=False)
    probed = np.sort(rng.choice(48, 30, replace=False))
    log_alpha = log_mean_softmax(acts.hidden_flat[torch.as_tensor(probed)], head).double().numpy()
    direct = fixed_rows_r2(E, np.arange(80), log_alpha, n_fit=15, n_test=5, seed=3 + 4)
    assert space.table.r2.iloc[4] == pytest.approx(direct, rel=1e-5)
    sizes = np.repeat([10, 100, 1000], 3)
    planted = OutputSpace(pd.DataFrame({"size": sizes, "r2": np.log10(sizes) / 4 + 0.01 * np.tile([-1, 0, 1], 3)}),
                          30, 8)
    assert planted.sentence(n_boot=200).startswith("With 8 fitted rows at every size, held-out R² rises with the "
                                                   "output-space size (rank correlation 0.95 over 9 fits, [")
    assert "mean R² 0.250 at 10, 0.500 at 100, 0.750 at 1,000 tokens" in planted.sentence(n_boot=200)
    # no trend: R² drawn independently of the size
    flat = OutputSpace(pd.DataFrame({"size": np.repeat([10, 100, 1000, 5000], 3),
                                     "r2": np.random.default_rng(1).normal(0.5, 0.05, 12)}), 30, 8)
    assert "shows no detectable trend with the output-space size" in flat.sentence(n_boot=300)
    draws = stratified_draws(sizes, 50, 0)
    assert all(set(sizes[row]) == {10, 100, 1000} and np.all(sizes[row] == sizes) for row in draws)
