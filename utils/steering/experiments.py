"""The chapter's further experiments: few-shot fits of A (:func:`few_shot_errors`) and side effects of an
edit (:func:`side_effects`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..activations import Activations, log_mean_softmax
from ..encoding.fit import EncodingRefitter
from ..head import OutputHead
from ..validation import check_int, check_positive_int
from .edits import Edit, make_edit
from .measure import BaseStatistics, other_tokens_divergence, steering_error, steering_sweep


def prefix_log_alphas(
    hidden: torch.Tensor, head: OutputHead, sizes: Sequence[int], seed: int = 0, chunk_size: int = 1024
) -> dict[int, torch.Tensor]:
    """log alpha from the first n windows of a random order of windows, for each n in ``sizes`` (nested samples).

    Args:
        hidden: (n_windows, T, d) hidden states.

    Returns:
        {n: (V,) float64 log alpha over those n windows' positions}.
    """

    n_windows = hidden.shape[0]
    sizes = sorted({check_int("sizes", n, minimum=1, maximum=n_windows) for n in sizes})
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n_windows))
    window_length = hidden.shape[1]
    log_total = torch.full((head.V,), -math.inf, dtype=torch.float64)
    done = 0
    result = {}
    for n in sizes:
        segment = hidden[order[done:n]].reshape(-1, head.d)
        segment_log_alpha = log_mean_softmax(segment, head, chunk_size) + math.log(segment.shape[0])
        log_total = torch.logaddexp(log_total, segment_log_alpha)
        done = n
        result[n] = log_total - math.log(n * window_length)
    return result


def few_shot_errors(
    activations: Activations,
    base: BaseStatistics,
    tokens: np.ndarray,
    r_values: Sequence[float],
    sizes: Sequence[int],
    *,
    k: int,
    r_max: float,
    repeats: int = 1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """Steering error on held-out text when A is fitted from alpha over only n random training windows.

    For each repeat, windows are drawn in a random order (seed + repeat) and alpha is taken over the first n of them
    (nested samples); A is refitted and the mask edit (top-k of the new A) and the minimal-norm edit are evaluated
    on ``base``.  The error is :func:`measure.steering_error` over ratios in [1/r_max, r_max].

    Returns:
        one row per (windows, repeat, edit): ``windows``, ``positions``, ``repeat``, ``edit``, ``error``, ``fit_r2``.
    """
    repeats = check_positive_int("repeats", repeats)
    refitter = EncodingRefitter(activations.head.E.numpy(), test_fraction=test_fraction, seed=seed)
    window_length = activations.token_ids.shape[1]
    rows = []
    for repeat in range(repeats):
        log_alphas = prefix_log_alphas(activations.hidden, activations.head, sizes, seed=seed + repeat)
        for n, log_alpha in log_alphas.items():
            fit = refitter.fit(log_alpha.exp().numpy())
            edits = [make_edit(fit.A, "mask", k), make_edit(fit.A, "min_norm")]
            sweep = steering_sweep(base, tokens, r_values, edits, progress=False)
            errors = steering_error(sweep, r_max)
            for edit, error in zip(edits, errors):
                rows.append({"windows": n, "positions": n * window_length, "repeat": repeat,
                             "edit": "mask (top-k of this A)" if edit.method == "mask" else edit.label,
                             "error": float(error), "fit_r2": fit.r2})
    return pd.DataFrame(rows)


def side_effects(
    base: BaseStatistics, sample: pd.DataFrame, r_values: Sequence[float], edit: Edit, *, progress: bool = True
) -> pd.DataFrame:
    """Side effects of steering each sampled token by each ratio through ``edit``.

    Args:
        sample: rows with ``token``, ``bucket``, ``bucket_label`` (from :func:`scorecard.frequency_sample`).

    Returns:
        one row per (token, r): the achieved ratio, the JS divergence (nats) of the other tokens' renormalised
        averaged distribution, the share of positions whose top-1 token changed, and the mean per-position
        KL(p || p') (nats).
    """
    tokens = sample["token"].to_numpy()
    sweep = steering_sweep(base, tokens, r_values, [edit], side_effects=True, progress=progress)
    unit = edit.unit_shift(base.hidden)
    config_tokens = np.repeat(tokens[None, :], len(r_values), axis=0).ravel()
    shifts = torch.stack([math.log(r) * unit for r in r_values for _ in tokens])
    js = other_tokens_divergence(base, config_tokens, shifts, progress=progress).reshape(len(r_values), len(tokens))
    rows = []
    for i, r in enumerate(sweep.r_values):
        for j, (_, token_row) in enumerate(sample.iterrows()):
            rows.append({
                "token": int(token_row["token"]), "bucket": int(token_row["bucket"]),
                "bucket_label": token_row["bucket_label"], "r": r,
                "achieved": float(np.exp(sweep.log_ratio[0, i, j])),
                "js_others": float(js[i, j]), "top1_changed": float(1 - sweep.top1_agreement[0, i, j]),
                "mean_kl": float(sweep.mean_kl[0, i, j]),
            })
    return pd.DataFrame(rows)
