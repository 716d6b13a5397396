"""The tables chapter 2's sections show, kept out of the chapter's cells (its parameters are checked by
:class:`utils.steering.parameters.SteeringParameters`).

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


def direction_and_spread_text(summary: pd.DataFrame, r_headline: float) -> str:
    """How the median achieved ratio follows the targets, and how wide the interquartile band is.

    Args:
        summary: :func:`utils.steering.measure.ratio_summary` of one edit (columns target, median, q25, q75).
        r_headline: the headline ratio; the band is reported at ``r_headline`` and ``1 / r_headline``.
    Returns:
        e.g. "the medians move the right way at 12 of 12 targets (above 1 for r > 1, below 1 for r < 1); the
        interquartile band spans a factor of 3.1 at r = 20 and 2.4 at r = 1/20".
    """
    up, down = summary["target"] > 1, summary["target"] < 1
    right = int((summary.loc[up, "median"] > 1).sum() + (summary.loc[down, "median"] < 1).sum())
    n_targets = int(up.sum() + down.sum())
    spreads = []
    for r, shown in ((r_headline, f"{r_headline:g}"), (1 / r_headline, f"1/{r_headline:g}")):
        row = summary.loc[np.isclose(summary["target"], r)]
        if row.empty:
            raise ValueError(f"r_headline={r_headline} is not among the summary's targets")
        spreads.append(f"{float(row['q75'].iloc[0] / row['q25'].iloc[0]):.1f} at r = {shown}")
    return (f"the medians move the right way at {right} of {n_targets} targets (above 1 for r > 1, below 1 for "
            f"r < 1); the interquartile band spans a factor of {' and '.join(spreads)}")


def choice_stability_text(shares: pd.Series, chosen_k: int, n_boot: int) -> str:
    """How often each k is chosen over document resamples (:func:`scorecard.choice_stability`), in words.

    Returns:
        e.g. "k = 32 (chosen here) in 41% of the 200 resamples, k = 64 in 30% and k = 4 in 29%": every k
        chosen at least once, most often first.
    """
    if chosen_k not in shares.index:
        raise ValueError(f"chosen_k={chosen_k} is not among the candidates {list(shares.index)}")
    chosen = shares[shares > 0].sort_values(ascending=False, kind="stable")
    parts = [f"k = {k}{' (chosen here)' if k == chosen_k else ''} in {share:.0%}"
             for k, share in chosen.items()]
    parts[0] += f" of the {n_boot} resamples"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def reference_text(beside: pd.DataFrame, label: str, paper_norm: float, setting: tuple[str, float]) -> str:
    """A reference edit against the paper's edit's intervals (:func:`nulls.reference_against_intervals`), in words.

    Args:
        label: the reference's name, e.g. "the minimal-norm edit along A".
        paper_norm: the paper's edit's norm (the reference's is given relative to it).
        setting: the (text, r) whose numbers are quoted.

    Returns:
        e.g. "the minimal-norm edit along A (0.41 times the mask's norm) errs less than the mask and than every
        null's mean over seeds in 4 of 4 settings, and below the mask's whole interval over texts in 2 (held-out
        text, r = 1/20: 0.69 nats against 1.42 [0.97, 1.93])".
    """
    row = beside[(beside["text"] == setting[0]) & np.isclose(beside["r"], setting[1])]
    if row.empty:
        raise ValueError(f"setting={setting} is not among the compared settings")
    row = row.iloc[0]
    shown = f"{row['r']:g}" if row["r"] >= 1 else f"1/{1 / row['r']:g}"
    return (f"{label} ({float(beside['norm'].iloc[0]) / paper_norm:.2f} times the mask's norm) errs less than the "
            f"mask and than every null's mean over seeds in {int(beside['least'].sum())} of {len(beside)} settings, "
            f"and below the mask's whole interval over texts in {int(beside['below'].sum())} ({setting[0]}, "
            f"r = {shown}: {row['reference']:.2f} nats against {row['error']:.2f} "
            f"[{row['low']:.2f}, {row['high']:.2f}])")
