"""Intervals over texts and the three-valued verdict rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from utils import uncertainty as un


@pytest.mark.parametrize(
    ("interval", "threshold", "direction", "expected"),
    [
        ((0.82, 0.90), 0.8, "above", "reproduced"),
        ((0.78, 0.81), 0.8, "above", "inconclusive"),
        ((0.60, 0.79), 0.8, "above", "not reproduced"),
        ((0.80, 0.85), 0.8, "above", "reproduced"),  # the threshold itself counts for the claim
        ((0.001, 0.008), 0.01, "below", "reproduced"),
        ((0.005, 0.02), 0.01, "below", "inconclusive"),
        ((0.02, 0.05), 0.01, "below", "not reproduced"),
    ],
)
def test_decide_on_planted_intervals(interval, threshold, direction, expected):
    assert un.decide(un.Interval(*interval), threshold, direction) == expected


def test_combine_verdicts():
    assert un.combine(["reproduced", "reproduced"]) == "reproduced"
    assert un.combine(["not reproduced"]) == "not reproduced"
    assert un.combine(["reproduced", "not reproduced"]) == "partly reproduced"
    assert un.combine(["reproduced", "inconclusive"]) == "inconclusive"
    assert un.combine(["not reproduced", "inconclusive"]) == "not reproduced"
    assert un.combine(["reproduced", "not reproduced", "inconclusive"]) == "partly reproduced"


def test_combine_is_monotone():
    """Improving one check (not reproduced -> inconclusive -> reproduced) never worsens the claim's verdict."""
    import itertools

    order = {"not reproduced": 0, "partly reproduced": 1, "inconclusive": 2, "reproduced": 3}
    levels = ["not reproduced", "inconclusive", "reproduced"]
    for checks in itertools.product(levels, repeat=3):
        for i, verdict in enumerate(checks):
            if verdict != "reproduced":
                better = list(checks)
                better[i] = levels[levels.index(verdict) + 1]
                assert order[un.combine(better)] >= order[un.combine(list(checks))], (checks, better)
    with pytest.raises(ValueError, match="verdict='maybe'"):
        un.combine(["maybe"])
    with pytest.raises(ValueError, match="direction='sideways'"):
        un.decide(un.Interval(0, 1), 0.5, "sideways")


def test_check_describes_number_interval_threshold_and_verdict():
    check = un.Check("held-out R²", 0.792, un.Interval(0.781, 0.803), 0.8, "above")
    assert check.verdict == "inconclusive"
    assert check.describe() == "held-out R²: 0.792 [0.781, 0.803] against >= 0.800: inconclusive"
    assert un.Check("count", 0, un.exact(0), 1, "below", fmt=".0f").verdict == "reproduced"


class FakePass:
    """Windows of planted per-window probabilities, two documents of very different text."""

    def __init__(self, probabilities: np.ndarray, document: np.ndarray, window_length: int):
        self.window_log_sums = torch.from_numpy(np.log(probabilities * window_length)).float()
        self.document = torch.from_numpy(document)
        self.token_ids = torch.zeros((len(document), window_length), dtype=torch.int64)
        self.log_alpha = torch.from_numpy(np.log(probabilities.mean(axis=0)))


def test_resampled_alpha_is_the_mean_of_the_drawn_documents():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(5), size=6)  # 6 windows, V = 5
    document = np.array([0, 0, 1, 1, 2, 2])
    fake = FakePass(probabilities, document, window_length=4)
    groups = un.resampling_groups(fake.document)
    sums = un.group_log_sums(fake.window_log_sums, groups)
    counts = un.resample_counts(3, 4, seed=1)
    sizes = np.bincount(groups) * 4.0
    for row, log_alpha in zip(counts, un.resampled_log_means(sums, sizes, counts)):
        weights = np.repeat(row, 2)  # each document's two windows
        expected = (weights[:, None] * probabilities).sum(0) / weights.sum()
        np.testing.assert_allclose(np.exp(log_alpha), expected, rtol=1e-5)


def test_document_bootstrap_is_wider_than_window_bootstrap_when_documents_differ():
    """Windows of one document are alike, documents differ: resampling windows would understate the spread."""
    rng = np.random.default_rng(0)
    doc_means = rng.dirichlet(np.ones(3) * 0.5, size=8)
    document = np.repeat(np.arange(8), 10)
    probabilities = doc_means[document] * 0.98 + 0.02 / 3
    fake = FakePass(probabilities, document, window_length=8)

    def statistic(log_alpha):
        return float(np.exp(log_alpha[0]))

    by_document, _ = un.bootstrap_alpha(fake, statistic, n_boot=400, seed=0, unit="document")
    by_window, _ = un.bootstrap_alpha(fake, statistic, n_boot=400, seed=0, unit="window")
    assert by_document.high - by_document.low > 2 * (by_window.high - by_window.low)
    truth = float(probabilities[:, 0].mean())
    assert by_document.low <= truth <= by_document.high


def test_one_document_cannot_be_resampled():
    with pytest.raises(ValueError, match="fewer than two documents"):
        un.resampling_groups(np.zeros(5, dtype=np.int64))


def test_group_log_sums_is_logsumexp_within_groups():
    values = np.log(np.random.default_rng(1).random((5, 3)))
    groups = np.array([1, 0, 1, 0, 0])
    out = un.group_log_sums(values, groups)
    np.testing.assert_allclose(out[0], logsumexp(values[[1, 3, 4]], axis=0))
    np.testing.assert_allclose(out[1], logsumexp(values[[0, 2]], axis=0))


def test_an_interval_with_an_estimate_is_centred_on_it():
    samples = np.random.default_rng(0).normal(1.0, 0.1, size=2000) + 0.5  # resampling drifted the number by +0.5
    plain = un.percentile_interval(samples)
    centred = un.percentile_interval(samples, estimate=1.0)
    assert plain.low > 1.0  # the whole plain interval misses the measured number
    assert centred.low < 1.0 < centred.high
    assert centred.high - centred.low == pytest.approx(plain.high - plain.low)


def test_few_groups_widening_restores_the_coverage_a_plain_percentile_interval_lacks():
    """13 clusters, as the held-out split: the plain percentile bootstrap of a mean covers well below 95%; widened
    by few_groups_factor it comes close (brute force over 600 simulated texts)."""
    from utils.uncertainty import few_groups_factor, percentile_interval, resample_counts

    rng = np.random.default_rng(0)
    n_groups, n_boot, truth = 13, 400, 1.0
    plain = widened = 0
    repeats = 600
    for _ in range(repeats):
        values = truth + rng.standard_normal(n_groups)  # one number per document
        estimate = values.mean()
        counts = resample_counts(n_groups, n_boot, int(rng.integers(0, 2**31)))
        samples = counts @ values / n_groups
        a = percentile_interval(samples, estimate=estimate)
        b = percentile_interval(samples, estimate=estimate, n_groups=n_groups)
        plain += a.low <= truth <= a.high
        widened += b.low <= truth <= b.high
        assert b.low <= a.low and a.high <= b.high and b.n_groups == n_groups
    assert plain / repeats < 0.93  # too narrow with 13 documents
    assert abs(widened / repeats - 0.95) < 0.025
    assert few_groups_factor(13) > 1.15 and few_groups_factor(3000) < 1.001
    with pytest.raises(ValueError, match="n_groups needs estimate"):
        percentile_interval(samples, n_groups=13)
    with pytest.raises(ValueError, match="n_groups"):
        few_groups_factor(1)
