"""Chapter 2's wording decisions: words chosen from computed numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


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
