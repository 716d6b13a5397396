"""Tests of utils.pruning: criteria recover planted structure, the cached-head shortcut equals a real pruned model,
the streamed sweep equals utils.compare, bad input fails clearly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from utils.activations import Activations, log_mean_softmax, mean_softmax, window_log_sums
from utils.basis import random_orthogonal
from utils.compare import compare_heads, js_divergence, js_divergence_rows
from utils.encoding.fit import fit_encoding
from utils.head import OutputHead
from utils.pruning.basis_control import (
    MODEL_BASIS,
    PRINCIPAL_BASIS,
    RANDOM_BASIS,
    BasisCondition,
    basis_checks,
    basis_conditions,
    basis_deletion,
    basis_verdict,
    spectral_comparison_text,
)
from utils.pruning.criteria import (
    CRITERIA,
    criterion_orders,
    dimension_scores,
    fisher_saliency,
    keep_columns,
    n_deleted,
    rank_dimensions,
)
from utils.pruning.generation import mauve_buckets, mauve_saturation_text, text_statistics
from utils.pruning.heads import pruned_output_head
from utils.pruning.scorecard import WindowSums, bootstrap_window_sums, headline_checks, held_out_window_sums
from utils.pruning.sweep import (
    choose_criterion,
    context_groups,
    deletion_sweep,
    halves_positions,
    js_between_halves,
    largest_safe_fraction,
    selection_positions,
    subsample_positions,
    sweep_activations,
)
from utils.uncertainty import Check, Interval

N_RELEVANT = 10


@pytest.fixture(scope="module")
def planted():
    """A head whose hidden states use only the first N_RELEVANT of d dimensions (the rest are exactly zero)."""
    generator = torch.Generator().manual_seed(0)
    V, d, N = 2000, 16, 3000
    E = torch.randn(V, d, generator=generator)
    mean = torch.zeros(d)
    mean[:N_RELEVANT] = torch.randn(N_RELEVANT, generator=generator).sign() * (
        0.5 + torch.rand(N_RELEVANT, generator=generator)
    )
    hidden = mean + 0.5 * torch.randn(N, d, generator=generator)
    hidden[:, N_RELEVANT:] = 0.0
    head = OutputHead(E)
    alpha = mean_softmax(hidden, head)
    fit = fit_encoding(E.numpy(), alpha.numpy())
    return {"E": E, "hidden": hidden, "head": head, "fit": fit, "d": d}


def test_planted_fit_is_accurate(planted):
    # the premise of the next tests: the encoding holds on the planted head
    assert planted["fit"].r2 > 0.9


@pytest.mark.parametrize("criterion", [c for c in CRITERIA if c != "random"])
def test_criteria_delete_irrelevant_dimensions_first(planted, criterion):
    order = rank_dimensions(criterion, planted["E"], planted["fit"].A, planted["hidden"])
    d = planted["d"]
    assert sorted(order.tolist()) == list(range(d))
    assert set(order[: d - N_RELEVANT].tolist()) == set(range(N_RELEVANT, d))


def test_abs_A_deletion_leaves_distribution_still_and_relevant_deletion_moves_it(planted):
    E, hidden, head, fit = planted["E"], planted["hidden"], planted["head"], planted["fit"]
    d = planted["d"]
    fraction = (d - N_RELEVANT) / d
    keep = keep_columns(rank_dimensions("abs_A", E, fit.A), fraction)
    assert keep.tolist() == list(range(N_RELEVANT))
    pruned = compare_heads(hidden, head, OutputHead(E[:, keep]), new_columns=keep)
    assert pruned.js_alpha < 1e-10 and pruned.mean_kl < 1e-8 and pruned.top1_agreement == 1.0
    # deleting the same number of dimensions from the most important end moves everything
    reverse = rank_dimensions("abs_A", E, fit.A).flip(0)
    keep_wrong = keep_columns(reverse, fraction)
    moved = compare_heads(hidden, head, OutputHead(E[:, keep_wrong]), new_columns=keep_wrong)
    assert moved.js_alpha > 0.01 and moved.mean_kl > 0.1 and moved.top1_agreement < 0.9


def test_spread_scaling_is_invariant_to_rescaling_a_dimension(planted):
    # scaling column j of E by s and A_j by 1/s leaves the encoding unchanged; abs_A_spread must not notice,
    # abs_A must (that is the point of the scaled criterion)
    E, A = planted["E"].clone(), planted["fit"].A.copy()
    scores = dimension_scores("abs_A_spread", E, A)
    E[:, 3] *= 100.0
    A[3] /= 100.0
    rescaled = dimension_scores("abs_A_spread", E, A)
    assert torch.allclose(scores, rescaled, rtol=1e-5)
    assert not torch.allclose(dimension_scores("abs_A", planted["E"], planted["fit"].A),
                              dimension_scores("abs_A", E, A))


def test_fisher_saliency_matches_brute_force_kl_for_small_deletions():
    # for a small logit change the mean KL from deleting dimension i alone is 0.5 * saliency_i (second order)
    generator = torch.Generator().manual_seed(1)
    V, d, N = 500, 8, 400
    E = torch.randn(V, d, generator=generator)
    b = torch.randn(V, generator=generator)
    hidden = 0.05 * torch.randn(N, d, generator=generator) + 0.02
    saliency = fisher_saliency(E, hidden, b, chunk_size=128)
    head = OutputHead(E, b)
    for i in range(d):
        keep = torch.tensor([j for j in range(d) if j != i])
        kl = compare_heads(hidden, head, OutputHead(E[:, keep], b), new_columns=keep).mean_kl
        assert kl == pytest.approx(0.5 * float(saliency[i]), rel=0.05)


def test_random_order_is_seeded(planted):
    first = rank_dimensions("random", planted["E"], None, seed=3)
    assert torch.equal(first, rank_dimensions("random", planted["E"], None, seed=3))
    assert not torch.equal(first, rank_dimensions("random", planted["E"], None, seed=4))
    assert sorted(first.tolist()) == list(range(planted["d"]))


def test_keep_columns_counts():
    order = torch.tensor([4, 2, 0, 1, 3, 5, 6, 7, 8, 9])
    assert keep_columns(order, 0.0).tolist() == list(range(10))
    assert keep_columns(order, 0.3).tolist() == [1, 3, 5, 6, 7, 8, 9]
    assert keep_columns(order, 0.99).tolist() == [9]
    assert n_deleted(576, 0.3) == 172
    assert n_deleted(10, 0.3) == 3


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan")])
def test_fraction_outside_unit_interval_fails(fraction):
    with pytest.raises(ValueError, match="fraction"):
        keep_columns(torch.arange(10), fraction)


def test_unknown_criterion_fails(planted):
    with pytest.raises(ValueError, match=r"criterion='smallest'.*abs_A"):
        rank_dimensions("smallest", planted["E"], planted["fit"].A)


def test_missing_inputs_fail(planted):
    with pytest.raises(ValueError, match="needs the encoding coefficients A"):
        rank_dimensions("abs_A", planted["E"], None)
    with pytest.raises(ValueError, match="needs hidden states"):
        rank_dimensions("fisher", planted["E"], planted["fit"].A, None)
    with pytest.raises(ValueError, match="A must have shape"):
        rank_dimensions("abs_A", planted["E"], np.ones(3))
    with pytest.raises(ValueError, match="permutation"):
        keep_columns(torch.tensor([0, 0, 1]), 0.5)


# ---------------------------------------------------------------------------------------------------------------
# The streamed sweep
# ---------------------------------------------------------------------------------------------------------------



@pytest.fixture(scope="module")
def biased_head():
    generator = torch.Generator().manual_seed(2)
    V, d, N = 1500, 20, 500
    E = torch.randn(V, d, generator=generator)
    b = torch.randn(V, generator=generator)
    hidden = 0.8 * torch.randn(N, d, generator=generator) + 0.3
    targets = torch.randint(0, V, (N,), generator=generator)
    targets[::9] = -1
    return {"E": E, "b": b, "head": OutputHead(E, b), "hidden": hidden, "targets": targets, "d": d}


def test_sweep_equals_compare_heads_for_every_setting_and_group(biased_head):
    E, b, head, hidden, targets = (biased_head[k] for k in ("E", "b", "head", "hidden", "targets"))
    orders = criterion_orders(["h_spread", "fisher", "random"], E, None, hidden, random_seeds=[0, 1], b=b)
    fractions = [0.0, 0.1, 0.12, 0.45, 0.9]  # 0.1 and 0.12 both delete 2 of 20 dimensions
    groups = torch.arange(hidden.shape[0]) % 3
    sweep = deletion_sweep(hidden, head, orders, fractions, targets=targets, groups=groups,
                           group_names=["a", "b", "c"], chunk_size=77, progress=False)
    assert len(sweep) == len(orders) * len(fractions) * 4
    for (criterion, seed), order in orders.items():
        for fraction in fractions:
            keep = keep_columns(order, fraction)
            for group, mask in [("all", torch.ones(len(groups), dtype=torch.bool)), ("b", groups == 1)]:
                expected = compare_heads(hidden[mask], head, OutputHead(E[:, keep], b), targets=targets[mask],
                                         new_columns=keep, chunk_size=64)
                row = sweep[(sweep.criterion == criterion) & (sweep.seed == seed) & (sweep.fraction == fraction)
                            & (sweep.group == group)].iloc[0]
                assert row.n_kept == len(keep)
                assert row.js_alpha == pytest.approx(expected.js_alpha, abs=1e-7)
                assert row.mean_kl == pytest.approx(expected.mean_kl, abs=1e-5)
                assert row.top1_agreement == expected.top1_agreement
                assert row.nll_new == pytest.approx(expected.nll_new, abs=1e-5)
                assert row.nll_ref == pytest.approx(expected.nll_ref, abs=1e-5)


def test_sweep_of_unit_deletions_moves_nothing_when_the_hidden_coordinate_is_zero(planted):
    # a head is unchanged by deleting a coordinate that every hidden state leaves at zero; one that matters moves
    orders = {"irrelevant": torch.arange(planted["d"]).flip(0), "relevant": torch.arange(planted["d"])}
    sweep = deletion_sweep(planted["hidden"], planted["head"], orders, [0.3], progress=False)
    still, moved = sweep.set_index("criterion").loc["irrelevant"], sweep.set_index("criterion").loc["relevant"]
    assert still.mean_kl < 1e-6 and still.js_alpha < 1e-9 and still.top1_agreement == 1.0
    assert moved.mean_kl > 0.05 and moved.top1_agreement < 0.95


def test_js_divergence_equals_scipy_jensen_shannon(biased_head):
    from scipy.spatial.distance import jensenshannon

    generator = torch.Generator().manual_seed(5)
    p = torch.rand(300, generator=generator, dtype=torch.float64) ** 4
    p[:10] = 0.0
    Q = torch.rand(4, 300, generator=generator, dtype=torch.float64) ** 3
    Q[1, 5:20] = 0.0
    rows = js_divergence_rows(p, Q)
    for i in range(4):
        expected = jensenshannon(p.numpy(), Q[i].numpy()) ** 2  # scipy's is the square root, natural log by default
        assert float(rows[i]) == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert js_divergence(p, Q[i]) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_sweep_rejects_bad_input(biased_head):
    head, hidden = biased_head["head"], biased_head["hidden"]
    orders = {"r": torch.arange(biased_head["d"])}
    with pytest.raises(ValueError, match="fractions"):
        deletion_sweep(hidden, head, orders, [0.2, 1.0], progress=False)
    with pytest.raises(ValueError, match="permutation"):
        deletion_sweep(hidden, head, {"bad": torch.zeros(biased_head["d"], dtype=torch.int64)}, [0.2])
    with pytest.raises(ValueError, match="hidden must have shape"):
        deletion_sweep(hidden[:, :5], head, orders, [0.2])


def test_positions_and_context_groups():
    index = subsample_positions(10, 16, 50, seed=3)
    assert len(index) == 50 and len(set(index.tolist())) == 50 and bool((index[1:] > index[:-1]).all())
    assert torch.equal(index, subsample_positions(10, 16, 50, seed=3))
    assert torch.equal(subsample_positions(10, 16, None), torch.arange(160))
    with pytest.raises(ValueError, match="n_positions"):
        subsample_positions(10, 16, 161)
    groups = context_groups(torch.arange(1, 17), short_max=4, long_min=12)
    assert groups.tolist() == [0] * 4 + [1] * 7 + [2] * 5
    with pytest.raises(ValueError, match="long_min"):
        context_groups(torch.arange(1, 17), short_max=4, long_min=4)


def test_largest_safe_fraction_against_brute_force():
    import pandas as pd

    rng = np.random.default_rng(0)
    fractions = [0.0, 0.1, 0.2, 0.3, 0.4]
    rows = []
    for criterion in ("a", "b"):
        for seed in ((0, 1, 2) if criterion == "b" else (0,)):
            for f in fractions:
                rows.append({"corpus": "x", "group": "all", "criterion": criterion, "seed": seed, "fraction": f,
                             "top1_agreement": float(rng.uniform(0.8, 1.0)) if f else 1.0})
    sweep = pd.DataFrame(rows)
    result = largest_safe_fraction(sweep, {"top1_agreement": ("above", 0.9)}).set_index("criterion")
    for criterion, curve in sweep.groupby("criterion"):
        mean = curve.groupby("fraction").top1_agreement.mean()
        expected = 0.0
        for f in fractions:
            if (mean.loc[:f] > 0.9).all():
                expected = f
        assert result.loc[criterion, "largest_fraction"] == expected


def test_text_statistics_on_known_sequences():
    loop = torch.tensor([[1, 2, 3, 4] * 4])  # 13 4-grams, 4 distinct
    stats = text_statistics(loop, n_values=(1, 2))
    assert stats["rep-4"] == pytest.approx(1 - 4 / 13)
    assert stats["distinct-1"] == pytest.approx(4 / 16)
    fresh = torch.arange(20).reshape(2, 10)
    assert text_statistics(fresh)["rep-4"] == 0.0 and text_statistics(fresh)["distinct-2"] == 1.0


# ---------------------------------------------------------------------------------------------------------------
# The shortcut against a real pruned model
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_loaded(tiny_models):
    from utils.models import load_model

    return {name: load_model(str(tiny_models[name])) for name in ("llama-tied", "gptj-bias")}


@pytest.mark.parametrize("name", ["llama-tied", "gptj-bias"])
def test_cached_head_shortcut_equals_a_real_pruned_forward_pass(tiny_loaded, name):
    from utils.compare import next_token_targets
    from utils.head import final_hidden_states, output_head, with_output_head

    loaded = tiny_loaded[name]
    head = output_head(loaded.model)
    input_embedding = loaded.model.get_input_embeddings().weight.detach().clone()
    generator = torch.Generator().manual_seed(0)
    token_ids = torch.randint(0, head.V, (2, 12), generator=generator)
    hidden = final_hidden_states(loaded.model, token_ids).reshape(-1, head.d)
    order = rank_dimensions("random", head.E, seed=1)
    keep = keep_columns(order, 0.4)
    pruned_model = with_output_head(loaded.model, pruned_output_head(head, keep))
    with torch.no_grad():
        real_logits = pruned_model(input_ids=token_ids).logits.reshape(-1, head.V)
    shortcut = hidden[:, keep] @ head.E[:, keep].T + (0 if head.b is None else head.b)
    assert torch.allclose(real_logits, shortcut, atol=1e-4, rtol=1e-4)
    # the original model (and a tied input embedding) are untouched
    assert torch.equal(loaded.model.get_input_embeddings().weight, input_embedding)
    assert torch.equal(pruned_model.get_input_embeddings().weight, input_embedding)
    assert torch.equal(output_head(loaded.model).E, head.E)
    # and the sweep's figures equal those computed from the real pruned model's logits
    targets = next_token_targets(token_ids)
    sweep = deletion_sweep(hidden, head, {"r": order}, [0.4], targets=targets, progress=False).iloc[0]
    with torch.no_grad():
        full_logits = loaded.model(input_ids=token_ids).logits.reshape(-1, head.V)
    log_p, log_q = torch.log_softmax(full_logits, -1), torch.log_softmax(real_logits, -1)
    assert sweep.mean_kl == pytest.approx(float((log_p.exp() * (log_p - log_q)).sum(-1).mean()), abs=1e-4)
    assert sweep.top1_agreement == pytest.approx(float((log_p.argmax(-1) == log_q.argmax(-1)).float().mean()))
    valid = targets >= 0
    nll = -log_q[valid.nonzero().squeeze(1), targets[valid]].mean()
    assert sweep.nll_new == pytest.approx(float(nll), abs=1e-4)


def test_sampling_is_seeded_cached_and_uses_the_pruned_head(tiny_loaded):
    from dataclasses import replace

    from utils.head import OutputHead, output_head, with_output_head
    from utils.pruning.generation import sample_continuations

    tiny = tiny_loaded["llama-tied"]
    # a random tiny model predicts nearly uniformly; sharpen its head so that pruning changes the draws
    head = output_head(tiny.model)
    sharp = OutputHead(head.E * 30.0)
    loaded = replace(tiny, model=with_output_head(tiny.model, sharp), identity=tiny.identity + ":sharp")
    prompts = torch.randint(0, 50257, (3, 5), generator=torch.Generator().manual_seed(0))
    first = sample_continuations(loaded, prompts, None, max_new_tokens=6, seed=4, batch_size=2, progress=False)
    again = sample_continuations(loaded, prompts, None, max_new_tokens=6, seed=4, batch_size=2, progress=False,
                                 use_cache=False)
    assert first.shape == (3, 6) and torch.equal(first, again)
    other_seed = sample_continuations(loaded, prompts, None, max_new_tokens=6, seed=5, batch_size=2, progress=False)
    assert not torch.equal(first, other_seed)
    keep = keep_columns(rank_dimensions("random", sharp.E, seed=0), 0.9)
    pruned = sample_continuations(loaded, prompts, keep, max_new_tokens=6, seed=4, batch_size=2, progress=False)
    assert not torch.equal(first, pruned)
    # the pruned draws are those of a model whose head is the sliced one, built independently
    sliced = OutputHead(torch.zeros_like(sharp.E))
    sliced.E[:, keep] = sharp.E[:, keep]
    independent = replace(loaded, model=with_output_head(tiny.model, sliced), identity=tiny.identity + ":sliced")
    expected = sample_continuations(independent, prompts, None, max_new_tokens=6, seed=4, batch_size=2,
                                    progress=False, use_cache=False)
    assert torch.equal(pruned, expected)
    with pytest.raises(ValueError, match="top_p"):
        sample_continuations(loaded, prompts, None, top_p=0.0)


def test_example_texts_interleave_prompts_and_continuations_on_one_line():
    from utils.pruning.generation import example_texts

    class Letters:  # a stand-in tokenizer: id 0 is a newline, id i > 0 the i-th letter
        @staticmethod
        def decode(ids, skip_special_tokens=True):
            assert not skip_special_tokens
            return "".join("\nabcdef"[int(i)] for i in ids)

    prompts = torch.tensor([[1, 0, 2], [3, 3, 3]])
    continuations = {"reference": torch.tensor([[4, 5], [6, 0]]), "cut": torch.tensor([[1, 1], [2, 2]]),
                     "unused": torch.tensor([[3, 3], [3, 3]])}
    table = example_texts(Letters(), prompts, continuations, ["cut", "reference"], 2)
    assert table["head"].tolist() == ["prompt", "cut", "reference"] * 2
    assert table["text"].tolist() == ["a b", "aa", "de", "ccc", "bb", "f "]
    assert example_texts(Letters(), prompts, continuations, ["cut"], 0).empty
    with pytest.raises(ValueError, match="n_examples=3 must be <= 2"):
        example_texts(Letters(), prompts, continuations, ["cut"], 3)
    with pytest.raises(ValueError, match="labels='full'"):
        example_texts(Letters(), prompts, continuations, ["full"], 1)


def test_mean_compensated_head_equals_replacing_deleted_coordinates_by_their_mean(biased_head):
    from utils.pruning.heads import mean_compensated_head

    E, b, head, hidden = (biased_head[k] for k in ("E", "b", "head", "hidden"))
    mean = hidden.mean(dim=0)
    keep = keep_columns(rank_dimensions("random", E, seed=0), 0.5)
    compensated = mean_compensated_head(head, keep, mean)
    replaced = mean.expand_as(hidden).clone()
    replaced[:, keep] = hidden[:, keep]
    assert torch.allclose(compensated.logits(hidden[:, keep]), head.logits(replaced), atol=1e-4)


def test_torch_threads_restores_the_setting():
    from utils.pruning.generation import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        with torch_threads(0):
            pass


# ---------------------------------------------------------------------------------------------------------------
# The choice of criterion on training text, and the scorecard's checks with intervals over documents
# ---------------------------------------------------------------------------------------------------------------



def fake_pass(hidden: torch.Tensor, head: OutputHead, document, seed: int = 0) -> Activations:
    """An Activations pass over planted hidden states (n_windows, T, d), computed as compute_activations does."""
    n_windows, window_length, _ = hidden.shape
    generator = torch.Generator().manual_seed(seed)
    return Activations(
        token_ids=torch.randint(0, head.V, (n_windows, window_length), generator=generator),
        hidden=hidden,
        log_alpha=log_mean_softmax(hidden.reshape(-1, head.d), head),
        window_log_sums=window_log_sums(hidden, head).float(),
        document=torch.as_tensor(document, dtype=torch.int64),
        head=head,
        meta={"corpus": "planted", "split": "test"},
    )


@pytest.fixture(scope="module")
def passes(biased_head):
    """A training and a held-out pass of the biased head: 12 windows of 10 positions, documents of 2 windows."""
    generator = torch.Generator().manual_seed(5)
    d = biased_head["d"]
    head = biased_head["head"]
    train = fake_pass(0.8 * torch.randn(12, 10, d, generator=generator) + 0.3, head, np.arange(12) // 2, seed=1)
    held_out = fake_pass(0.8 * torch.randn(12, 10, d, generator=generator) + 0.3, head, np.arange(12) // 2, seed=2)
    return train, held_out


def test_window_sums_reproduce_the_sweep_and_brute_force(passes):
    _, acts = passes
    head = acts.head
    order = rank_dimensions("random", head.E, seed=3)
    keep = keep_columns(order, 0.3)
    sums = held_out_window_sums(acts, keep, n_positions=70, seed=3, chunk_size=29)
    sweep = sweep_activations(acts, {("random", 3): order}, [0.3], n_positions=70, seed=3, short_max=2, long_min=8,
                              chunk_size=33, progress=False)
    row = sweep[sweep.group == "all"].iloc[0]
    assert sums.count.sum() == row.n_positions == 70
    assert sums.js() == pytest.approx(row.js_alpha, rel=1e-5, abs=1e-9)
    assert sums.agreement() == pytest.approx(row.top1_agreement, abs=1e-12)
    # brute force: each window's summed softmax of both heads over its sampled positions
    index = subsample_positions(12, 10, 70, 3)
    windows = torch.unique(index // 10)
    assert len(sums.count) == len(windows)
    np.testing.assert_array_equal(sums.document, acts.document[windows].numpy())
    pruned = OutputHead(head.E[:, keep], head.b)
    for j, w in enumerate(windows.tolist()):
        rows = index[index // 10 == w]
        h = acts.hidden_flat[rows]
        full = torch.softmax(head.logits(h).double(), dim=-1).sum(0)
        cut = torch.softmax(pruned.logits(h[:, keep]).double(), dim=-1).sum(0)
        np.testing.assert_allclose(np.exp(sums.full_log[j]), full.numpy(), rtol=1e-4)
        np.testing.assert_allclose(np.exp(sums.pruned_log[j]), cut.numpy(), rtol=1e-4)
        assert sums.count[j] == len(rows)


def test_headline_checks_score_the_abs_A_order_fitted_on_training_text(passes):
    train, held_out = passes
    kwargs = {"test_fraction": 0.2, "seed": 0, "fraction": 0.25, "js_threshold": 0.01, "top1_threshold": 0.9,
              "n_positions": 80, "n_boot": 50, "boot_seed": 4, "chunk_size": 64}
    checks = headline_checks(train, held_out, **kwargs)
    fit = fit_encoding(train.head.E.numpy(), train.alpha.numpy(), test_fraction=0.2, seed=0)
    order = rank_dimensions("abs_A", train.head.E, fit.A)
    sweep = sweep_activations(held_out, {("abs_A", 0): order}, [0.25], n_positions=80, seed=0, short_max=2,
                              long_min=8, progress=False)
    row = sweep[sweep.group == "all"].iloc[0]
    assert [c.direction for c in checks] == ["below", "above"]
    assert checks[0].value == pytest.approx(row.js_alpha, rel=1e-5)
    assert checks[1].value == pytest.approx(row.top1_agreement, abs=1e-12)
    for check in checks:
        assert check.interval.unit == "document" and check.interval.n_boot == 50
        assert check.interval.low <= check.interval.high
    again = headline_checks(train, held_out, **kwargs)
    assert [(c.value, c.interval) for c in again] == [(c.value, c.interval) for c in checks]
    given = headline_checks(train, held_out, **kwargs, A=fit.A)  # the caller's fit: the same checks
    assert [(c.value, c.interval) for c in given] == [(c.value, c.interval) for c in checks]
    with pytest.raises(ValueError, match="fraction"):
        headline_checks(train, held_out, **{**kwargs, "fraction": 1.0})


def test_bootstrap_interval_covers_the_planted_truth():
    """Documents of three kinds in known proportions: the intervals cover the population's JS and agreement."""
    rng = np.random.default_rng(0)
    weights = np.array([0.5, 0.3, 0.2])
    p = rng.dirichlet(np.ones(6), size=3)  # full-head distribution of each kind of document
    q = 0.6 * p + 0.4 * rng.dirichlet(np.ones(6), size=3)  # pruned-head distribution
    agree_rate = np.array([0.95, 0.7, 0.85])
    truth_js = js_divergence(torch.from_numpy(weights @ p), torch.from_numpy(weights @ q))
    truth_agreement = float(weights @ agree_rate)
    n_docs, windows_per_doc, positions = 80, 2, 10
    covered = np.zeros(2)
    n_trials = 40
    for trial in range(n_trials):
        kind = np.repeat(rng.choice(3, size=n_docs, p=weights), windows_per_doc)
        sums = WindowSums(full_log=np.log(positions * p[kind]), pruned_log=np.log(positions * q[kind]),
                          agree=rng.binomial(positions, agree_rate[kind]).astype(float),
                          count=np.full(len(kind), float(positions)),
                          document=np.repeat(np.arange(n_docs), windows_per_doc))
        js_interval, agreement_interval, _, _ = bootstrap_window_sums(sums, n_boot=200, seed=trial)
        covered += [js_interval.low <= truth_js <= js_interval.high,
                    agreement_interval.low <= truth_agreement <= agreement_interval.high]
    assert np.all(covered / n_trials >= 0.85), covered / n_trials


