"""Uncertainty over texts, and the one rule that turns a number, its interval and a threshold into a verdict.

A pass keeps each window's summed softmax (``Activations.window_log_sums``), so a bootstrap over texts is a weighted
sum of those rows, never a new model pass: resample the documents of the split (each with all its windows) with
replacement, re-average alpha, and recompute whatever the number depends on (a refit of the encoding, a steering
ratio, a divergence). The interval is the percentile interval of the recomputed numbers, centred on the measured
number (:func:`percentile_interval` with ``estimate``): a resampled text, with documents drawn twice, is noisier
than the text itself, and a number that noise moves one way (an R² falls, a divergence grows) would otherwise have
its whole interval on one side of the measured value. Shifting the samples by the measured value minus their mean
removes that one-sided drift, so the interval says where the number would fall for another sample of text of the
same size (the question behind a verdict), not for an infinitely long text.

"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from .validation import check_choice, check_float, check_int, check_positive_int

UNITS = ("document", "window")
REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED, PARTLY = "reproduced", "inconclusive", "not reproduced", "partly reproduced"
DIRECTIONS = {"above": ">=", "below": "<="}


def resampling_groups(document: torch.Tensor | np.ndarray, unit: str = "document") -> np.ndarray:
    """(n_windows,) int64 group of each window: its document (``unit="document"``) or itself (``"window"``).

    Raises:
        ValueError: ``unit`` is not one of :data:`UNITS`, or fewer than two groups are covered.
    """
    check_choice("unit", unit, UNITS)
    document = np.asarray(document, dtype=np.int64)
    groups = np.unique(document, return_inverse=True)[1] if unit == "document" else np.arange(len(document))
    if groups.max(initial=-1) + 1 < 2:
        raise ValueError(f"unit={unit!r}: the pass covers fewer than two {unit}s, so texts cannot be resampled")
    return groups


def n_resampled(document: torch.Tensor | np.ndarray, unit: str = "document") -> int:
    """How many groups a bootstrap over ``unit`` draws from, the documents (or windows) of a pass's ``document``
    (n_windows,): the ``n_groups`` of :func:`percentile_interval`."""
    return int(resampling_groups(document, unit).max()) + 1


def group_log_sums(window_sums: torch.Tensor | np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sum rows of log-domain window sums (n_windows, m) within each group: -> (n_groups, m) float64 (logs)."""
    values = torch.as_tensor(np.asarray(window_sums), dtype=torch.float64)
    groups = np.asarray(groups)
    out = torch.empty((int(groups.max()) + 1, values.shape[1]), dtype=torch.float64)
    for g in range(out.shape[0]):
        out[g] = torch.logsumexp(values[torch.from_numpy(np.flatnonzero(groups == g))], dim=0)
    return out.numpy()


def resample_counts(n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_groups) how often each group is drawn in each bootstrap sample (n_groups draws with replacement)."""
    n_boot = check_positive_int("n_boot", n_boot)
    check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    return np.stack([np.bincount(row, minlength=n_groups) for row in draws]).astype(np.float64)


def resampled_log_means(
    group_sums_log: np.ndarray, group_sizes: np.ndarray, counts: np.ndarray, batch: int = 32
) -> Iterator[np.ndarray]:
    """For each bootstrap sample, log of the mean over its positions: yields (m,) float64 arrays.

    Args:
        group_sums_log: (n_groups, m) log of each group's summed values (e.g. probabilities of m tokens).
        group_sizes: (n_groups,) positions per group.
        counts: (n_boot, n_groups) from :func:`resample_counts`.
    """
    shift = group_sums_log.max(axis=0)  # (m,)
    scaled = np.exp(group_sums_log - shift)  # (n_groups, m), every entry in (0, 1]
    for start in range(0, len(counts), batch):
        block = counts[start : start + batch]
        totals = block @ scaled  # (b, m)
        if not np.all(totals > 0):
            raise FloatingPointError("a resampled mean underflowed float64; the values span too many orders")
        log_means = np.log(totals) + shift - np.log(block @ group_sizes)[:, None]
        yield from log_means


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval of a number over resampled texts.

    Attributes:
        low, high: the interval's ends.
        level: its coverage (0.95 for a 95% interval).
        n_boot: bootstrap samples behind it.
        unit: what was resampled ("document", "window", or "none" for a number that does not depend on text).
        n_groups: how many units the resamples drew from, where the interval was widened for them
            (:func:`few_groups_factor`); None where it was not.
    """

    low: float
    high: float
    level: float = 0.95
    n_boot: int = 0
    unit: str = "document"
    n_groups: int | None = None

    def text(self, fmt: str = ".3f") -> str:
        if self.unit == "none":
            return "exact (does not depend on the text)"
        return f"[{self.low:{fmt}}, {self.high:{fmt}}]"

    def label(self, fmt: str = ".3f") -> str:
        """``[low, high] (95%, 200 resamples of documents)``, or ``... resamples of 13 documents, widened for their
        number)`` where :func:`few_groups_factor` widened it."""
        if self.unit == "none":
            return self.text(fmt)
        if self.n_groups is not None:
            return (f"{self.text(fmt)} ({self.level:.0%}, {self.n_boot} resamples of {self.n_groups} {self.unit}s, "
                    f"widened for their number)")
        return f"{self.text(fmt)} ({self.level:.0%}, {self.n_boot} resamples of {self.unit}s)"


