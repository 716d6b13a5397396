"""The scorecard's checks, with intervals over held-out documents.

:func:`headline_checks` gives the two checks (JS of alpha and top-1 agreement at the abstract's share with the
``|A|`` order), each with an interval over held-out documents from per-window sums (:class:`WindowSums`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..compare import js_divergence
from ..encoding.fit import fit_encoding
from ..uncertainty import (
    Check,
    group_log_sums,
    percentile_interval,
    resample_counts,
    resampled_log_means,
    resampling_groups,
)
from ..validation import check_float, check_positive_int
from .criteria import keep_columns, rank_dimensions
from .sweep import subsample_positions


@dataclass(frozen=True)
class WindowSums:
    """Per-window sums of a full head and one pruned head over the sampled positions of a pass.

    Only windows with at least one sampled position are kept (W of them).

    Attributes:
        full_log: (W, V) float64, log of the window's summed full-head softmax over its sampled positions.
        pruned_log: (W, V) float64, the same for the pruned head.
        agree: (W,) float64, sampled positions whose full-head top token is still the pruned head's top token.
        count: (W,) float64, sampled positions of each window.
        document: (W,) int64, the document of each window.
    """

    full_log: np.ndarray
    pruned_log: np.ndarray
    agree: np.ndarray
    count: np.ndarray
    document: np.ndarray

    def js(self) -> float:
        """JS divergence (nats) between the averaged full and pruned distributions of all sampled positions."""
        full = torch.logsumexp(torch.from_numpy(self.full_log), dim=0)
        pruned = torch.logsumexp(torch.from_numpy(self.pruned_log), dim=0)
        return js_divergence((full - full.max()).exp(), (pruned - pruned.max()).exp())

    def agreement(self) -> float:
        """Share of all sampled positions whose top token is unchanged."""
        return float(self.agree.sum() / self.count.sum())



@torch.no_grad()
def window_sums(
    hidden: torch.Tensor,
    window: torch.Tensor,
    head,
    keep: torch.Tensor,
    *,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stream the full head and the pruned head ``keep`` over hidden states and sum per window.

    The pruned logits are the full ones less the deleted dimensions' part, ``z - h_del @ E_del.T`` (as in
    :func:`utils.pruning.sweep.deletion_sweep`); top-1 agreement is counted as there (the full head's top token still on
    top).

    Args:
        hidden: (N, d) hidden states of the sampled positions.
        window: (N,) int64 window of each position, non-decreasing.
        head: the full :class:`~utils.head.OutputHead`.
        keep: (k,) kept dimensions.

    Returns:
        (windows (W,) int64 the distinct windows, full_log (W, V) float64, pruned_log (W, V) float64,
        agree (W,) float64, count (W,) float64).
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    window = torch.as_tensor(window, dtype=torch.int64)
    if hidden.ndim != 2 or hidden.shape[1] != head.d or tuple(window.shape) != (hidden.shape[0],):
        raise ValueError(f"hidden must be (N, {head.d}) and window (N,); got {tuple(hidden.shape)}, "
                         f"{tuple(window.shape)}")
    if hidden.shape[0] == 0 or bool((window[1:] < window[:-1]).any()):
        raise ValueError("window must be non-empty and non-decreasing (positions sorted by window)")
    deleted = torch.ones(head.d, dtype=torch.bool)
    deleted[torch.as_tensor(keep, dtype=torch.int64)] = False
    E = head.E.to(torch.float32)
    E_deleted = E[:, deleted].contiguous()
    windows, slot = torch.unique_consecutive(window, return_inverse=True)
    n_windows = len(windows)
    full_log = torch.full((n_windows, head.V), -math.inf, dtype=torch.float64)
    pruned_log = torch.full((n_windows, head.V), -math.inf, dtype=torch.float64)
    agree = torch.zeros(n_windows, dtype=torch.float64)
    count = torch.zeros(n_windows, dtype=torch.float64)
    for start in range(0, hidden.shape[0], chunk_size):
        h = hidden[start : start + chunk_size].to(torch.float32)
        s = slot[start : start + chunk_size]
        z = h @ E.T
        if head.b is not None:
            z += head.b.to(torch.float32)
        top_ref = z.argmax(dim=-1)
        z_new = z.addmm(h[:, deleted], E_deleted.T, alpha=-1.0)
        same = z_new.gather(1, top_ref[:, None]).squeeze(1) >= z_new.amax(dim=-1)
        agree.index_add_(0, s, same.to(torch.float64))
        count.index_add_(0, s, torch.ones_like(s, dtype=torch.float64))
        for logits, target in ((z, full_log), (z_new, pruned_log)):
            log_probs = torch.log_softmax(logits, dim=-1)
            slots, sizes = torch.unique_consecutive(s, return_counts=True)
            for j, piece in zip(slots.tolist(), torch.split(log_probs, sizes.tolist())):
                target[j] = torch.logaddexp(target[j], torch.logsumexp(piece, dim=0).to(torch.float64))
        del z, z_new
    return windows.numpy(), full_log.numpy(), pruned_log.numpy(), agree.numpy(), count.numpy()



def held_out_window_sums(
    acts, keep: torch.Tensor, *, n_positions: int | None = 1024, seed: int = 0, chunk_size: int = 1024
) -> WindowSums:
    """:func:`window_sums` over the seeded sample of positions of ``acts`` that
    :func:`utils.pruning.sweep.sweep_activations` reads with
    the same ``n_positions`` and ``seed`` (so its JS and agreement equal the sweep's at the same deletion)."""
    n_windows, window_length = acts.token_ids.shape
    index = subsample_positions(n_windows, window_length, n_positions, seed)
    windows, full_log, pruned_log, agree, count = window_sums(acts.hidden_flat[index], index // window_length,
                                                              acts.head, keep, chunk_size=chunk_size)
    document = np.asarray(acts.document, dtype=np.int64)[windows]
    return WindowSums(full_log, pruned_log, agree, count, document)



def bootstrap_window_sums(
    sums: WindowSums, *, n_boot: int = 200, seed: int = 0, level: float = 0.95, unit: str = "document"
):
    """Intervals over texts of JS(alpha_full, alpha_pruned) and top-1 agreement from per-window sums.

    Each bootstrap sample draws the documents (or windows) with replacement, each with all its windows, re-averages
    both distributions over the drawn positions (:func:`utils.uncertainty.resampled_log_means`) and recomputes the
    JS divergence, and divides the drawn agreement counts by the drawn positions.

    Returns:
        (js_interval, agreement_interval, js_samples (n_boot,), agreement_samples (n_boot,)).
    """

    groups = resampling_groups(sums.document, unit)
    V = sums.full_log.shape[1]
    both = group_log_sums(np.concatenate([sums.full_log, sums.pruned_log], axis=1), groups)  # (G, 2V)
    sizes = np.bincount(groups, weights=sums.count)
    agree = np.bincount(groups, weights=sums.agree)
    counts = resample_counts(len(sizes), n_boot, seed)
    js_samples = np.empty(len(counts))
    for i, log_means in enumerate(resampled_log_means(both, sizes, counts)):
        full, pruned = torch.from_numpy(log_means[:V]), torch.from_numpy(log_means[V:])
        js_samples[i] = js_divergence((full - full.max()).exp(), (pruned - pruned.max()).exp())
    agreement_samples = (counts @ agree) / (counts @ sizes)
    n_groups = len(sizes)  # few documents (13 held-out ones): the intervals are widened for their number
    return (percentile_interval(js_samples, estimate=sums.js(), level=level, unit=unit, n_groups=n_groups),
            percentile_interval(agreement_samples, estimate=sums.agreement(), level=level, unit=unit,
                                n_groups=n_groups), js_samples, agreement_samples)



def headline_checks(
    train_acts,
    held_out_acts,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    fraction: float = 0.3,
    js_threshold: float = 0.01,
    top1_threshold: float = 0.9,
    n_positions: int | None = 1024,
    n_boot: int = 200,
    boot_seed: int = 0,
    chunk_size: int = 1024,
    A=None,
) -> list:
    """The scorecard's checks of "deleting the dimensions of smallest |A| barely moves the output", with intervals
    over held-out documents.

    The deletion order is our reading of the paper's: ``A`` is fitted on the *whole* training pass
    (:func:`utils.encoding.fit.fit_encoding` with ``test_fraction`` and ``seed``), and the ``fraction`` of dimensions
    with the smallest ``|A_i|`` is deleted.
    Over a seeded sample of ``n_positions`` held-out positions (the positions
    :func:`utils.pruning.sweep.sweep_activations` reads with the
    same ``seed``), one full and one pruned head evaluation give per-window sums (:func:`held_out_window_sums`); a
    bootstrap over the held-out documents (each with all its windows) recomputes both numbers
    (:func:`bootstrap_window_sums`). The order stays fixed across resamples: the intervals cover the held-out text,
    not the fit of A.

    Checks (:class:`utils.uncertainty.Check`):

    - averaged distribution: JS(alpha_full, alpha_pruned) in nats at ``fraction`` deleted, below ``js_threshold``;
    - per position: top-1 agreement at ``fraction`` deleted, above ``top1_threshold``.

    Args:
        train_acts, held_out_acts: :class:`utils.activations.Activations` passes (training and held-out).
        fraction: the share of d deleted (the chapter passes the paper's share snapped to its grid).
        n_positions: held-out positions sampled (None: all).
        n_boot, boot_seed: document resamples and their seed.
        A: (d,) the coefficients of that same fit when the caller already has them (saves refitting, a few seconds
            at V = 49k); None fits them here. Passing another fit's A changes the order the checks score.

    Returns:
        [JS check, top-1 check]; deterministic given the seeds.
    """

    fraction = check_float("fraction", fraction, low=0.0, high=1.0, high_inclusive=False)
    check_float("js_threshold", js_threshold, low=0.0, low_inclusive=False)
    check_float("top1_threshold", top1_threshold, low=0.0, high=1.0)
    head = train_acts.head
    if A is None:
        fit = fit_encoding(head.E.numpy(), train_acts.alpha.numpy(), test_fraction=test_fraction, seed=seed)
        A = fit.A
    order = rank_dimensions("abs_A", head.E, A)
    keep = keep_columns(order, fraction)
    sums = held_out_window_sums(held_out_acts, keep, n_positions=n_positions, seed=seed, chunk_size=chunk_size)
    js_interval, agreement_interval, _, _ = bootstrap_window_sums(sums, n_boot=n_boot, seed=boot_seed)
    share = format(fraction, ".0%" if abs(100 * fraction - round(100 * fraction)) < 1e-9 else ".1%")
    return [
        Check(f"averaged distribution: JS(α) in nats with the {share} of dimensions of smallest |A| deleted",
              sums.js(), js_interval, js_threshold, "below", fmt=".2g"),
        Check(f"per position: top-1 agreement with the {share} of dimensions of smallest |A| deleted",
              sums.agreement(), agreement_interval, top1_threshold, "above"),
    ]

