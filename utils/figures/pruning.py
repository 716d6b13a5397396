"""Figures of chapter 3 (deleting output-embedding dimensions) that are not in :mod:`utils.pruning`."""
from __future__ import annotations

import numpy as np

from ..pruning import BASIS_LABELS, METRIC_LABELS, RANDOM_BASIS


def basis_curves_figure(table, metrics=("js_alpha", "top1_agreement"), *, thresholds=None,
                        log_metrics=("js_alpha", "mean_kl"), width: float = 4.6, height: float = 3.4):
    """The basis control's deletion curves: one panel per metric, one line per kind of basis.

    Args:
        table: :meth:`utils.pruning.BasisDeletion.table` (columns kind, seed, fraction, and the metrics); random
            bases are drawn as the mean over seeds with a min-max band.
        thresholds: {metric: (direction, value)} drawn as dotted lines where given.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

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
