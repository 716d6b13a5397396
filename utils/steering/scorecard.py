"""The scorecard's checks of steering, with intervals over documents, and the choices they rest on.

:func:`frequency_sample` draws the steered tokens across frequency, :func:`choose_mask` picks the number of masked
dimensions on training text, :class:`SteeringText` keeps the steered probability summed per window and per document
so that a document bootstrap re-averages the achieved ratio, :func:`headline_checks` returns the four checks of
the front page with the k they rest on (the signature :mod:`book.headlines` calls), and :func:`choice_stability`
measures how often the choice of k changes when the documents it was made on are resampled.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from ..activations import Activations
from ..encoding.fit import EncodingRefitter
from ..uncertainty import (
    Check,
    group_log_sums,
    percentile_interval,
    resample_counts,
    resampled_log_means,
    resampling_groups,
)
from ..validation import check_float, check_int, check_positive_int, check_token_ids
from .edits import Edit, check_ratio, make_edit
from .measure import (
    BaseStatistics,
    SteeringSweep,
    cached_base_statistics,
    inverse_odds_of,
    steered_probs,
    steering_error,
    steering_sweep,
)


def frequency_sample(
    log_alpha: np.ndarray, n_buckets: int = 5, per_bucket: int = 50, seed: int = 0
) -> pd.DataFrame:
    """Tokens sampled across frequency: ``n_buckets`` equal-width bins of log alpha, ``per_bucket`` tokens each.

    The bins span log alpha from its 0.1% quantile to its maximum (the rarest 0.1% fall into the lowest bin), so the
    few very frequent tokens get a bucket of their own instead of vanishing in a quantile split.

    Returns:
        one row per sampled token: ``token``, ``bucket`` (0 = rarest), ``bucket_label``, ``log_alpha``.
    """
    n_buckets = check_positive_int("n_buckets", n_buckets)
    per_bucket = check_positive_int("per_bucket", per_bucket)
    log_alpha = np.asarray(log_alpha, dtype=np.float64)
    low, high = np.quantile(log_alpha, 0.001), log_alpha.max()
    edges = np.linspace(low, high, n_buckets + 1)
    bucket = np.clip(np.searchsorted(edges, log_alpha, side="right") - 1, 0, n_buckets - 1)
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_buckets):
        members = np.flatnonzero(bucket == b)
        chosen = np.sort(rng.choice(members, size=min(per_bucket, len(members)), replace=False))
        label = f"α {np.exp(edges[b]):.0e}–{np.exp(edges[b + 1]):.0e}"
        rows += [{"token": int(t), "bucket": b, "bucket_label": label, "log_alpha": log_alpha[t]} for t in chosen]
    return pd.DataFrame(rows)


def choose_mask(sweep: SteeringSweep, r_max: float) -> Edit:
    """The mask edit of ``sweep`` with the smallest :func:`measure.steering_error` over ratios in [1/r_max, r_max].

    Ties go to the first mask in the sweep's order (the smaller k when the masks are listed by k). Only "mask" edits
    compete; the sweep should be measured on training text, so that the choice is not made on the text it is then
    scored on.

    Raises:
        ValueError: the sweep holds no mask edit.
    """
    masks = [i for i, edit in enumerate(sweep.edits) if edit.method == "mask"]
    if not masks:
        raise ValueError("the sweep holds no mask edit to choose from")
    errors = steering_error(sweep, r_max)
    return sweep.edits[min(masks, key=lambda i: errors[i])]


def window_sums(values: torch.Tensor | np.ndarray, window_length: int) -> np.ndarray:
    """Sum per-position values within each window: (N, m) -> (N / window_length, m) float64.

    Positions must be in window order (window 0's positions first), as in ``Activations.hidden_flat``.
    """
    values = torch.as_tensor(values, dtype=torch.float64)
    window_length = check_positive_int("window_length", window_length)
    if values.ndim != 2 or values.shape[0] % window_length:
        raise ValueError(f"values must be (N, m) with N a multiple of window_length={window_length}; "
                         f"got shape {tuple(values.shape)}")
    return values.reshape(-1, window_length, values.shape[1]).sum(dim=1).numpy()


def document_sums(window_values: np.ndarray, groups: np.ndarray, n_groups: int | None = None) -> np.ndarray:
    """Sum per-window rows within each group (document): (n_windows, m), groups (n_windows,) -> (n_groups, m)."""
    window_values = np.asarray(window_values, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    out = np.zeros(((int(groups.max()) + 1) if n_groups is None else n_groups, window_values.shape[1]))
    np.add.at(out, groups, window_values)
    return out


class SteeringText:
    """One measured text for one-token edits: the sampled tokens' probabilities at every position, kept per window.

    The steered probability at each position comes from the shortcut (:func:`measure.steered_probs` with the base
    statistics' log-normalisers); it is summed within each window and then within each document, so that a
    bootstrap over documents re-averages the achieved ratio as a weighted sum of document rows.

    Attributes:
        tokens: (m,) int64 steered token ids.
        window_length: positions per window (T).
        groups: (n_windows,) int64 document group of each window (0..n_groups-1), or any grouping to resample.
        n_groups: number of groups (at least ``groups.max() + 1``; more when the groups are a larger pass's, so
            that one draw of that pass's documents weights this text too).
        before: (n_groups, m) float64 summed probability of each token before the edit, per group.
    """

    def __init__(self, base: BaseStatistics, tokens, window_length: int, groups, n_groups: int | None = None) -> None:
        self.tokens = check_token_ids("tokens", tokens, base.head.V)
        self.window_length = check_positive_int("window_length", window_length)
        self.groups = np.asarray(groups, dtype=np.int64)
        if self.groups.shape != (base.n_positions // self.window_length,) or base.n_positions % self.window_length:
            raise ValueError(f"groups must give one group per window ({base.n_positions} positions / "
                             f"{self.window_length}); got shape {self.groups.shape}")
        self.n_groups = int(self.groups.max()) + 1 if n_groups is None else check_int(
            "n_groups", n_groups, minimum=int(self.groups.max()) + 1)
        self._hidden = base.hidden.to(torch.float64)  # (N, d), so each edit's shift is one float64 product
        log_p = base.token_log_probs(self.tokens)  # (N, m)
        self._inverse_odds = inverse_odds_of(log_p)
        self.before = document_sums(window_sums(log_p.exp(), self.window_length), self.groups, self.n_groups)
        if not np.all(self.before.sum(axis=0) > 0):
            raise FloatingPointError("a steered token's probability underflows float64 at every position")

    def window_sums_after(self, edit: Edit, r: float) -> np.ndarray:
        """(n_windows, m) float64 summed probability of each token within each window after steering it by ``r``."""
        shift = math.log(check_ratio("r", r)) * edit.unit_shift(self._hidden)  # (N,)
        return window_sums(steered_probs(self._inverse_odds, shift), self.window_length)

    def after(self, edit: Edit, r: float) -> np.ndarray:
        """(n_groups, m) float64 summed probability of each token within each group after steering it by ``r``."""
        return document_sums(self.window_sums_after(edit, r), self.groups, self.n_groups)

    def log_ratio(self, after: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        """log of the achieved ratio ``alpha'_w / alpha_w`` of each token, over the groups weighted by ``counts``.

        Args:
            after: (n_groups, m) from :meth:`after`.
            counts: (n_groups,) or (n_boot, n_groups) how often each group is drawn (all once when None).

        Returns:
            (m,) or (n_boot, m) float64 (the positions' count cancels: both alphas average the same positions).
        """
        counts = np.ones(self.n_groups) if counts is None else np.asarray(counts, dtype=np.float64)
        return np.log(counts @ after) - np.log(counts @ self.before)


def choice_stability(text: SteeringText, masks: Sequence[Edit], r_values: Sequence[float], r_max: float,
                     n_boot: int = 200, seed: int = 0) -> pd.Series:
    """How often each mask of ``masks`` would be chosen (:func:`choose_mask`'s criterion) if the documents of ``text``
    were resampled: ``n_boot`` document bootstraps of the text (the edits, so A, held fixed), each choosing the mask
    with the smallest mean over the ratios of ``r_values`` within [1/r_max, r_max] (other than 1) of the median over
    tokens of ``|log(achieved / r)|`` (ties to the first mask, as :func:`choose_mask`).

    Args:
        text: the text the choice is made on (e.g. the selection windows), its groups the documents to resample.
        masks: the candidate "mask" edits, in the order :func:`choose_mask` sees them.

    Returns:
        share of the resamples that choose each mask, indexed by its k (the masks' order), summing to 1.
    """
    if not masks or any(edit.method != "mask" for edit in masks):
        raise ValueError("masks must be a non-empty list of 'mask' edits")
    r_max = check_float("r_max", r_max, low=1.0, low_inclusive=False)
    ratios = [float(r) for r in r_values if 1 / r_max * (1 - 1e-9) <= r <= r_max * (1 + 1e-9) and r != 1]
    if not ratios:
        raise ValueError(f"r_values={list(r_values)}: none other than 1 lies within [1/r_max, r_max], r_max={r_max}")
    counts = resample_counts(text.n_groups, check_positive_int("n_boot", n_boot), seed)  # (n_boot, n_groups)
    errors = np.stack([np.mean([_median_abs_log_error(text.log_ratio(text.after(edit, r), counts), r)
                                for r in ratios], axis=0) for edit in masks])  # (n_masks, n_boot)
    chosen = np.bincount(np.argmin(errors, axis=0), minlength=len(masks)) / counts.shape[0]
    return pd.Series(chosen, index=pd.Index([edit.k for edit in masks], name="k"), name="share of resamples")


class HeadlineChecks(NamedTuple):
    """:func:`headline_checks`' result: the four checks, and the k of the mask they rest on (chosen on training
    windows; kept out of the checks' names, so that runs that choose another k still share their checks)."""

    checks: list
    k: int


def _median_abs_log_error(log_ratio: np.ndarray, r: float) -> np.ndarray:
    """Median over tokens (last axis) of ``|log(achieved / r)|``."""
    return np.median(np.abs(log_ratio - math.log(r)), axis=-1)


def _choose_headline_mask(train_acts: Activations, tokens: np.ndarray, r_values: Sequence[float],
                          k_values: Sequence[int], r_headline: float, selection_windows: int, test_fraction: float,
                          seed: int, chunk_size: int) -> tuple[EncodingRefitter, Edit, BaseStatistics]:
    """Fit A on the training pass's alpha and choose the mask among ``k_values`` (and d) on its first
    ``selection_windows`` windows (:func:`choose_mask` within [1/r_headline, r_headline]).

    Returns:
        (the refitter of A, the chosen mask edit, the base statistics of the selection windows).
    """
    d = train_acts.head.d
    E = train_acts.head.E.numpy().astype(np.float64)
    refitter = EncodingRefitter(E, test_fraction=test_fraction, seed=seed)
    fit = refitter.fit(train_acts.alpha.numpy())
    masks = [make_edit(fit.A, "mask", k) for k in sorted({int(k) for k in k_values if 1 <= int(k) <= d} | {d})]
    selection_base = cached_base_statistics(train_acts, selection_windows, chunk_size=chunk_size)
    best = choose_mask(steering_sweep(selection_base, tokens, r_values, masks, progress=False), r_headline)
    return refitter, best, selection_base


def _headline_texts(selection_base: BaseStatistics, held_out_acts: Activations, tokens: np.ndarray,
                    train_window_length: int, train_groups: np.ndarray, held_out_groups: np.ndarray,
                    selection_windows: int, chunk_size: int) -> dict[str, SteeringText]:
    """The two measured texts, "training" (the selection windows, grouped by the training pass's documents
    ``train_groups`` (n_train_windows,)) and "held-out" (every window of the held-out pass, by ``held_out_groups``)."""
    n_train_groups = int(train_groups.max()) + 1
    return {  # the training text's groups are the training pass's documents, so one draw weights fit and text
        "training": SteeringText(selection_base, tokens, train_window_length,
                                 train_groups[:selection_windows], n_groups=n_train_groups),
        "held-out": SteeringText(cached_base_statistics(held_out_acts, chunk_size=chunk_size), tokens,
                                 held_out_acts.token_ids.shape[1], held_out_groups),
    }


def _headline_errors(texts: dict[str, SteeringText], ratios: tuple[float, float], edit: Edit, train_counts,
                     held_out_counts) -> np.ndarray:
    """(4,) the four checked numbers for one edit and one draw of documents: the median over tokens of
    ``|log(achieved / r)|`` on the training then the held-out text, at each of ``ratios`` (counts: (n_groups,) or
    None for each group once)."""
    out = []
    for text, counts in ((texts["training"], train_counts), (texts["held-out"], held_out_counts)):
        for r in ratios:
            out.append(float(_median_abs_log_error(text.log_ratio(text.after(edit, r), counts), r)))
    return np.asarray(out)


def _joint_document_counts(train_groups: np.ndarray, selection_windows: int, held_out_groups: np.ndarray,
                           n_boot: int, boot_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint document draws: the training documents stratified by whether they hold selection windows.

    Returns:
        (selected (n_train_groups,) bool, the documents that hold selection windows; train_counts
        (n_boot, n_train_groups) and held_out_counts (n_boot, n_held_out_groups) float64 draws of each document).
    """
    n_train_groups = int(train_groups.max()) + 1
    selected = np.zeros(n_train_groups, dtype=bool)
    selected[train_groups[:selection_windows]] = True
    train_counts = np.zeros((n_boot, n_train_groups))
    train_counts[:, selected] = resample_counts(int(selected.sum()), n_boot, boot_seed)
    if (~selected).any():
        train_counts[:, ~selected] = resample_counts(int((~selected).sum()), n_boot, boot_seed + 1)
    held_out_counts = resample_counts(int(held_out_groups.max()) + 1, n_boot, boot_seed + 2)
    return selected, train_counts, held_out_counts


def _bootstrap_errors(train_acts: Activations, refitter: EncodingRefitter, k: int, texts: dict[str, SteeringText],
                      ratios: tuple[float, float], train_groups: np.ndarray, train_counts: np.ndarray,
                      held_out_counts: np.ndarray, n_boot: int, n_checks: int) -> np.ndarray:
    """(n_boot, n_checks) the checked numbers per bootstrap sample: alpha re-averaged from the training pass's
    per-window sums over the drawn documents, A refitted, the mask of ``k`` dimensions rebuilt from it, and
    :func:`_headline_errors` with the same draws."""
    sums = group_log_sums(train_acts.window_log_sums, train_groups)
    sizes = np.bincount(train_groups).astype(np.float64) * train_acts.token_ids.shape[1]
    samples = np.empty((n_boot, n_checks))
    for b, log_alpha in enumerate(resampled_log_means(sums, sizes, train_counts)):
        edit = make_edit(refitter.coefficients(np.exp(log_alpha))[0], "mask", k)
        samples[b] = _headline_errors(texts, ratios, edit, train_counts[b], held_out_counts[b])
    return samples


def _headline_check_list(values: np.ndarray, samples: np.ndarray, r_headline: float, band: float,
                         selected: np.ndarray, held_out_groups: np.ndarray) -> list[Check]:
    """The four :class:`Check` s from the measured values (4,) and their bootstrap samples (n_boot, 4), each
    interval widened for its text's number of documents (``selected``: (n_train_groups,) bool, the training
    documents that hold selection windows; ``held_out_groups``: (n_held_out_windows,) document of each held-out
    window); threshold ``log(band)``, "below"."""
    threshold = math.log(band)
    names = [f"{text}: median |log(achieved/target)| at r = {r}, chosen mask"
             for text in ("training text (the paper's setting)", "held-out text")
             for r in (f"{r_headline:g}", f"1/{r_headline:g}")]
    # each text's documents, for the widening of intervals over few of them: the training text is the documents
    # that hold the selection windows, the held-out text its split's documents
    n_documents = [int(selected.sum())] * 2 + [int(held_out_groups.max()) + 1] * 2
    return [Check(name, float(value), percentile_interval(samples[:, i], estimate=float(value),
                                                          n_groups=n_documents[i]),
                  threshold, "below") for i, (name, value) in enumerate(zip(names, values))]


def headline_checks(
    train_acts: Activations, held_out_acts: Activations, *, tokens, r_values: Sequence[float],
    k_values: Sequence[int], r_headline: float = 20.0, band: float = 2.0, selection_windows: int = 16,
    test_fraction: float = 0.2, seed: int = 0, n_boot: int = 200, boot_seed: int = 0, chunk_size: int = 1024,
) -> HeadlineChecks:
    """The scorecard's checks of "editing E_w along A multiplies alpha_w by r", each with an interval over texts.

    A is fitted on the training pass's alpha (held-out tokens ``test_fraction``, split ``seed``). The number of
    masked dimensions k is chosen among ``k_values`` (and all d) on the first ``selection_windows`` windows of the
    *training* pass (a spread sample of it: the windows are in seeded random order) by :func:`choose_mask` over the
    ratios of ``r_values`` within [1/r_headline, r_headline]; the held-out pass plays no part in the choice.

    Checks (:class:`utils.uncertainty.Check`), for the chosen mask edit: the median over ``tokens`` of
    ``|log(achieved / target)|`` at r = ``r_headline`` and at r = 1/``r_headline``, at most ``log(band)``, in two
    settings:

    - training text (the paper's setting, the edit measured on the text D that fitted A): the selection windows,
      the part of the training pass whose per-position normalisers the chapter computes anyway (a pass over every
      training window would cost several times the held-out one), and where k was chosen;
    - held-out text: every window of ``held_out_acts``.

    Intervals: a document bootstrap, training and held-out documents resampled jointly in each of ``n_boot``
    samples. The training documents are drawn with replacement, stratified into those that hold selection windows
    and the rest (so that the measured text never vanishes); alpha is re-averaged from the pass's per-window sums,
    A refitted (:class:`utils.encoding.fit.EncodingRefitter`, one factorisation), and the mask rebuilt with the same k
    from the refitted A. The achieved ratio on the training text is re-averaged with the same document draws, and
    on the held-out text with a draw of the held-out documents: both from per-window sums of the steered
    probability (:class:`SteeringText`), never a new model pass. Only the chosen edit and the two headline ratios
    are recomputed per sample.

    Args:
        train_acts: the training pass (fits A; its first ``selection_windows`` windows choose k and measure the
            paper's setting).
        held_out_acts: the held-out pass (same head).
        tokens: (m,) steered token ids (chosen without the held-out text, e.g. :func:`frequency_sample` of the
            training alpha).
        r_values: the sweep's target ratios; those within [1/r_headline, r_headline] other than 1 choose k.
        k_values: candidate mask sizes (values above d are dropped; d is always added).

    Returns:
        :class:`HeadlineChecks`: four checks (training r_headline, training 1/r_headline, held-out r_headline,
        held-out 1/r_headline), whose names leave the chosen k out, and that k.
    """
    r_headline = check_float("r_headline", r_headline, low=1.0, low_inclusive=False)
    band = check_float("band", band, low=1.0, low_inclusive=False)
    selection_windows = check_int("selection_windows", selection_windows, minimum=1,
                                  maximum=train_acts.token_ids.shape[0])
    tokens = check_token_ids("tokens", tokens, train_acts.head.V)
    refitter, best, selection_base = _choose_headline_mask(train_acts, tokens, r_values, k_values, r_headline,
                                                           selection_windows, test_fraction, seed, chunk_size)
    train_groups = resampling_groups(train_acts.document)  # (n_train_windows,)
    held_out_groups = resampling_groups(held_out_acts.document)
    texts = _headline_texts(selection_base, held_out_acts, tokens, train_acts.token_ids.shape[1], train_groups,
                            held_out_groups, selection_windows, chunk_size)
    ratios = (r_headline, 1.0 / r_headline)
    values = _headline_errors(texts, ratios, best, None, None)
    selected, train_counts, held_out_counts = _joint_document_counts(train_groups, selection_windows,
                                                                     held_out_groups, n_boot, boot_seed)
    samples = _bootstrap_errors(train_acts, refitter, best.k, texts, ratios, train_groups, train_counts,
                                held_out_counts, n_boot, len(values))
    return HeadlineChecks(_headline_check_list(values, samples, r_headline, band, selected, held_out_groups), best.k)
