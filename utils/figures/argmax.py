"""Figures of chapter 5 (argmaxability; Grivas, Bogoychev & Lopez, 2022).

Heads are written ``E`` (V×d; the paper's ``W``) and ``b``; the numbers come from :mod:`utils.argmax`.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.colors import ListedColormap

from ..argmax.prepared import check_head
from ..argmax.verdicts import Verdicts, find_unargmaxable
from ..validation import check_positive_int


def plot_argmax_regions(
    ax: Any,
    E: Any,
    b: Any = None,
    *,
    extent: float = 4.0,
    resolution: int = 400,
    title: str = "",
) -> Verdicts:
    """Colour the plane by the argmax token of ``E @ x + b`` (E (V, 2)), draw the rows, and mark the tokens the
    exact test finds unargmaxable (inside the drawn square, used as the box).  Returns the verdicts."""

    E64, b64 = check_head(E, b)
    if E64.shape[1] != 2:
        raise ValueError(f"plot_argmax_regions draws 2-d heads; got d={E64.shape[1]}")
    V = E64.shape[0]
    verdicts = find_unargmaxable(E64, b64, box=extent, cache=False, progress=False)
    grid = np.linspace(-extent, extent, check_positive_int("resolution", resolution))
    gx, gy = np.meshgrid(grid, grid)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    logits = points @ E64.T + (0.0 if b64 is None else b64)
    winner = logits.argmax(1).reshape(gx.shape)
    colours = sns.color_palette("pastel", V)
    ax.imshow(winner, origin="lower", extent=(-extent, extent, -extent, extent), cmap=ListedColormap(colours),
              vmin=-0.5, vmax=V - 0.5, interpolation="nearest")
    strong = sns.color_palette("dark", V)
    for c in range(V):
        ok = verdicts.status[c] == "argmaxable"
        ax.scatter(*E64[c], s=60, color=strong[c], marker="o" if ok else "X", edgecolor="black", zorder=3)
        label = f"{c}" + ("" if ok else " (unargmaxable)")
        ax.annotate(label, E64[c], textcoords="offset points", xytext=(6, 6), fontsize=9, zorder=4)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    ax.grid(False)
    plt.setp(ax.spines.values(), visible=True)
    return verdicts


def plot_random_sweep(ax: Any, random_sweep: Any) -> None:
    """Share of unargmaxable classes against the dimension (log axis), one line per init and bias, from the frame
    of :func:`utils.argmax.sweeps.random_model_sweep`."""

    labelled = random_sweep.assign(bias=random_sweep.bias.map({True: "with bias", False: "no bias"}))
    sns.lineplot(labelled, x="dim", y="share", hue="init", style="bias", markers=True, ax=ax)
    dims = sorted(set(int(d) for d in random_sweep.dim))
    ax.set(xscale="log", xlabel="dimension d (log scale)", ylabel="share of unargmaxable classes")
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.minorticks_off()  # the log axis would label some minor ticks too (e.g. 4×10¹ beside 50)


def plot_braid_steps(ax: Any, verdicts: Verdicts) -> None:
    """Histogram (log counts) of the reflections the fast test made per tested token (duplicates left out)."""

    steps = verdicts.braid_steps[verdicts.braid_steps >= 0]
    sns.histplot(steps, discrete=True, ax=ax)
    ax.set(yscale="log", xlabel="reflections before the token won (braid reflect)", ylabel="tokens (log scale)")


def plot_pruning(ax: Any, pruning: Any) -> None:
    """Share of tested tokens unargmaxable against the share of dimensions deleted, one line per deletion order
    (the frames of :func:`utils.argmax.sweeps.pruning_sweep` with a column ``order``)."""

    sns.lineplot(pruning.assign(share=pruning.unargmaxable / pruning.tested), x="fraction", y="share", hue="order",
                 marker="o", ax=ax)
    ax.set(xlabel="share of output-embedding dimensions deleted", ylabel="share of tested tokens unargmaxable")
