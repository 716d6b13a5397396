"""The rerun pages' wording decisions: words chosen from computed numbers.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .spread import precision_table


def choice_spread_text(spread: pd.DataFrame) -> str:
    """The choices of :func:`utils.reruns.spread.spread_table` in words, e.g. "02_steering's k chosen on training
    windows: from 4 to 64 over the runs (w128/s0: 32, ...)"; "no choice was recorded" when the spread has none."""
    choices = spread[spread["kind"] == "choice"]
    if choices.empty:
        return "no choice was recorded"
    parts = []
    for name, row in choices.iterrows():
        low, high = row["smallest value"], row["largest value"]
        extent = f"{low:g} in every run" if low == high else f"from {low:g} to {high:g} over the runs"
        parts.append(f"{row['chapter']}'s {name}: {extent} ({row['by run']})")
    return "; ".join(parts)


def precision_statement(precision_used: str, reason: str, comparison: pd.DataFrame | None,
                        other: str = "bfloat16") -> str:
    """The page's sentence on precision: what a run asking for ``other`` uses on this machine and why, and, when it
    ran in ``other``, how far its numbers moved against the float32 intervals (``comparison``: :func:`precision_table`;
    None when the run asked for ``other`` ran in float32, as ``"auto"`` does where bf16 does not pay)."""
    if precision_used == "float32":
        return (f"Asked for {other}, this machine ran float32 ({reason}), so that run repeats the float32 numbers. "
                f"On a machine with fast bf16 units this section sets each headline number beside its bf16 value.")
    if comparison is None or comparison.empty:
        raise ValueError(f"a run in {other} needs its comparison table")
    n_within, n_checks = int(comparison["within the interval"].sum()), len(comparison)
    largest = float((comparison["difference"].abs() / comparison["interval half-width"].clip(lower=1e-12)).max())
    verdict = ("every difference lies within its float32 interval over texts" if n_within == n_checks
               else f"only {n_within} of {n_checks} differences lie within their float32 intervals over texts")
    return (f"The {other} run used {other} ({reason}); {verdict} (the largest difference is {largest:.2f} "
            f"interval half-widths).")


def precision_statements(table: pd.DataFrame, runs: list[dict[str, Any]],
                         others: list[str]) -> tuple[str, pd.DataFrame | None]:
    """The robustness page's precision section: one sentence per precision in ``others`` (the runs that asked for a
    precision other than float32; ``table``: :func:`utils.reruns.spread.checks_table` of every run, ``runs``: their
    results files), and
    the comparison tables of those that ran in bf16 stacked (None when none did). With no ``others``, a sentence
    saying that the book is float32 and how to ask for the comparison."""
    if not others:
        return ("The book's numbers are float32, on every machine; no bfloat16 run was asked for (set precisions to "
                "include \"bfloat16\" or \"auto\" to repeat one run with the body in bf16).", None)
    sentences, shown = [], []
    for other in others:
        comparison = precision_table(table, other)
        used = str(comparison["precision used"].iloc[0])
        run = next(r for r in runs if r["_run"]["parameters"].get("precision") == other)
        reason = run["_run"].get("model", {}).get("precision_reason", "")
        sentences.append(precision_statement(used, reason, comparison if used != "float32" else None, other))
        if used != "float32":
            shown.append(comparison)
    return " ".join(sentences), pd.concat(shown) if shown else None