def exact(value: float) -> Interval:
    """The degenerate interval of a number that does not depend on the text (for example a property of the head)."""
    return Interval(float(value), float(value), 1.0, 0, "none")


def few_groups_factor(n_groups: int, level: float = 0.95) -> float:
    """How much wider a bootstrap over ``n_groups`` resampled groups must be to be honest: ``sqrt(G / (G - 1))``
    (the bootstrap's variance over G groups is (G - 1) / G of the sampling variance it estimates) times
    ``t_{G-1} / z`` at ``level`` (with G groups the spread itself is an estimate on G - 1 degrees of freedom, as in
    cluster-robust intervals with few clusters). 1.16 for 13 groups, 1.02 for 100, 1.0006 for 3,000."""
    n_groups = check_int("n_groups", n_groups, minimum=2)
    check_float("level", level, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    quantile = 0.5 + level / 2.0
    return math.sqrt(n_groups / (n_groups - 1)) * float(stats.t.ppf(quantile, n_groups - 1) / stats.norm.ppf(quantile))


def percentile_interval(
    samples, *, estimate: float | None = None, level: float = 0.95, unit: str = "document",
    n_groups: int | None = None,
) -> Interval:
    """The percentile interval of bootstrap ``samples`` (n_boot,); non-finite samples are an error, not dropped.

    With ``estimate`` (the number measured on the whole sample), the samples are first shifted by ``estimate`` minus
    their mean, so that the interval is centred on the measured number (see the module's docstring): the scorecard's
    intervals all pass it. With ``n_groups`` (how many documents or windows were resampled; needs ``estimate``), the
    samples' deviations from the estimate are scaled by :func:`few_groups_factor`, so that an interval over a handful of
    documents is as wide as those few documents warrant (a plain percentile interval over 13 documents covers less
    than its level; ``tests/test_uncertainty.py`` measures both).
    """
    check_float("level", level, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1 or len(samples) < 2:
        raise ValueError(f"samples must be 1-d with at least 2 values; got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"{int(np.sum(~np.isfinite(samples)))} bootstrap samples are not finite")
    if estimate is not None:
        samples = samples + (check_float("estimate", estimate) - samples.mean())
    if n_groups is not None:
        if estimate is None:
            raise ValueError("n_groups needs estimate: the widening scales the samples' deviations from it")
        samples = estimate + few_groups_factor(n_groups, level) * (samples - estimate)
    tail = (1.0 - level) / 2.0
    return Interval(float(np.quantile(samples, tail)), float(np.quantile(samples, 1.0 - tail)), level, len(samples),
                    unit, n_groups)


def resampled_log_alphas(
    activations, *, n_boot: int = 200, seed: int = 0, unit: str = "document", batch: int = 32
) -> Iterator[np.ndarray]:
    """Bootstrap samples of a pass's ``log alpha`` over texts, in blocks: yields (b, V) float64 arrays.

    Each sample draws the pass's documents (or windows) with replacement and re-averages ``log alpha`` from the
    kept per-window sums (:attr:`utils.activations.Activations.window_log_sums`).
    """
    groups = resampling_groups(activations.document, unit)
    sums = group_log_sums(activations.window_log_sums, groups)
    sizes = np.bincount(groups).astype(np.float64) * activations.token_ids.shape[1]
    counts = resample_counts(len(sizes), n_boot, seed)
    block: list[np.ndarray] = []
    for log_alpha in resampled_log_means(sums, sizes, counts, batch=batch):
        block.append(log_alpha)
        if len(block) == batch:
            yield np.stack(block)
            block = []
    if block:
        yield np.stack(block)


def bootstrap_alpha(
    activations,
    statistic: Callable[[np.ndarray], float],
    *,
    n_boot: int = 200,
    seed: int = 0,
    unit: str = "document",
    level: float = 0.95,
) -> tuple[Interval, np.ndarray]:
    """Interval over texts of a number computed from a pass's alpha, centred on its value for the whole pass.

    Each bootstrap sample draws the pass's documents (or windows) with replacement, re-averages ``log alpha``
    from the kept per-window sums, and calls ``statistic(log_alpha (V,) float64)``.

    Returns:
        the interval and the (n_boot,) samples.
    """
    groups = resampling_groups(activations.document, unit)
    sums = group_log_sums(activations.window_log_sums, groups)
    sizes = np.bincount(groups).astype(np.float64) * activations.token_ids.shape[1]
    counts = resample_counts(len(sizes), n_boot, seed)
    samples = np.array([statistic(log_alpha) for log_alpha in resampled_log_means(sums, sizes, counts)])
    estimate = statistic(activations.log_alpha.numpy())
    return percentile_interval(samples, estimate=estimate, level=level, unit=unit, n_groups=len(sizes)), samples


def decide(interval: Interval, threshold: float, direction: str) -> str:
    """The verdict of one check: the claim needs the number ``direction`` ("above" or "below") ``threshold``.

    "reproduced" when the whole interval is on the claim's side (the threshold itself counts for the claim),
    "not reproduced" when the whole interval is on the other side, "inconclusive" when the interval contains the
    threshold.
    """
    check_choice("direction", direction, tuple(DIRECTIONS))
    threshold = check_float("threshold", threshold)
    low, high = (interval.low, interval.high) if direction == "above" else (-interval.high, -interval.low)
    bound = threshold if direction == "above" else -threshold
    if low >= bound:
        return REPRODUCED
    if high < bound:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    """A claim's verdict from the verdicts of its checks (every check is a part the claim needs).

    - all checks agree: that verdict;
    - some reproduced and some not reproduced (open checks or not): "partly reproduced";
    - some reproduced, the rest inconclusive: "inconclusive" (the claim may still hold in full);
    - some not reproduced, the rest inconclusive: "not reproduced" (no part is reproduced, and a part it needs is
      not; the open parts can at most make it partly reproduced).

    The rule is monotone: a check that moves from not reproduced to inconclusive, or from inconclusive to
    reproduced, never makes the claim's verdict worse.
    """
    if not verdicts:
        raise ValueError("verdicts must hold at least one check's verdict")
    for verdict in verdicts:
        check_choice("verdict", verdict, (REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED))
    distinct = set(verdicts)
    if len(distinct) == 1:
        return verdicts[0]
    if {REPRODUCED, NOT_REPRODUCED} <= distinct:
        return PARTLY
    return INCONCLUSIVE if REPRODUCED in distinct else NOT_REPRODUCED


@dataclass(frozen=True)
class Check:
    """One check of a claim: a measured number, its interval over texts, and the threshold it must clear.

    Attributes:
        name: what is checked, in words (without the numbers; :meth:`describe` adds them).
        value: the measured number.
        interval: its interval (over texts, or :func:`exact`).
        threshold: the claim's threshold.
        direction: "above" or "below": where the claim needs the number.
        fmt: format of the numbers in the description.
    """

    name: str
    value: float
    interval: Interval
    threshold: float
    direction: str
    fmt: str = ".3f"

    @property
    def verdict(self) -> str:
        return decide(self.interval, self.threshold, self.direction)

    def describe(self) -> str:
        """``name: 0.792 [0.78, 0.80] against >= 0.8: inconclusive``."""
        value = "nan" if math.isnan(self.value) else f"{self.value:{self.fmt}}"
        return (f"{self.name}: {value} {self.interval.text(self.fmt)} against {DIRECTIONS[self.direction]} "
                f"{self.threshold:{self.fmt}}: {self.verdict}")
