"""The robustness page: the headline checks of several reruns (sampling seeds x window lengths) side by side."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def checks_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, check) from the results files of ``book/headlines.py`` runs.

    Columns: sample_seed, window_length, chapter, check, value, low, high, threshold, direction, verdict.
    """
    rows = []
    for run in runs:
        parameters = run["_run"]["parameters"]
        for check in run["checks"]["value"]:
            rows.append({"sample_seed": parameters["sample_seed"], "window_length": parameters["window_length"],
                         **{key: check[key] for key in ("chapter", "check", "value", "low", "high", "threshold",
                                                        "direction", "verdict")}})
    if not rows:
        raise ValueError("the runs recorded no checks")
    return pd.DataFrame(rows)


def spread_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per check: the smallest and largest value over the runs, the widest interval, and the verdicts reached."""
    grouped = table.groupby(["chapter", "check"], sort=False)
    spread = pd.DataFrame({
        "smallest value": grouped["value"].min(),
        "largest value": grouped["value"].max(),
        "lowest interval end": grouped["low"].min(),
        "highest interval end": grouped["high"].max(),
        "threshold": grouped["threshold"].first(),
        "verdicts": grouped["verdict"].agg(lambda v: ", ".join(sorted(set(v)))),
        "verdicts agree": grouped["verdict"].agg(lambda v: len(set(v)) == 1),
    })
    return spread.reset_index(level="chapter")


def robustness_figure(table: pd.DataFrame):
    """One panel per check: each run's value with its interval (x: window length and seed); threshold dashed."""
    import matplotlib.pyplot as plt

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
