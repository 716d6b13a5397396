"""Null edits: the same predicted shift as the paper's edit, with no reason to work, and the comparison with them.

Ω over k random dimensions (:func:`random_dims_direction`) and a random direction of the paper's edit's norm
(:func:`random_direction_with_norm`) both satisfy ``A · u = 1``; :func:`null_comparison` measures them beside the
paper's edit, :func:`null_verdict` decides (three-valued) whether the paper's edit beats them, and
:func:`null_summary` words the outcome.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..encoding import dimensions_by_weight
from ..validation import check_float, check_int
from .edits import METHOD_LABELS, Edit, min_norm_direction
from .measure import BaseStatistics, steering_sweep


def random_dims_direction(A: np.ndarray, k: int, seed: int) -> torch.Tensor:
    """Ω A^{-1} over k *randomly chosen* dimensions: (d,) float64, ``1 / (k A_i)`` on them, 0 elsewhere.

    ``A · u = 1`` exactly as for :func:`edits.mask_direction`, so the encoding predicts the same shift. The k dimensions
    are drawn (seeded) among those outside the top-k of ``|A|`` when there are at least k of them; otherwise all of
    those are taken and the rest drawn from the top k. Dimensions with ``A_i = 0`` are never drawn.

    Raises:
        ValueError: k is outside 1..d, or fewer than k coefficients of A are finite and non-zero.
    """
    A = np.asarray(A, dtype=np.float64)
    k = check_int("k", k, minimum=1, maximum=A.shape[0])
    check_int("seed", seed, minimum=0)
    usable = np.isfinite(A) & (A != 0)
    if usable.sum() < k:
        raise ValueError(f"k={k}: only {int(usable.sum())} coefficients of A are finite and non-zero")
    top = dimensions_by_weight(A)[:k]
    outside = np.setdiff1d(np.flatnonzero(usable), top)
    inside = np.intersect1d(np.flatnonzero(usable), top)
    rng = np.random.default_rng(seed)
    if len(outside) >= k:
        chosen = rng.choice(outside, size=k, replace=False)
    else:
        chosen = np.concatenate([outside, rng.choice(inside, size=k - len(outside), replace=False)])
    direction = np.zeros_like(A)
    direction[chosen] = 1.0 / (k * A[chosen])
    return torch.from_numpy(direction)


def random_direction_with_norm(A: np.ndarray, norm: float, seed: int) -> torch.Tensor:
    """A random direction u with ``A · u = 1`` (the same predicted shift) and ``||u|| = norm``: (d,) float64.

    ``u = A / ||A||² + c w`` with ``w`` a seeded Gaussian direction orthogonal to A and ``c`` such that
    ``||u|| = norm``: every edit with ``A · u = 1`` has this form, and this one is drawn uniformly among those of
    the given norm.

    Raises:
        ValueError: ``norm`` is below ``1 / ||A||`` (the minimal-norm edit's size: no such edit is smaller).
    """
    A = np.asarray(A, dtype=np.float64)
    check_int("seed", seed, minimum=0)
    along = min_norm_direction(A).numpy()
    smallest = float(np.linalg.norm(along))
    norm = check_float("norm", norm, low=smallest * (1 - 1e-9))
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(A.shape[0])
    w -= (w @ A) / (A @ A) * A
    if A.shape[0] == 1 or not np.linalg.norm(w) > 0:
        return torch.from_numpy(along)
    w /= np.linalg.norm(w)
    return torch.from_numpy(along + math.sqrt(max(norm**2 - smallest**2, 0.0)) * w)


def null_edits(A: np.ndarray, reference: Edit, seeds: Sequence[int]) -> list[Edit]:
    """The null baselines of a mask edit, one pair per seed: Ω over k random dimensions, and a random direction.

    Both predict exactly the shift of ``reference`` (``A · u = 1``); the random direction also has its norm. So
    an edit that steers no better than they do owes nothing to *which* dimensions or direction it uses.

    Returns:
        ``[random dims seed s0, ..., random direction seed s0, ...]`` (methods of :data:`edits.NULL_METHODS`).
    """
    if reference.method != "mask":
        raise ValueError(f"reference.method={reference.method!r}: the nulls are built for a 'mask' edit")
    seeds = [check_int("seeds", s, minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed")
    dims = [Edit("random_dims", reference.k, random_dims_direction(A, reference.k, s), s) for s in seeds]
    directions = [Edit("random_direction", None, random_direction_with_norm(A, reference.norm(), s), s)
                  for s in seeds]
    return dims + directions


BEATS, NO_BETTER, UNDECIDED = "beats the nulls", "no better than the nulls", "not clearly better than the nulls"
PAPER_EDIT = "paper's edit"


def null_comparison(
    texts: dict[str, BaseStatistics], tokens, edit: Edit, nulls: Sequence[Edit], r: float
) -> pd.DataFrame:
    """Achieved steering of ``edit`` and of each null edit at ``r`` and ``1/r``, on each measured text.

    Args:
        texts: {name: base statistics of the text's positions}.
        tokens: (m,) steered token ids (each steered alone).
        nulls: e.g. from :func:`null_edits`.

    Returns:
        one row per (text, edit, ratio): ``text``, ``family`` (:data:`PAPER_EDIT` or the null's
        :data:`edits.METHOD_LABELS` entry), ``seed``, ``r``, ``achieved`` (median over tokens of ``alpha'_w / alpha_w``)
        and ``error`` (median over tokens of ``|log(achieved / r)|``).
    """
    r = check_float("r", r, low=1.0, low_inclusive=False)
    edits = [edit, *nulls]
    rows = []
    for text, base in texts.items():
        sweep = steering_sweep(base, tokens, [r, 1.0 / r], edits, progress=False)
        for e, one in enumerate(edits):
            for i, target in enumerate(sweep.r_values):
                rows.append({"text": text, "family": PAPER_EDIT if e == 0 else METHOD_LABELS[one.method],
                             "seed": one.seed, "r": float(target),
                             "achieved": float(np.exp(np.median(sweep.log_ratio[e, i]))),
                             "error": float(np.median(np.abs(sweep.log_error[e, i])))})
    return pd.DataFrame(rows)


def null_verdict(low: float, high: float, null_errors) -> str:
    """Does an edit whose error has the interval [low, high] steer better than null edits with ``null_errors``?

    Lower error is better. :data:`BEATS` when the whole interval is below every null's error; :data:`NO_BETTER`
    when the whole interval is at or above the nulls' median (a typical null does as well); otherwise
    :data:`UNDECIDED` (the interval reaches into the nulls' spread).
    """
    null_errors = np.asarray(null_errors, dtype=np.float64)
    if null_errors.ndim != 1 or null_errors.size == 0 or not np.all(np.isfinite(null_errors)):
        raise ValueError(f"null_errors must be a non-empty 1-d array of finite errors; got {null_errors!r}")
    low, high = check_float("low", low), check_float("high", high)
    if low > high:
        raise ValueError(f"low={low} must not exceed high={high}")
    if high < null_errors.min():
        return BEATS
    if low >= np.median(null_errors):
        return NO_BETTER
    return UNDECIDED


def null_verdicts(comparison: pd.DataFrame, intervals: dict[tuple[str, float], tuple[float, float]]) -> pd.DataFrame:
    """The paper's edit against each null family in each setting (text, r), by :func:`null_verdict`.

    Args:
        comparison: from :func:`null_comparison`.
        intervals: {(text, r): (low, high)} interval over texts of the paper's edit's error in that setting
            (e.g. the scorecard's checks); every setting of ``comparison`` needs one.

    Returns:
        one row per (text, r, null family): the paper's ``error`` and its ``low``/``high``, the nulls' ``null_mean``,
        ``null_min``, ``null_max`` over seeds, and the ``verdict``.
    """
    rows = []
    for (text, r), group in comparison.groupby(["text", "r"], sort=False):
        key = next((k for k in intervals if k[0] == text and np.isclose(k[1], r)), None)
        if key is None:
            raise ValueError(f"intervals has no entry for text={text!r}, r={r:g}; it has {list(intervals)}")
        low, high = intervals[key]
        paper = float(group.loc[group.family == PAPER_EDIT, "error"].iloc[0])
        for family, nulls in group[group.family != PAPER_EDIT].groupby("family", sort=False):
            errors = nulls["error"].to_numpy()
            rows.append({"text": text, "r": float(r), "null": family, "error": paper, "low": low, "high": high,
                         "null_mean": float(errors.mean()), "null_min": float(errors.min()),
                         "null_max": float(errors.max()), "verdict": null_verdict(low, high, errors)})
    return pd.DataFrame(rows)


def null_summary(verdicts: pd.DataFrame) -> str:
    """One sentence per null family: in how many settings the paper's edit beats it, and how the rest end.

    ``verdicts`` from :func:`null_verdicts`; e.g. "against Ω over random dimensions it beats the nulls in 3 of 4
    settings and is not clearly better than the nulls in 1".
    """
    if verdicts.empty:
        raise ValueError("verdicts is empty")
    parts = []
    for family, group in verdicts.groupby("null", sort=False):
        counts = group["verdict"].value_counts()
        n = len(group)
        pieces = [f"{'is ' if v != BEATS else ''}{v} in {int(counts[v])}" for v in (BEATS, UNDECIDED, NO_BETTER)
                  if v in counts]
        pieces[0] += f" of {n} settings"
        parts.append(f"against {family} it " + (" and ".join(pieces) if len(pieces) < 3
                                                else f"{pieces[0]}, {pieces[1]} and {pieces[2]}"))
    return "; ".join(parts)
