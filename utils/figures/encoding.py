"""Figures of chapter 1 (the log-linear encoding): dispersion, basis control, output-space size."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..conditions import STATISTICS


def dispersion_figure(table: pd.DataFrame, statistic: str) -> plt.Figure:
    """Held-out R² of each group of positions against ``statistic`` (left) and the mean entropy (right), one
    marker per grouping. ``table``: :func:`utils.conditions.group_row` rows."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, column in zip(axes, (statistic, "mean_entropy")):
        sns.scatterplot(table, x=column, y="r2", hue="grouping", style="grouping", s=55, ax=ax)
        ax.set(xlabel=STATISTICS[column], ylabel="held-out R²")
        if column != "mean_entropy" and table[column].min() > 0:
            ax.set_xscale("log")
    axes[1].get_legend().remove()
    axes[0].legend(title=None, fontsize=8)
    return fig


def basis_figure(table: pd.DataFrame) -> plt.Figure:
    """Share of |A| (left) and of the R² kept (right) by the top-k dimensions, against k: the model's basis, the
    principal directions of E, and the random bases' mean with their range. ``table``:
    :func:`utils.conditions.basis_sparsity` with a ``kind`` column (model, principal, random)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, column, label in zip(axes, ("abs_share", "kept_share"), ("share of sum |A|", "share of the full R² kept")):
        random = table[table.kind == "random"].groupby("k")[column].agg(["mean", "min", "max"])
        ax.fill_between(random.index, random["min"], random["max"], alpha=0.25, label="random bases (range)")
        ax.plot(random.index, random["mean"], ls="--", label="random bases (mean)")
        for kind, marker in (("model", "o"), ("principal", "s")):
            part = table[table.kind == kind]
            ax.plot(part.k, part[column], marker=marker, label=f"{kind} basis")
        ax.set(xscale="log", xlabel="dimensions kept (largest |A|)", ylabel=label)
    axes[1].legend(fontsize=8)
    return fig


def output_space_figure(table: pd.DataFrame) -> plt.Figure:
    """Held-out R² against the number of tokens in the softmax, each subset a point and the mean a line.
    ``table``: columns ``size`` and ``r2``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(table["size"], table.r2, alpha=0.6, label="one vocabulary subset")
    means = table.groupby("size").r2.mean()
    ax.plot(means.index, means.to_numpy(), marker="o", label="mean over subsets")
    ax.set(xscale="log", xlabel="output-space size (tokens in the softmax)", ylabel="held-out R² (fixed rows)")
    ax.set_xticks(np.asarray(means.index), [f"{int(v):,}" for v in means.index])
    ax.legend()
    return fig
