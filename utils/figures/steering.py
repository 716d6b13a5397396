"""Figures of chapter 2 (steering by output-embedding edits)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..steering.nulls import PAPER_EDIT

NULL_MARKERS = ("o", "s", "^", "D")


def plot_null_baselines(comparison: pd.DataFrame, verdicts: pd.DataFrame, band: float):
    """The paper's edit beside its null baselines, in every setting (text × ratio), in one figure.

    Left: median achieved ratio over the tokens, with the target as a black bar. Right: median
    ``|log(achieved/target)|`` with the paper's edit's interval over texts and the band's limit ``log(band)``.
    Each null seed is one small marker; the nulls' mean over seeds is a larger hollow marker.

    Args:
        comparison: from :func:`utils.steering.nulls.null_comparison`.
        verdicts: from :func:`utils.steering.nulls.null_verdicts` (gives the paper's intervals).
        band: the scorecard's band (a factor > 1).

    Returns:
        the figure.
    """
    settings = list(dict.fromkeys(zip(comparison.text, comparison.r)))
    families = [f for f in dict.fromkeys(comparison.family) if f != PAPER_EDIT]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    width = 0.6
    offsets = np.linspace(-width / 2, width / 2, len(families) + 1)
    for x, (text, r) in enumerate(settings):
        rows = comparison[(comparison.text == text) & np.isclose(comparison.r, r)]
        paper = rows[rows.family == PAPER_EDIT].iloc[0]
        axes[0].hlines(r, x - width / 2 - 0.1, x + width / 2 + 0.1, color="black", lw=2,
                       label="target r" if x == 0 else None)
        interval = verdicts[(verdicts.text == text) & np.isclose(verdicts.r, r)].iloc[0]
        for ax, column in zip(axes, ("achieved", "error")):
            yerr = None
            if column == "error":
                yerr = [[paper.error - interval.low], [interval.high - paper.error]]
            ax.errorbar(x + offsets[0], paper[column], yerr=yerr, color="C0", marker="*", ms=12, capsize=3, ls="",
                        label=f"{PAPER_EDIT} (interval over texts)" if x == 0 else None)
            for i, family in enumerate(families):
                values = rows.loc[rows.family == family, column].to_numpy()
                jitter = np.linspace(-0.04, 0.04, len(values))
                ax.scatter(x + offsets[i + 1] + jitter, values, color=f"C{i + 1}", marker=NULL_MARKERS[i % 4],
                           s=12, alpha=0.6, label=f"null: {family} (one seed each)" if x == 0 else None)
                mean = math.exp(np.log(values).mean()) if column == "achieved" else values.mean()
                ax.scatter([x + offsets[i + 1]], [mean], facecolor="none", edgecolor=f"C{i + 1}", s=90,
                           marker=NULL_MARKERS[i % 4], label=f"null: {family}, mean" if x == 0 else None)
    labels = [f"{text}\nr = {r:g}" if r >= 1 else f"{text}\nr = 1/{1 / r:g}" for text, r in settings]
    for ax in axes:
        ax.set_xticks(range(len(settings)), labels, fontsize=8)
    axes[0].set(yscale="log", ylabel="achieved ratio α'_w / α_w (median over tokens)",
                title="achieved against target")
    axes[1].axhline(math.log(band), color="grey", ls="--", lw=1, label=f"band: log {band:g}")
    axes[1].set(yscale="log", ylabel="median |log(achieved / target)| (nats)", title="steering error")
    handles, labels = axes[1].get_legend_handles_labels()
    target_handles, target_labels = axes[0].get_legend_handles_labels()
    keep = [i for i, label in enumerate(target_labels) if label == "target r"]
    fig.legend(handles + [target_handles[i] for i in keep], labels + [target_labels[i] for i in keep],
               loc="outside lower center", ncol=3, fontsize=8)
    return fig


def plot_ratio_band(ax, summary: pd.DataFrame, label: str, color=None, band: bool = True) -> None:
    """Median achieved ratio against target (log-log) with the interquartile band."""
    (line,) = ax.plot(summary["target"], summary["median"], marker="o", ms=3, label=label, color=color)
    if band:
        ax.fill_between(summary["target"], summary["q25"], summary["q75"], color=line.get_color(), alpha=0.2, lw=0)
    ax.set(xscale="log", yscale="log")


def plot_identity(ax, r_values: Sequence[float]) -> None:
    """The identity line achieved = target over the range of ``r_values``."""
    span = [min(r_values), max(r_values)]
    ax.plot(span, span, color="black", lw=1, ls="--", label="achieved = target")


def plot_k_choice(mechanics: pd.DataFrame, sweep, mask_indices: Sequence[int], r_headline: float, row_norm: float):
    """Section 2.2's three panels against the number of masked dimensions k.

    Left: held-out median ``|log(achieved/target)|`` per k at four ratios, with the references' mean error. Middle:
    the edit's norm per unit log r relative to ``row_norm`` (a typical row of E). Right: the logit shift per unit
    log r, mean ± std over held-out positions and mean over the training windows.

    Args:
        mechanics: from :func:`utils.steering.tables.edit_mechanics` (mask rows have a k, references none).
        sweep: the held-out sweep whose edits are the rows of ``mechanics``; ``mask_indices`` are its mask edits.
    """
    masks, references = mechanics[mechanics.k.notna()], mechanics[mechanics.k.isna()].set_index("edit")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), layout="constrained")
    for r in (1 / r_headline, 1 / 5, 5, r_headline):
        axes[0].plot(masks.k, [np.median(np.abs(sweep.log_error[i, sweep.r_index(r)])) for i in mask_indices],
                     marker="o", ms=3, label=f"r = {r:g}")
    for label, style in (("minimal-norm along A", ":"), ("logit bias log r", "--")):
        axes[0].axhline(references.loc[label, "held-out error"], color="grey", ls=style,
                        label=f"{label} (mean over r)")
    axes[0].set(xscale="log", yscale="log", xlabel="masked dimensions k", ylabel="nats",
                title="held-out median |log(achieved / target)|")
    axes[1].plot(masks.k, masks["‖ΔE_w‖ per unit log r"] / row_norm, marker="o", ms=3, label="Ω A⁻¹ mask")
    axes[1].axhline(references.loc["minimal-norm along A", "‖ΔE_w‖ per unit log r"] / row_norm, color="grey",
                    ls=":", label="minimal-norm along A")
    axes[1].set(xscale="log", yscale="log", xlabel="masked dimensions k", ylabel="‖ΔE_w‖ / median ‖E_w‖",
                title="size of the edit per unit log r")
    axes[2].errorbar(masks.k, masks["mean shift (held-out)"], yerr=masks["std of shift (held-out)"], marker="o",
                     ms=3, capsize=2, label="held-out: mean ± std over positions")
    axes[2].plot(masks.k, masks["mean shift (training)"], marker="s", ms=3, ls="", label="training windows: mean")
    axes[2].axhline(1, color="black", ls="--", lw=1, label="logit bias (exactly 1)")
    axes[2].set(xscale="log", xlabel="masked dimensions k", ylabel="c = logit shift / log r",
                title="logit shift per unit log r")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def plot_steerable_ranges(ranges: pd.DataFrame, labels: Sequence[str], bucket_labels: pd.Series, r_grid):
    """Section 2.6's bars: per frequency bucket and edit, the steerable ratio up (bar up) and down (bar down).

    Args:
        ranges: from :func:`utils.steering.tables.steerable_ranges`.
        labels: the edits to show, in order.
        bucket_labels: the label of each bucket, indexed by bucket.
        r_grid: the sweep's ratios (the y ticks; dotted lines at its ends).
    """
    fig, ax = plt.subplots(figsize=(9, 4.4), layout="constrained")
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        part = ranges[ranges.edit == label]
        x = part["bucket"].to_numpy() + (i - (len(labels) - 1) / 2) * width
        bars = ax.bar(x, np.log10(part["r up"]), width, label=label)
        ax.bar(x, np.log10(part["r down"]), width, color=bars.patches[0].get_facecolor())
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(bucket_labels.index, bucket_labels, fontsize=8)
    ax.set_yticks(np.log10(r_grid), [f"{r:g}" for r in r_grid], fontsize=8)
    for limit in (np.min(r_grid), np.max(r_grid)):
        ax.axhline(np.log10(limit), color="grey", ls=":", lw=1)
    ax.set(xlabel="frequency bucket (train α)", ylabel="steerable ratio (log scale)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig
