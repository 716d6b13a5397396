"""Figures of chapter 1 (the log-linear encoding): the fit, sparsity, conditions, transfer, dispersion, basis
control, output-space size."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..encoding.dispersion import STATISTICS


def fit_figure(actual: np.ndarray, predicted: np.ndarray) -> plt.Figure:
    """Predicted against actual ``-log alpha`` (each (n,), nats) of the held-out tokens, counts per hexagon on a log
    scale, with the identity line."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.hexbin(actual, predicted, gridsize=70, bins="log", cmap="mako_r", mincnt=1)
    span = [min(actual.min(), predicted.min()), max(actual.max(), predicted.max())]
    ax.plot(span, span, color="tab:red", lw=1, label="identity")
    ax.set(xlabel=r"actual $-\log\alpha_w$ (nats)", ylabel=r"predicted $A_D\cdot E_w + B_D$ (nats)")
    ax.legend(loc="upper left")
    return fig


def sparsity_figure(A: np.ndarray, sparsity: pd.DataFrame, lasso: pd.DataFrame, full_r2: float) -> plt.Figure:
    """Left: sorted ``|A_i|`` (A: (d,)). Right: held-out R² of OLS refits on the top-k dimensions
    (:func:`utils.encoding.sparsity.sparsity_table`) and along the Lasso path
    (:func:`utils.encoding.sparsity.lasso_table`), with the full fit's ``full_r2``."""
    magnitude = np.sort(np.abs(A))[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(np.arange(1, len(magnitude) + 1), magnitude)
    axes[0].set(xscale="log", yscale="log", xlabel="rank of dimension by |A_i|", ylabel="|A_i| (nats per unit of E)")
    axes[1].plot(sparsity.k, sparsity["held-out R² (OLS on top-k)"], marker="o", label="OLS on the top-k dims of |A|")
    axes[1].plot(lasso.n_nonzero, lasso.r2, marker="s", label="Lasso path")
    axes[1].axhline(full_r2, color="grey", ls="--", lw=1, label="OLS on all dims")
    axes[1].set(xscale="log", xlabel="dimensions used", ylabel="held-out R²")
    axes[1].legend()
    return fig


def conditions_figure(length_fits: pd.DataFrame, entropy_fits: pd.DataFrame) -> plt.Figure:
    """Left: R² by context length against as many random positions (the ``random`` row of ``length_fits``). Right:
    R² against the mean entropy, for the entropy bins and the context-length groups
    (:func:`utils.encoding.dispersion.group_row` rows)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    by_c = length_fits[length_fits.group != "random"]
    random_r2 = length_fits[length_fits.group == "random"].r2.iloc[0]
    axes[0].plot(by_c.group.astype(int), by_c.r2, marker="o", label="positions of one context length")
    axes[0].axhline(random_r2, color="grey", ls="--", lw=1, label="same number of random positions")
    axes[0].set(xscale="log", xlabel="context length (tokens)", ylabel="held-out R²")
    axes[0].legend()
    axes[1].plot(entropy_fits.mean_entropy, entropy_fits.r2, marker="o", label="entropy bins")
    axes[1].plot(by_c.mean_entropy, by_c.r2, marker="^", ls=":", label="context-length groups")
    axes[1].set(xlabel="mean entropy of the predictions (nats)", ylabel="held-out R²")
    axes[1].legend()
    return fig


def transfer_figure(transfer: pd.DataFrame, main_r2: float, equal_r2: np.ndarray, corpus: str) -> plt.Figure:
    """Held-out R² on each corpus of :func:`utils.encoding.transfer.transfer_table`, the main corpus's direction against
    the corpus's own; the main corpus's own fit (``main_r2``) as a line and its equal-position fits (``equal_r2``)
    as a band."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    bars = transfer.melt(id_vars="corpus", value_vars=["R² (A from main corpus)", "R² (own A)"])
    sns.barplot(bars, x="corpus", y="value", hue="variable", ax=ax)
    ax.axhline(main_r2, color="grey", ls="--", lw=1, label=f"{corpus} on itself")
    ax.axhspan(np.min(equal_r2), np.max(equal_r2), color="grey", alpha=0.2, label=f"{corpus}, as many positions")
    ax.set(ylabel="held-out R²", xlabel="corpus whose α is predicted")
    ax.legend(title=None, loc="lower right", fontsize=8)
    return fig


def dispersion_figure(table: pd.DataFrame, statistic: str) -> plt.Figure:
    """Held-out R² of each group of positions against ``statistic`` (left) and the mean entropy (right), one
    marker per grouping. ``table``: :func:`utils.encoding.dispersion.group_row` rows."""
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
    :func:`utils.encoding.basis_control.basis_sparsity` with a ``kind`` column (model, principal, random)."""
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