def test_resampled_js_is_the_js_of_the_drawn_documents():
    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.ones(5), size=4), rng.dirichlet(np.ones(5), size=4)  # 4 windows, documents 0 0 1 2
    sums = WindowSums(np.log(3 * p), np.log(3 * q), np.array([3.0, 2, 1, 0]), np.full(4, 3.0), np.array([0, 0, 1, 2]))
    from utils.uncertainty import resample_counts

    counts = resample_counts(3, 5, seed=7)
    _, _, js_samples, agreement_samples = bootstrap_window_sums(sums, n_boot=5, seed=7)
    for row, js, agreement in zip(counts, js_samples, agreement_samples):
        w = row[[0, 0, 1, 2]]
        assert js == pytest.approx(js_divergence(torch.from_numpy(w @ p), torch.from_numpy(w @ q)), rel=1e-9)
        assert agreement == pytest.approx(w @ sums.agree / (w @ sums.count))


def test_criterion_is_chosen_on_training_text_only(biased_head):
    """Training text uses dimensions 0-9, held-out text 10-19: the choice follows the training text whatever the
    held-out text is, although the held-out text would favour the other order."""
    head = biased_head["head"]
    d = biased_head["d"]
    generator = torch.Generator().manual_seed(6)
    first, second = torch.arange(d) < d // 2, torch.arange(d) >= d // 2

    def planted(used: torch.Tensor, seed: int) -> Activations:
        hidden = 1.5 * torch.randn(8, 10, d, generator=generator)
        hidden[:, :, ~used] = 0.0
        return fake_pass(hidden, head, np.arange(8) // 2, seed=seed)

    train = planted(first, 1)
    orders = {("keeps_first", 0): torch.arange(d).flip(0), ("keeps_second", 0): torch.arange(d),
              ("random", 0): rank_dimensions("random", head.E, seed=0)}
    fractions = [0.0, 0.25, 0.5]
    chosen = [choose_criterion(train, orders, fractions, n_positions=40, seed=2, progress=False)[0]]
    for held_out in (planted(second, 2), planted(first, 3)):  # the held-out text changes; the choice must not
        chosen.append(choose_criterion(train, orders, fractions, n_positions=40, seed=2, progress=False)[0])
        del held_out
    assert chosen == ["keeps_first"] * 3
    # the test has teeth: on the second held-out text the other order would win
    assert choose_criterion(planted(second, 4), orders, fractions, n_positions=40, seed=2,
                            progress=False)[0] == "keeps_second"
    best, table = choose_criterion(train, orders, fractions, n_positions=40, seed=2, progress=False)
    assert "random" not in table.index and table.top1_agreement.loc["keeps_first"] == 1.0
    with pytest.raises(ValueError, match="non-random"):
        choose_criterion(train, {("random", 0): orders[("random", 0)]}, fractions, progress=False)


def test_selection_positions_avoid_the_excluded_ones():
    exclude = subsample_positions(6, 10, 25, seed=0)
    chosen = selection_positions(6, 10, 30, seed=1, exclude=exclude)
    assert len(chosen) == 30 and torch.all(chosen[1:] > chosen[:-1])
    assert not set(chosen.tolist()) & set(exclude.tolist())
    assert torch.equal(chosen, selection_positions(6, 10, 30, seed=1, exclude=exclude))
    assert len(selection_positions(6, 10, 100, seed=1, exclude=exclude)) == 35  # capped at what is left


def test_compare_criteria_text_follows_the_numbers():
    from utils.pruning.wording import compare_criteria_text

    assert "paper's own" in compare_criteria_text("abs_A", 0.9, 0.9)
    assert "more top tokens" in compare_criteria_text("fisher", 0.95, 0.9)
    assert "fewer top tokens" in compare_criteria_text("fisher", 0.85, 0.9)
    assert "as many" in compare_criteria_text("fisher", 0.9, 0.9)


# ---------------------------------------------------------------------------------------------------------------
# The basis control, the two-halves yardstick and MAUVE's saturation
# ---------------------------------------------------------------------------------------------------------------


def test_deleting_directions_of_the_identity_basis_is_coordinate_deletion(biased_head):
    head, hidden = biased_head["head"], biased_head["hidden"]
    d = biased_head["d"]
    order = torch.randperm(d, generator=torch.Generator().manual_seed(3))
    fractions = [0.1, 0.3, 0.5]
    conditions = [BasisCondition(MODEL_BASIS, 0, None, order), BasisCondition(RANDOM_BASIS, 7, np.eye(d), order)]
    groups = torch.arange(hidden.shape[0]) % 4
    table = basis_deletion(hidden, groups, head, conditions, fractions, chunk_size=128, progress=False).table()
    sweep = deletion_sweep(hidden, head, {"coordinates": order}, fractions, chunk_size=128, progress=False)
    for kind in (MODEL_BASIS, RANDOM_BASIS):
        rows = table[table.kind == kind].set_index("fraction")
        for fraction, expected in sweep.set_index("fraction").iterrows():
            for metric in ("js_alpha", "mean_kl", "top1_agreement"):
                assert rows.loc[fraction, metric] == pytest.approx(expected[metric], rel=1e-4, abs=1e-7)


def test_deleting_directions_projects_h_and_E_onto_the_kept_directions(biased_head):
    E, b, head, hidden = biased_head["E"], biased_head["b"], biased_head["head"], biased_head["hidden"]
    d = biased_head["d"]
    Q = random_orthogonal(d, 4)
    order = torch.randperm(d, generator=torch.Generator().manual_seed(1))
    groups = (torch.arange(hidden.shape[0]) // 50) % 3
    result = basis_deletion(hidden, groups, head, [BasisCondition(RANDOM_BASIS, 4, Q, order)], [0.4], chunk_size=64,
                            progress=False)
    kept = np.sort(order.numpy()[n_deleted(d, 0.4):])
    projector = torch.from_numpy(Q[:, kept] @ Q[:, kept].T).to(torch.float64)
    z_full = hidden.double() @ E.double().T + b.double()
    z_pruned = hidden.double() @ projector @ E.double().T + b.double()  # (h Q_K)(E Q_K)^T + b
    p, q = torch.softmax(z_full, dim=-1), torch.softmax(z_pruned, dim=-1)
    for g in range(3):
        member = groups == g
        assert np.allclose(result.full[g], p[member].sum(0).numpy(), atol=1e-5)
        assert np.allclose(result.pruned[0, 0, g], q[member].sum(0).numpy(), atol=1e-5)
        kl = (p[member] * (torch.log(p[member]) - torch.log(q[member]))).sum()
        assert result.kl[0, 0, g] == pytest.approx(float(kl), rel=1e-3)
        agree = (z_pruned[member].argmax(-1) == z_full[member].argmax(-1)).sum()
        assert result.agree[0, 0, g] == float(agree)
    assert result.count.tolist() == [float((groups == g).sum()) for g in range(3)]


def test_fit_is_equivariant_so_the_random_basis_order_is_abs_QtA(planted):
    E, A = planted["E"].numpy(), planted["fit"].A
    Q = random_orthogonal(planted["d"], 0)
    rotated = fit_encoding(E @ Q, mean_softmax(planted["hidden"], planted["head"]).numpy())
    assert np.allclose(rotated.A, Q.T @ A, atol=1e-6 * np.abs(A).max())
    conditions = basis_conditions(planted["E"], A, random_seeds=[0, 5])
    assert [c.name for c in conditions] == [MODEL_BASIS, f"{RANDOM_BASIS} 0", f"{RANDOM_BASIS} 5", PRINCIPAL_BASIS]
    assert conditions[0].order.tolist() == np.argsort(np.abs(A), kind="stable").tolist()
    assert conditions[1].order.tolist() == np.argsort(np.abs(Q.T @ A), kind="stable").tolist()
    principal = conditions[3]
    variances = np.var(E @ principal.basis, axis=0)
    assert np.all(np.diff(variances[principal.order.numpy()]) >= -1e-9)  # smallest variance deleted first


def planted_groups(n: int) -> torch.Tensor:
    return torch.arange(n) % 12


def test_basis_control_finds_a_planted_privileged_basis_and_not_a_rotated_one(planted):
    E, hidden, fit, d = planted["E"], planted["hidden"], planted["fit"], planted["d"]
    fraction = (d - N_RELEVANT) / d
    deletion = basis_deletion(hidden, planted_groups(len(hidden)), planted["head"],
                              basis_conditions(E, fit.A, random_seeds=[0, 1, 2]), [fraction], progress=False)
    checks, spectral = basis_checks(deletion, fraction, n_boot=100)
    assert checks[0].value > 0.2 and checks[1].value < 0.01
    assert basis_verdict(checks) == "privileged"
    assert spectral is not None and np.isfinite(spectral.value)
    # the same head in a random basis: its coordinates are now as good as any other basis's
    R = torch.from_numpy(random_orthogonal(d, 99)).to(torch.float32)
    rotated_E, rotated_hidden = E @ R, hidden @ R
    rotated_fit = fit_encoding(rotated_E.numpy(), mean_softmax(rotated_hidden, OutputHead(rotated_E)).numpy())
    rotated = basis_deletion(rotated_hidden, planted_groups(len(hidden)), OutputHead(rotated_E),
                             basis_conditions(rotated_E, rotated_fit.A, random_seeds=[0, 1, 2, 3]), [fraction],
                             progress=False)
    rotated_checks, _ = basis_checks(rotated, fraction, n_boot=100)
    assert basis_verdict(rotated_checks) != "privileged"
    assert rotated_checks[1].value > 0.5 * checks[1].value + 0.1


def test_basis_verdict_and_spectral_text_follow_the_checks():
    def check(low, high, threshold=0.0, direction="above"):
        return Check("x", (low + high) / 2, Interval(low, high), threshold, direction)

    assert basis_verdict([check(0.1, 0.2), check(0.1, 0.2, 0.5, "below")]) == "privileged"
    assert basis_verdict([check(-0.2, -0.1), check(0.6, 0.9, 0.5, "below")]) == "not privileged"
    assert basis_verdict([check(-0.1, 0.1), check(0.1, 0.2, 0.5, "below")]) == "inconclusive"
    assert basis_verdict([check(0.1, 0.2), check(0.6, 0.9, 0.5, "below")]) == "privileged by one measure only"
    assert spectral_comparison_text(check(0.1, 0.2)).startswith("deleting coordinates by |A| keeps more")
    assert spectral_comparison_text(check(-0.2, -0.1)).startswith("deleting the smallest-variance")
    assert "cannot be told apart" in spectral_comparison_text(check(-0.1, 0.1))


def test_basis_control_rejects_bad_input(biased_head):
    head, hidden, d = biased_head["head"], biased_head["hidden"], biased_head["d"]
    condition = BasisCondition(MODEL_BASIS, 0, None, torch.arange(d))
    groups = torch.zeros(len(hidden), dtype=torch.int64)
    with pytest.raises(ValueError, match="at least one of d=20"):
        basis_deletion(hidden, groups, head, [condition], [0.0, 0.3], progress=False)
    with pytest.raises(ValueError, match="basis of"):
        basis_deletion(hidden, groups, head, [BasisCondition(RANDOM_BASIS, 0, np.eye(3), torch.arange(d))], [0.3],
                       progress=False)
    deletion = basis_deletion(hidden, torch.arange(len(hidden)) % 5, head, [condition], [0.3], progress=False)
    with pytest.raises(ValueError, match="fraction=0.5 is not one of"):
        basis_checks(deletion, 0.5)
    with pytest.raises(ValueError, match="random basis"):
        basis_checks(deletion, 0.3)
    with pytest.raises(ValueError, match="A must have shape"):
        basis_conditions(biased_head["E"], np.zeros(3))


def test_halves_are_paired_disjoint_and_of_the_sweeps_size(passes):
    _, acts = passes
    n_windows, T = acts.token_ids.shape
    first, second = halves_positions(n_windows, T, 25, 0)
    assert len(first) == len(second) == 25
    assert torch.equal(first % T, second % T)  # same offsets: same context lengths
    assert int((first // T).max()) < n_windows // 2 <= int((second // T).min())
    assert torch.equal(first, subsample_positions(n_windows // 2, T, 25, 0))
    direct = js_divergence(mean_softmax(acts.hidden_flat[first], acts.head),
                           mean_softmax(acts.hidden_flat[second], acts.head))
    assert js_between_halves(acts, n_positions=25, seed=0) == pytest.approx(direct, rel=1e-9)
    # two halves holding the same text are at distance 0
    twin = fake_pass(torch.cat([acts.hidden[:6], acts.hidden[:6]]), acts.head, np.arange(12) // 2)
    assert js_between_halves(twin, n_positions=30) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="n_positions"):
        halves_positions(n_windows, T, n_windows // 2 * T + 1, 0)


def test_mauve_saturation_is_read_from_the_scores():
    assert mauve_buckets(32) == 3 and mauve_buckets(5) == 2 and mauve_buckets(128) == 13
    saturated = mauve_saturation_text({"full model": 0.99, "abs_A 30%": 1.0}, 32, 0.95)
    assert saturated.startswith("saturated") and "0.990 and 1.000" in saturated and "3 k-means" in saturated
    open_text = mauve_saturation_text({"full model": 0.99, "abs_A 30%": 0.7}, 32, 0.95)
    assert open_text.startswith("not saturated") and "0.700 (abs_A 30%)" in open_text


def test_generation_cache_key_is_pinned():
    """The key of the generation cache, for a fixed input: it must not change when the code moves (that would
    orphan every cached text); these values were computed with the module before it was split."""
    from types import SimpleNamespace

    from utils.pruning.generation import _generation_key

    loaded = SimpleNamespace(identity="tiny/model", revision="abc123")
    prompts = torch.arange(12).reshape(3, 4)
    settings = {"max_new_tokens": 6, "seed": 0, "top_p": 1.0, "temperature": 1.0, "batch_size": 4,
                "num_threads": None}
    assert _generation_key(loaded, None, prompts, settings) == "2a02838b149e9083a875"
    assert _generation_key(loaded, torch.tensor([0, 2, 5]), prompts, settings) == "90b49d95d1bfd01cad01"


def test_deletion_overlap_against_brute_force():
    from utils.pruning.criteria import deletion_overlap

    rng = np.random.default_rng(0)
    orders = {(c, 0): torch.as_tensor(rng.permutation(20)) for c in ("abs_A", "fisher", "h_spread")}
    orders[("same", 0)] = orders[("abs_A", 0)].clone()
    for n_cut in (0, 1, 7, 20):
        overlap = deletion_overlap(orders, ["abs_A", "fisher", "h_spread", "same"], n_cut)
        first = orders[("abs_A", 0)][:n_cut].tolist()
        for c in ("fisher", "h_spread"):
            shared = sum(1 for i in orders[(c, 0)][:n_cut].tolist() if i in first)
            assert overlap[c] == shared / max(n_cut, 1)
        assert overlap["abs_A"] == overlap["same"] == (1.0 if n_cut else 0.0)
    with pytest.raises(ValueError, match="reference='random'"):
        deletion_overlap(orders, ["fisher"], 3, reference="random")
    with pytest.raises(ValueError, match="n_cut"):
        deletion_overlap(orders, ["fisher"], -1)


def test_measure_gap_and_compensation_wording_follow_the_numbers():
    from utils.pruning.wording import compensation_text, measure_gap_text

    assert measure_gap_text(0.3, 0.1).startswith("the averaged distribution stays inside")
    assert measure_gap_text(0.1, 0.3).startswith("the per-position predictions stay inside")
    assert measure_gap_text(0.2, 0.2).startswith("both measures")
    assert "not from their means" in compensation_text(0.80, 0.84)
    assert "fixed shift" in compensation_text(0.80, 0.86)
    assert "fixed shift" in compensation_text(0.80, 0.81, margin=0.01)


def test_chapter_parameters_are_checked_with_the_parameter_named():
    import yaml
    from page_defaults import page_defaults

    from utils.pruning.parameters import PruningParameters

    namespace = page_defaults("03_pruning")  # the chapter's defaults
    parameters = PruningParameters.from_namespace(namespace)
    grids = parameters.grids
    assert list(grids) == ["fractions", "generation_fractions", "basis_fractions"]
    assert grids["fractions"] == sorted(set(namespace["fractions"]))
    # MAUVE is exploratory: no knob of the chapter makes it a threshold (the saturation knob only reads MAUVE itself)
    assert [k for k in namespace if "mauve" in k and "threshold" in k] == []
    tiny = yaml.safe_load((Path(__file__).parent / "params" / "03_pruning.yaml").read_text())
    PruningParameters.from_namespace({**namespace, **{k: v for k, v in tiny.items() if k != "model"}})
    for name, value, match in (("fractions", [0.1, 1.0], "fractions"), ("basis_fractions", [0.0, 0.5],
                               "basis_fractions"), ("criteria", ["fisher"], "criteria"), ("n_prompts", 0,
                               "n_prompts"), ("corpora", [], "corpora"), ("seed", -1, "seed"),
                               ("mauve_pooling", "max", "mauve_pooling")):
        with pytest.raises(ValueError, match=match):
            PruningParameters.from_namespace({**namespace, name: value})
    with pytest.raises(ValueError, match=r"lack \['fit_corpus'\]"):
        PruningParameters.from_namespace({k: v for k, v in namespace.items() if k != "fit_corpus"})


def test_chapter_parameters_are_checked_against_the_model():
    from types import SimpleNamespace

    from page_defaults import page_defaults

    from utils.pruning.parameters import PruningParameters
    from utils.tokenizers import gpt2_tokenizer

    loaded = SimpleNamespace(n_ctx=1024, tokenizer=gpt2_tokenizer())
    namespace = page_defaults("03_pruning")
    PruningParameters.from_namespace(namespace).check_model(loaded)
    for name, value, match in (("window_length", 2048, "window_length=2048 must be <= 1024"),
                               ("long_min", 20, "long_min=20 must be >= 33"),
                               ("n_positions", 8192, "n_positions=8192 must be <= 4096"),
                               ("n_tokens", 10**7, "n_tokens=10000000 asks for")):
        with pytest.raises(ValueError, match=match):
            PruningParameters.from_namespace({**namespace, name: value}).check_model(loaded)


def test_chapter_records_read_their_numbers_from_the_right_rows():
    import pandas as pd

    from utils.pruning import records

    class Pass:
        def __init__(self, text):
            self.text = text

        def describe(self):
            return self.text

    def recorded(builder, *args):  # a stand-in recorder: {name: (value, fmt, description)} of its calls
        calls = {}
        builder(lambda name, value, fmt=None, description="": calls.__setitem__(name, (value, fmt, description)),
                *args)
        return calls

    halves = pd.DataFrame({"largest_fraction": [0.25, 0.5]}, index=["abs_A", "random"])
    sweep = recorded(records.record_sweep, {"wiki": Pass("a"), "bible": Pass("b")}, 1024, [0.0, 0.1, 0.3], 4, 0.012,
                     halves, {"bible": 0.25})
    assert sweep["text_test_bible"][0] == "b" and sweep["test_texts"][0] == "a; b"
    assert sweep["n_settings"][0] == 12 and sweep["max_fraction"][:2] == (0.3, ".0%")
    assert sweep["abs_A_js_halves_fraction"][0] == "25%" and sweep["js_corpora"][0] == "0.250 (bible)"
    assert recorded(records.record_sweep, {}, 1, [0.5], 1, 0.0, halves, {})["js_corpora"][0] == "none measured"

    at_paper = pd.DataFrame({"js_alpha": [0.01, 0.02], "mean_kl": [0.1, 0.2], "top1_agreement": [0.9, 0.8]},
                            index=pd.Index([0.1, 0.3], name="fraction"))
    paper = recorded(records.record_paper_fraction, 0.3, 0.1, 0.3, at_paper, 0.05, 0.9)
    assert (paper["abs_A_js_at_paper"][0], paper["abs_A_kl_at_paper"][0], paper["abs_A_top1_at_paper"][0]) == (
        0.02, 0.2, 0.8)
    assert paper["paper_fraction"][:2] == (0.3, ".0%") and paper["abs_A_top1_fraction"][:2] == (0.3, ".0%")

    mauve = pd.Series({"full model": 0.97, "abs_A 30%": 0.9, "random_0 30%": 0.5, "abs_A 10%": 0.1})
    generation = recorded(records.record_generation, 8, 32, 5, mauve, 0.3, "random_0")
    assert (generation["mauve_floor"][0], generation["mauve_abs_A"][0], generation["mauve_best"][0]) == (0.97, 0.9, 0.5)
    assert generation["mauve_fraction"][:2] == (0.3, ".0%") and generation["prompt_documents"][0] == 5
