"""Tests of utils.pruning: criteria recover planted structure, the cached-head shortcut equals a real pruned model,
the streamed sweep equals utils.compare, bad input fails clearly."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from utils.activations import mean_softmax  # noqa: E402
from utils.compare import compare_heads  # noqa: E402
from utils.encoding import fit_encoding  # noqa: E402
from utils.head import OutputHead  # noqa: E402
from utils.pruning import (  # noqa: E402
    CRITERIA,
    dimension_scores,
    fisher_saliency,
    keep_columns,
    n_deleted,
    rank_dimensions,
)

N_RELEVANT = 10


@pytest.fixture(scope="module")
def planted():
    """A head whose hidden states use only the first N_RELEVANT of d dimensions (the rest are exactly zero)."""
    generator = torch.Generator().manual_seed(0)
    V, d, N = 2000, 16, 3000  # noqa: N806
    E = torch.randn(V, d, generator=generator)  # noqa: N806
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
    E, A = planted["E"].clone(), planted["fit"].A.copy()  # noqa: N806
    scores = dimension_scores("abs_A_spread", E, A)
    E[:, 3] *= 100.0
    A[3] /= 100.0
    rescaled = dimension_scores("abs_A_spread", E, A)
    assert torch.allclose(scores, rescaled, rtol=1e-5)
    assert not torch.allclose(dimension_scores("abs_A", planted["E"], planted["fit"].A), dimension_scores("abs_A", E, A))


def test_fisher_saliency_matches_brute_force_kl_for_small_deletions():
    # for a small logit change the mean KL from deleting dimension i alone is 0.5 * saliency_i (second order)
    generator = torch.Generator().manual_seed(1)
    V, d, N = 500, 8, 400  # noqa: N806
    E = torch.randn(V, d, generator=generator)  # noqa: N806
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
