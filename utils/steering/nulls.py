"""Null edits: the same predicted shift as the paper's edit, with no reason to work, and the comparison with them.

Every null satisfies ``A · u = 1``. Two have the paper's edit's norm, so that a difference in error is owed to
*where* the edit points and not to how large it is: k random dimensions drawn from all usable d with weights of
that norm (:func:`random_dims_with_norm`), and a random direction of that norm (:func:`random_direction_with_norm`).
A third, Ω over k random dimensions outside the top k of ``|A|`` (:func:`omega_random_dims_direction`), does not
match the norm: ``1 / (k A_i)`` is larger where ``|A_i|`` is small, so its edit is larger by construction and its
error measures the edit's size as much as its dimensions; it is kept to show that confound.
:func:`null_comparison` measures them beside the paper's edit, :func:`null_verdict` decides (three-valued) whether
the paper's edit beats them, :func:`null_summary` and :func:`null_counts` word the outcome, and
:func:`edit_errors` measures reference edits (the minimal-norm edit) in the same settings.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..encoding.fit import dimensions_by_weight
from ..validation import check_float, check_int, check_positive_int
from .edits import METHOD_LABELS, Edit, min_norm_direction
from .measure import BaseStatistics, steering_sweep

#: the null families with the reference edit's norm: the comparison that is not confounded with the edit's size
EQUAL_NORM = (METHOD_LABELS["random_dims"], METHOD_LABELS["random_direction"])


def omega_random_dims_direction(A: np.ndarray, k: int, seed: int) -> torch.Tensor:
    """Ω A^{-1} over k *randomly chosen* dimensions: (d,) float64, ``1 / (k A_i)`` on them, 0 elsewhere.

    ``A · u = 1`` exactly as for :func:`edits.mask_direction`, so the encoding predicts the same shift; its norm is
    not matched (larger than the mask's wherever the drawn ``|A_i|`` are smaller). The k dimensions are drawn
    (seeded) among those outside the top-k of ``|A|`` when there are at least k of them; otherwise all of those are
    taken and the rest drawn from the top k. Dimensions with ``A_i = 0`` are never drawn.

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


def _with_norm(A: np.ndarray, norm: float, rng: np.random.Generator) -> np.ndarray:
    """``A / ||A||² + c w`` with ``w`` a Gaussian direction (from ``rng``) orthogonal to A and ``c >= 0`` such that
    the result has norm ``norm`` (>= ``1 / ||A||``): (len(A),) float64, ``A · u = 1``."""
    along = A / (A @ A)
    w = rng.standard_normal(A.shape[0])
    w -= (w @ A) / (A @ A) * A
    if A.shape[0] == 1 or not np.linalg.norm(w) > 0:
        return along
    w /= np.linalg.norm(w)
    return along + math.sqrt(max(norm**2 - float(along @ along), 0.0)) * w


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
    smallest = float(min_norm_direction(A).norm())
    norm = check_float("norm", norm, low=smallest * (1 - 1e-9))
    return torch.from_numpy(_with_norm(A, norm, np.random.default_rng(seed)))


def _feasible(A_chosen: np.ndarray, norm: float) -> bool:
    """Whether an edit on these dimensions (``A_chosen``: their coefficients) can have ``A · u = 1`` and norm
    ``norm``: its smallest norm ``1 / ||A_chosen||`` must not exceed ``norm`` (and equal it for one dimension,
    whose edit is fixed)."""
    smallest = 1.0 / float(np.linalg.norm(A_chosen))
    if len(A_chosen) == 1:
        return math.isclose(smallest, norm, rel_tol=1e-9)
    return smallest <= norm * (1 + 1e-9)


class NoEqualNormSetError(ValueError):
    """No drawn set of k dimensions can carry ``A · u = 1`` at the asked norm (:func:`random_dims_with_norm`)."""


def random_dims_with_norm(A: np.ndarray, k: int, norm: float, seed: int, max_draws: int = 100_000) -> torch.Tensor:
    """An edit on k random dimensions with ``A · u = 1`` and ``||u|| = norm``: (d,) float64, zero off those k.

    The k dimensions are drawn (seeded) uniformly from *all* dimensions with a finite, non-zero ``A_i``; on them the
    weights are :func:`random_direction_with_norm` of ``A`` restricted to them. Such an edit exists only when the
    drawn dimensions' smallest edit, ``1 / ||A_S||``, is at most ``norm`` (for k = 1, equal to it): a draw that
    cannot is rejected and the dimensions are drawn again from the same seeded generator, so the null is drawn
    uniformly among the k-sets that can carry the shift at that norm. :func:`feasible_share` says how many k-sets
    can; report it beside the null.

    Raises:
        ValueError: k is outside 1..d or fewer than k coefficients are usable; :class:`NoEqualNormSetError` (a
            ValueError) when none of ``max_draws`` draws can carry the shift at ``norm``.
    """
    A = np.asarray(A, dtype=np.float64)
    k = check_int("k", k, minimum=1, maximum=A.shape[0])
    check_int("seed", seed, minimum=0)
    norm = check_float("norm", norm, low=0.0, low_inclusive=False)
    usable = np.flatnonzero(np.isfinite(A) & (A != 0))
    if len(usable) < k:
        raise ValueError(f"k={k}: only {len(usable)} coefficients of A are finite and non-zero")
    rng = np.random.default_rng(seed)
    for _ in range(check_positive_int("max_draws", max_draws)):
        chosen = rng.choice(usable, size=k, replace=False)
        if _feasible(A[chosen], norm):
            direction = np.zeros_like(A)
            direction[chosen] = _with_norm(A[chosen], norm, rng)
            return torch.from_numpy(direction)
    raise NoEqualNormSetError(f"k={k}, norm={norm:.4g}: none of max_draws={max_draws} random sets of k dimensions "
                              f"can carry A·u = 1 with that norm (a set's smallest such edit is 1/||A_S||); no "
                              f"equal-norm null was found on k random dimensions")


def feasible_share(A: np.ndarray, k: int, norm: float, n_draws: int = 10_000, seed: int = 0) -> float:
    """Share of ``n_draws`` uniformly drawn sets of k usable dimensions (finite, non-zero ``A_i``) on which an edit
    with ``A · u = 1`` and norm ``norm`` exists (:func:`random_dims_with_norm` draws among those)."""
    A = np.asarray(A, dtype=np.float64)
    k = check_int("k", k, minimum=1, maximum=A.shape[0])
    usable = np.flatnonzero(np.isfinite(A) & (A != 0))
    if len(usable) < k:
        raise ValueError(f"k={k}: only {len(usable)} coefficients of A are finite and non-zero")
    rng = np.random.default_rng(seed)
    draws = check_positive_int("n_draws", n_draws)
    return sum(_feasible(A[rng.choice(usable, size=k, replace=False)], norm) for _ in range(draws)) / draws


def null_edits(A: np.ndarray, reference: Edit, seeds: Sequence[int], size_confounded: bool = True,
               max_draws: int = 100_000) -> list[Edit]:
    """The null baselines of a mask edit, one of each family per seed.

    All predict exactly the shift of ``reference`` (``A · u = 1``). Random dimensions (from all d) and a random
    direction have its norm, so an edit that steers no better than they do owes nothing to *which* dimensions or
    direction it uses; with ``size_confounded``, Ω over random dimensions outside the top k follows, whose norm is
    not matched. Where a seed finds no set of k dimensions that can carry the shift at that norm
    (:class:`NoEqualNormSetError`), that seed has no random-dimensions null: the family may hold fewer seeds, or none
    (:func:`feasible_share` says how rare such sets are; :func:`null_counts` says when the family is empty).

    Returns:
        ``[random dims seed s0, ..., random direction seed s0, ..., (Ω over random dims seed s0, ...)]`` (methods
        of :data:`edits.NULL_METHODS`).
    """
    if reference.method != "mask":
        raise ValueError(f"reference.method={reference.method!r}: the nulls are built for a 'mask' edit")
    seeds = [check_int("seeds", s, minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed")
    norm = reference.norm()
    dims = []
    for s in seeds:
        try:
            dims.append(Edit("random_dims", reference.k, random_dims_with_norm(A, reference.k, norm, s, max_draws), s))
        except NoEqualNormSetError:
            continue
    directions = [Edit("random_direction", None, random_direction_with_norm(A, norm, s), s) for s in seeds]
    omega = [Edit("random_dims_omega", reference.k, omega_random_dims_direction(A, reference.k, s), s)
             for s in seeds] if size_confounded else []
    return dims + directions + omega


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
        :data:`edits.METHOD_LABELS` entry), ``seed``, ``r``, ``achieved`` (median over tokens of
        ``alpha'_w / alpha_w``), ``error`` (median over tokens of ``|log(achieved / r)|``) and ``norm`` (the
        edit's ``||u||``).
    """
    frame = edit_errors(texts, tokens, [edit, *nulls], r)
    frame.insert(1, "family", [PAPER_EDIT] * len(frame))
    is_null = frame["edit"] != 0
    frame.loc[is_null, "family"] = [METHOD_LABELS[nulls[e - 1].method] for e in frame.loc[is_null, "edit"]]
    return frame.drop(columns=["edit", "label"])


def edit_errors(texts: dict[str, BaseStatistics], tokens, edits: Sequence[Edit], r: float) -> pd.DataFrame:
    """Achieved steering of each of ``edits`` at ``r`` and ``1/r`` on each measured text (each token steered alone).

    Returns:
        one row per (text, edit, ratio): ``text``, ``edit`` (its index in ``edits``), ``label``, ``seed``, ``r``,
        ``achieved`` (median over tokens of ``alpha'_w / alpha_w``), ``error`` (median over tokens of
        ``|log(achieved / r)|``) and ``norm`` (``||u||``; 0 for the logit bias).
    """
    r = check_float("r", r, low=1.0, low_inclusive=False)
    if not edits:
        raise ValueError("edits is empty")
    rows = []
    for text, base in texts.items():
        sweep = steering_sweep(base, tokens, [r, 1.0 / r], list(edits), progress=False)
        for e, one in enumerate(edits):
            for i, target in enumerate(sweep.r_values):
                rows.append({"text": text, "edit": e, "label": one.label, "seed": one.seed, "r": float(target),
                             "achieved": float(np.exp(np.median(sweep.log_ratio[e, i]))),
                             "error": float(np.median(np.abs(sweep.log_error[e, i]))), "norm": one.norm()})
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
        ``null_min``, ``null_max`` over seeds, ``norm_ratio`` (the nulls' mean norm over the paper's edit's; 1 for
        the equal-norm families) and the ``verdict``.
    """
    rows = []
    for (text, r), group in comparison.groupby(["text", "r"], sort=False):
        key = next((k for k in intervals if k[0] == text and np.isclose(k[1], r)), None)
        if key is None:
            raise ValueError(f"intervals has no entry for text={text!r}, r={r:g}; it has {list(intervals)}")
        low, high = intervals[key]
        paper = group.loc[group.family == PAPER_EDIT].iloc[0]
        for family, nulls in group[group.family != PAPER_EDIT].groupby("family", sort=False):
            errors = nulls["error"].to_numpy()
            ratio = float(nulls["norm"].mean() / paper["norm"]) if "norm" in group else float("nan")
            rows.append({"text": text, "r": float(r), "null": family, "error": float(paper["error"]), "low": low,
                         "high": high, "null_mean": float(errors.mean()), "null_min": float(errors.min()),
                         "null_max": float(errors.max()), "norm_ratio": ratio,
                         "verdict": null_verdict(low, high, errors)})
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


def null_counts(verdicts: pd.DataFrame, families: Sequence[str] = EQUAL_NORM) -> str:
    """Short wording of :func:`null_verdicts` for ``families`` (in that order), e.g. "beats random dimensions, same
    norm in 0 of 4 settings (no better in 2, not clearly better in 2) and random direction, same norm in 1 of 4
    (not clearly better in 3)"; a family without rows is said to have none drawn."""
    parts = []
    for family in families:
        group = verdicts[verdicts["null"] == family]
        if group.empty:  # e.g. no set of k random dimensions could carry the shift at the reference's norm
            parts.append(f"{family} in none (no such null could be drawn)")
            continue
        counts = group["verdict"].value_counts()
        rest = [f"{label} in {int(counts[v])}" for v, label in ((NO_BETTER, "no better"),
                                                               (UNDECIDED, "not clearly better")) if v in counts]
        parts.append(f"{family} in {int(counts.get(BEATS, 0))} of {len(group)} settings"
                     + (f" ({', '.join(rest)})" if rest else ""))
    return "beats " + " and ".join(parts)


def reference_against_intervals(verdicts: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """A reference edit's error beside the paper's edit's interval over texts, in each setting (text, r).

    Args:
        verdicts: from :func:`null_verdicts` (gives the paper's error and interval per setting).
        reference: :func:`edit_errors` rows of one edit in the same settings.

    Returns:
        one row per setting: ``text``, ``r``, ``error`` (the paper's), ``low``, ``high``, ``reference`` (the reference's
        error), ``norm`` (the reference's), ``below`` (whether the reference's error lies below the paper's whole
        interval; the reference's own uncertainty over texts is not included), ``lowest null mean`` (the smallest
        mean over seeds of any null family) and ``least`` (whether the reference's error is below both the paper's
        error and that mean).
    """
    settings = verdicts.drop_duplicates(["text", "r"])[["text", "r", "error", "low", "high"]]
    null_means = verdicts.groupby(["text", "r"], sort=False)["null_mean"].min().rename("lowest null mean")
    merged = settings.merge(reference[["text", "r", "error", "norm"]].rename(columns={"error": "reference"}),
                            on=["text", "r"], how="left", validate="one_to_one").merge(null_means.reset_index(),
                                                                                      on=["text", "r"])
    if merged["reference"].isna().any():
        raise ValueError("reference lacks a setting (text, r) of verdicts")
    least = (merged["reference"] < merged["error"]) & (merged["reference"] < merged["lowest null mean"])
    return merged.assign(below=merged["reference"] < merged["low"], least=least).reset_index(drop=True)


def shared_dimensions(reference: Edit, nulls: Sequence[Edit]) -> float:
    """Mean over the ``nulls`` of the share of their non-zero dimensions that are also ``reference``'s (e.g. how
    much of the mask's top k an equal-norm random-dimensions null re-draws); nan when ``nulls`` is empty."""
    if reference.direction is None or any(null.direction is None for null in nulls):
        raise ValueError("reference and nulls must be embedding edits (with a direction)")
    own = set(np.flatnonzero(reference.direction.numpy()).tolist())
    shares = [len(own & set(np.flatnonzero(null.direction.numpy()).tolist()))
              / max(int(np.count_nonzero(null.direction.numpy())), 1) for null in nulls]
    return float(np.mean(shares)) if shares else float("nan")
