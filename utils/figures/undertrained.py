"""Figures of chapter 6 (under-trained tokens: the head's indicators, prompting, argmaxability)."""
from __future__ import annotations

from typing import Any

import numpy as np
import seaborn as sns


def plot_indicators(ax: Any, distance: np.ndarray, predicted: np.ndarray, reference: np.ndarray,
                    verified: dict[int, bool], *, max_points: int = 20000, seed: int = 0) -> None:
    """Every token's distance to the unused mean (x) against the encoding's predicted -log alpha (y): a seeded
    sample of at most ``max_points`` tokens in grey, the prompted tokens coloured by the verdict of prompting,
    the reference tokens as black crosses."""
    V = len(distance)
    rng = np.random.default_rng(seed)
    shown = rng.choice(V, min(V, max_points), replace=False)
    ax.scatter(distance[shown], predicted[shown], s=3, color="0.75", alpha=0.5, linewidths=0, rasterized=True,
               label=f"tokens ({len(shown):,} of {V:,})")
    tokens = np.fromiter(verified, dtype=np.int64, count=len(verified))
    hit = np.array([verified[int(t)] for t in tokens], dtype=bool)
    for mask, colour, label in ((~hit, "tab:blue", "prompted: repeated"), (hit, "tab:red", "prompted: under-trained")):
        ax.scatter(distance[tokens[mask]], predicted[tokens[mask]], s=14, color=colour, label=label)
    ax.scatter(distance[reference], predicted[reference], s=30, marker="x", color="black", label="unused reference")
    ax.set_xlabel("distance to the mean unused row (first PC removed)")
    ax.set_ylabel(r"predicted $-\log\alpha$ (encoding, nats)")
    ax.legend(fontsize=8, loc="best")


def plot_agreement(ax: Any, correlations: Any) -> None:
    """Heatmap of the rank correlations between indicators (a square DataFrame), annotated."""

    sns.heatmap(correlations, ax=ax, vmin=-1, vmax=1, cmap="vlag", annot=True, fmt=".2f", cbar=True, square=True,
                cbar_kws={"label": "Spearman rank correlation"})
    ax.tick_params(axis="x", rotation=35)
    ax.tick_params(axis="y", rotation=0)
