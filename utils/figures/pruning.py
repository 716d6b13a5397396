"""Figures of chapter 3 (deleting output-embedding dimensions): deletion curves, the criteria compared, generation,
and the basis control."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from ..pruning.basis_control import MODEL_BASIS, PRINCIPAL_BASIS, RANDOM_BASIS
from ..pruning.criteria import CRITERIA, CRITERION_LABELS
from ..pruning.sweep import THRESHOLDS

METRIC_LABELS: dict[str, str] = {
    "js_alpha": "JS divergence of α (nats)",
    "mean_kl": "mean per-position KL (nats)",
    "top1_agreement": "top-1 agreement",
    "perplexity_new": "perplexity",
    "perplexity_ratio": "perplexity / full-head perplexity",
}



BASIS_LABELS: dict[str, str] = {
    MODEL_BASIS: "model coordinates, smallest |A| first",
    RANDOM_BASIS: "random bases, smallest |QᵀA| first (mean, min-max band)",
    PRINCIPAL_BASIS: "principal directions of E, smallest variance first",
}



def plot_curves(ax, sweep, metric: str, *, threshold: tuple[str, float] | None = None, log: bool = False) -> None:
    """Draw ``metric`` against the deleted share of d (%) on ``ax``, one line per criterion (random: mean over seeds
    with a min-max band).  ``sweep`` must already be restricted to one corpus and group."""

    palette = dict(zip(CRITERIA, sns.color_palette("colorblind", len(CRITERIA))))
    if log:  # fraction 0 has no movement at all: nothing to draw on a log scale
        sweep = sweep[sweep.fraction > 0]
    for criterion, rows in sweep.groupby("criterion", sort=False):
        by_fraction = rows.groupby("fraction")[metric]
        x = 100 * np.asarray(sorted(rows.fraction.unique()))
        mean = by_fraction.mean().to_numpy()
        style = {"color": palette.get(criterion), "label": CRITERION_LABELS.get(criterion, criterion)}
        if criterion == "random":
            ax.fill_between(x, by_fraction.min().to_numpy(), by_fraction.max().to_numpy(), alpha=0.25,
                            color=style["color"], lw=0)
            ax.plot(x, mean, ls="--", **style)
        else:
            ax.plot(x, mean, marker="o", ms=3, **style)
    if threshold is not None:
        ax.axhline(threshold[1], color="black", lw=0.8, ls=":")
    if log:
        ax.set_yscale("log")  # the zero at fraction 0 is left out
    ax.set(xlabel="dimensions deleted (% of d)", ylabel=METRIC_LABELS.get(metric, metric))



def curves_figure(sweep, metrics, *, panels: str | None = None, group: str = "all", thresholds=None,
                  log_metrics=("js_alpha", "mean_kl"), width: float = 4.2, height: float = 3.4):
    """A grid of :func:`plot_curves`: one row per metric, one column per value of ``panels`` (e.g. ``"corpus"``
    or ``"group"``); rows of ``sweep`` are first restricted to ``group`` unless ``panels == "group"``."""

    thresholds = THRESHOLDS if thresholds is None else thresholds
    data = sweep if panels == "group" else sweep[sweep.group == group]
    columns = [None] if panels is None else list(dict.fromkeys(data[panels]))
    fig, axes = plt.subplots(len(metrics), len(columns), figsize=(width * len(columns), height * len(metrics)),
                             squeeze=False, sharex=True)
    for i, metric in enumerate(metrics):
        for j, column in enumerate(columns):
            rows = data if column is None else data[data[panels] == column]
            plot_curves(axes[i, j], rows, metric, threshold=thresholds.get(metric), log=metric in log_metrics)
            if i == 0 and column is not None:
                axes[i, j].set_title(f"{panels}: {column}")
            if i < len(metrics) - 1:
                axes[i, j].set_xlabel("")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 3), bbox_to_anchor=(0.5, 1.0 + 0.02))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.08 / len(metrics)))
    return fig



def generation_figure(generation):
    """MAUVE (left) and diversity / repetition (right) per condition of :func:`generation_study`, one row each."""

    conditions = list(generation.condition)
    y = np.arange(len(conditions))
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(conditions) + 1.6), sharey=True)
    mauve = generation.mauve.to_numpy()
    shown = ~np.isnan(mauve)
    axes[0].barh(y[shown], mauve[shown], xerr=generation.mauve_spread.to_numpy()[shown] / 2, color="tab:blue",
                 height=0.6)
    axes[0].set(xlabel="MAUVE against the reference texts", xlim=(0, 1.05), yticks=y, yticklabels=conditions)
    statistics = [c for c in ("distinct-1", "distinct-2", "rep-4") if c in generation.columns]
    height = 0.8 / len(statistics)
    for i, column in enumerate(statistics):
        axes[1].barh(y - 0.4 + (i + 0.5) * height, generation[column], height=height, label=column)
    axes[1].set(xlabel="share", xlim=(0, 1.05))
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def criteria_figure(scores, overlap: dict[str, float], share: float):
    """Left: each dimension's rank under the other criteria against its rank by ``|A_i|``; right: the share of the
    dimensions ``|A|`` deletes first (``share`` of d) that each criterion also deletes first.

    Args:
        scores: a DataFrame of (d,) scores, one column per non-random criterion (``"abs_A"`` among them).
        overlap: {criterion: shared share} (from :func:`utils.pruning.criteria.deletion_overlap`).
        share: the deleted share of d; also the overlap two unrelated orders have on average.
    """

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    rank_by_A = np.argsort(np.argsort(scores["abs_A"].to_numpy()))
    for criterion in [c for c in scores.columns if c != "abs_A"]:
        axes[0].scatter(rank_by_A, np.argsort(np.argsort(scores[criterion].to_numpy())), s=4, alpha=0.6,
                        label=CRITERION_LABELS[criterion])
    axes[0].set(xlabel="rank by |A_i| (0 = deleted first)", ylabel="rank by the other criterion")
    axes[0].legend(markerscale=3)
    axes[1].bar([CRITERION_LABELS[c] for c in overlap], list(overlap.values()))
    axes[1].axhline(share, color="black", ls=":", lw=0.8, label="expected by chance")
    axes[1].legend()
    axes[1].set(ylabel=f"share of the first {share:.0%} deleted\nthat |A| also deletes first", ylim=(0, 1.05))
    axes[1].tick_params(axis="x", rotation=30)
    for label in axes[1].get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    return fig


def basis_curves_figure(table, metrics=("js_alpha", "top1_agreement"), *, thresholds=None,
                        log_metrics=("js_alpha", "mean_kl"), width: float = 4.6, height: float = 3.4):
    """The basis control's deletion curves: one panel per metric, one line per kind of basis.

    Args:
        table: :meth:`utils.pruning.basis_control.BasisDeletion.table` (columns kind, seed, fraction, and the
            metrics); random bases are drawn as the mean over seeds with a min-max band.
        thresholds: {metric: (direction, value)} drawn as dotted lines where given.
    """

    thresholds = {} if thresholds is None else thresholds
    palette = dict(zip(BASIS_LABELS, sns.color_palette("colorblind", len(BASIS_LABELS))))
    fig, axes = plt.subplots(1, len(metrics), figsize=(width * len(metrics), height), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for kind, rows in table.groupby("kind", sort=False):
            by_fraction = rows.groupby("fraction")[metric]
            x = 100 * np.asarray(sorted(rows.fraction.unique()))
            style = {"color": palette.get(kind), "label": BASIS_LABELS.get(kind, kind)}
            if kind == RANDOM_BASIS:
                ax.fill_between(x, by_fraction.min().to_numpy(), by_fraction.max().to_numpy(), alpha=0.25, lw=0,
                                color=style["color"])
                ax.plot(x, by_fraction.mean().to_numpy(), ls="--", marker="s", ms=3, **style)
            else:
                ax.plot(x, by_fraction.mean().to_numpy(), marker="o", ms=4, **style)
        if metric in thresholds:
            ax.axhline(thresholds[metric][1], color="black", lw=0.8, ls=":")
        if metric in log_metrics:
            ax.set_yscale("log")
        ax.set(xlabel="directions deleted (% of d)", ylabel=METRIC_LABELS.get(metric, metric))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 3), bbox_to_anchor=(0.5, 1.06))
    fig.tight_layout()
    return fig
