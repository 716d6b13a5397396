"""Figures of the rerun pages: the robustness page's checks over the runs and the models page's checks per model.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..reruns.models import shared_name
from ..reruns.spread import checks_only


def robustness_figure(table: pd.DataFrame):
    """One panel per check: each run's value with its interval (x: window length and seed); threshold dashed.
    Choices (:func:`utils.reruns.spread.checks_table`'s kind "choice") have no panel: the spread table shows them."""

    table = checks_only(table)
    checks = list(dict.fromkeys(zip(table["chapter"], table["check"])))
    n_columns = min(2, len(checks))
    n_rows = int(np.ceil(len(checks) / n_columns))
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(6.4 * n_columns, 2.9 * n_rows), squeeze=False,
                             layout="constrained")
    for ax, (chapter, name) in zip(axes.flat, checks):
        part = table[(table["chapter"] == chapter) & (table["check"] == name)].sort_values(
            ["window_length", "sample_seed"])
        x = np.arange(len(part))
        colours = {w: f"C{i}" for i, w in enumerate(sorted(part["window_length"].unique()))}
        for window, colour in colours.items():
            chosen = (part["window_length"] == window).to_numpy()
            rows = part[chosen]
            ax.errorbar(x[chosen], rows["value"], yerr=[rows["value"] - rows["low"], rows["high"] - rows["value"]],
                        fmt="o", color=colour, capsize=3, label=f"window {window}")
        ax.axhline(part["threshold"].iloc[0], color="grey", ls="--", lw=1, label="threshold")
        ax.set_xticks(x, [f"seed {s}" for s in part["sample_seed"]], fontsize=7)
        ax.set_title(f"{chapter}: {name}", fontsize=8, loc="left")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(checks):]:
        ax.set_visible(False)
    return fig


def models_figure(runs: list[dict[str, Any]], labels: list[str]):
    """One panel per headline check: each model's value with its interval over texts; the threshold dashed."""

    checks = [run["checks"]["value"] for run in runs]
    names = [shared_name([run_checks[i]["check"] for run_checks in checks]) for i in range(len(checks[0]))]
    n_columns = min(2, len(names))
    n_rows = int(np.ceil(len(names) / n_columns))
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(6.4 * n_columns, 2.6 * n_rows), squeeze=False,
                             layout="constrained")
    x = np.arange(len(labels))
    for i, (ax, name) in enumerate(zip(axes.flat, names)):
        rows = [run_checks[i] for run_checks in checks]
        values = np.array([row["value"] for row in rows])
        ax.errorbar(x, values, yerr=[values - [row["low"] for row in rows], [row["high"] for row in rows] - values],
                    fmt="o", capsize=3)
        ax.axhline(rows[0]["threshold"], color="grey", ls="--", lw=1)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_title(f"{rows[0]['chapter']}: {name}", fontsize=8, loc="left")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    return fig
