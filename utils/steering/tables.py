"""The tables chapter 2's sections show, kept out of the chapter's cells.

:func:`edit_mechanics`, :func:`out_of_distribution` and :func:`steerable_ranges` build the tables of sections 2.2, 2.4
and 2.6, and :func:`scorecard_table` shows the scorecard's checks.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .edits import Edit, make_edit
from .measure import BaseStatistics, SteeringSweep, steerable_range, steering_error, steering_sweep


def edit_mechanics(
    edits: Sequence[Edit],
    held_out_hidden: torch.Tensor,
    training_hidden: torch.Tensor,
    sweep: SteeringSweep,
    training_errors: np.ndarray,
    r_headline: float,
) -> pd.DataFrame:
    """Why each edit steers as it does: its size, the logit shift it makes per unit log r, and its errors.

    Args:
        held_out_hidden, training_hidden: (N, d) hidden states of the held-out and training positions.
        sweep: the held-out sweep of ``edits`` (same order).
        training_errors: (n_e,) :func:`measure.steering_error` of the training sweep.

    Returns:
        one row per edit: ``edit``, ``k``, ``‖ΔE_w‖ per unit log r``, ``mean shift (held-out)``,
        ``mean shift (training)``, ``std of shift (held-out)``, ``held-out error``, ``training error``.
    """
    shift_on = {"held-out": held_out_hidden, "training": training_hidden}
    return pd.DataFrame([{
        "edit": edit.label, "k": edit.k, "‖ΔE_w‖ per unit log r": edit.norm(),
        **{f"mean shift ({text})": float(edit.unit_shift(h).mean()) for text, h in shift_on.items()},
        "std of shift (held-out)": float(edit.unit_shift(held_out_hidden).std()),
        "held-out error": float(steering_error(sweep, r_headline, i)),
        "training error": float(training_errors[i]),
    } for i, edit in enumerate(edits)])


def out_of_distribution(
    texts: Mapping[str, tuple[BaseStatistics, Any]],
    best: Edit,
    min_norm: Edit,
    bias: Edit,
    tokens: np.ndarray,
    r_grid: np.ndarray,
    r_headline: float,
    corpus: str,
) -> tuple[dict[str, SteeringSweep], pd.DataFrame]:
    """The same edits measured on other texts, beside a mask with the same k from an A fitted on each text.

    Args:
        texts: {measured text: (its base statistics, the encoding fitted on its own alpha)}.
        best, min_norm, bias: the chosen mask, the minimal-norm edit and the logit bias (A from ``corpus``).

    Returns:
        ({text: sweep of [best, min_norm, own-A mask, bias]}, table of :func:`measure.steering_error` with one row
        per edit label and one column per text).
    """
    labels = [f"mask k={best.k}, A from {corpus}", f"minimal-norm, A from {corpus}",
              f"mask k={best.k}, A from this text", "logit bias"]
    sweeps, rows = {}, []
    for name, (base, own_fit) in texts.items():
        edits = [best, min_norm, make_edit(own_fit.A, "mask", best.k), bias]
        sweeps[name] = steering_sweep(base, tokens, r_grid, edits, progress=False)
        for i, label in enumerate(labels):
            rows.append({"measured on": name, "edit": label,
                         "error": float(steering_error(sweeps[name], r_headline, i))})
    return sweeps, pd.DataFrame(rows).pivot(index="edit", columns="measured on", values="error")


def steerable_ranges(sample: pd.DataFrame, sweep: SteeringSweep, edits: Sequence[Edit], band: float) -> pd.DataFrame:
    """:func:`measure.steerable_range` of each edit within each frequency bucket of ``sample``.

    Args:
        sample: rows with ``token``, ``bucket``, ``bucket_label``, in the order of ``sweep.tokens``.

    Returns:
        one row per (bucket, edit): ``bucket``, ``bucket_label``, ``edit`` (label), ``r up``, ``r down``,
        ``tokens``.
    """
    rows = []
    for bucket, group in sample.groupby("bucket"):
        mask = sample["bucket"].to_numpy() == bucket
        for edit in edits:
            up, down = steerable_range(sweep, edit.label, band, mask)
            rows.append({"bucket": bucket, "bucket_label": group["bucket_label"].iloc[0], "edit": edit.label,
                         "r up": up, "r down": down, "tokens": int(mask.sum())})
    return pd.DataFrame(rows)


def scorecard_table(checks: Sequence, settings: Sequence[tuple[str, float]]) -> pd.DataFrame:
    """The scorecard's checks (:class:`utils.uncertainty.Check`) as a table, one row per (text, r) setting."""
    return pd.DataFrame([{
        "measured on": text, "r": f"{r:g}" if r > 1 else f"1/{1 / r:g}",
        "median |log(achieved/target)|": round(c.value, 3), "95% interval (documents)": c.interval.text(),
        "threshold": round(c.threshold, 3), "verdict": c.verdict,
    } for c, (text, r) in zip(checks, settings)])
