"""The robustness page's tables: every check of every run, and the spread of each check over the runs (grouped by
check, the choices of the runs apart), with what the body's precision changes.
"""
from __future__ import annotations

from typing import Any

import pandas as pd


def checks_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, check) and per (run, choice) from the results files of ``book/headlines.py`` runs.

    Columns: sample_seed, window_length, precision (asked for), precision_used (after any fallback), kind ("check",
    or "choice" for a value the checks rest on, such as chapter 2's chosen k, recorded by
    :func:`utils.reruns.headlines.choice_rows`),
    chapter, check (the check's or the choice's name), value, low, high, threshold, direction, verdict (the last
    five None for a choice).
    """
    rows = []
    for run in runs:
        parameters = run["_run"]["parameters"]
        asked = parameters.get("precision", "float32")
        used = run["_run"].get("model", {}).get("precision", asked)
        common = {"sample_seed": parameters["sample_seed"], "window_length": parameters["window_length"],
                  "precision": asked, "precision_used": used}
        for check in run["checks"]["value"]:
            rows.append({**common, "kind": "check",
                         **{key: check[key] for key in ("chapter", "check", "value", "low", "high", "threshold",
                                                        "direction", "verdict")}})
        for choice in run.get("choices", {}).get("value", []):
            rows.append({**common, "kind": "choice", "chapter": choice["chapter"], "check": choice["choice"],
                         "value": choice["value"], "low": None, "high": None, "threshold": None, "direction": None,
                         "verdict": None})
    if not rows:
        raise ValueError("the runs recorded no checks")
    return pd.DataFrame(rows)


def checks_only(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`checks_table` that are checks (a table without a ``kind`` column holds only checks)."""
    return table if "kind" not in table else table[table["kind"] == "check"]


def spread_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per check: the smallest and largest value over the runs, the widest interval, and the verdicts reached; then
    one row per choice the checks rest on (kind "choice", e.g. chapter 2's chosen k): its smallest and largest value
    and its value in each run ("by run", as window/seed: value), with no interval, threshold or verdict.

    Rows are grouped by chapter and name, so a check whose runs rest on different choices is still one check.
    """
    checks = checks_only(table)
    grouped = checks.groupby(["chapter", "check"], sort=False)
    spread = pd.DataFrame({
        "kind": "check",
        "smallest value": grouped["value"].min(),
        "largest value": grouped["value"].max(),
        "lowest interval end": grouped["low"].min(),
        "highest interval end": grouped["high"].max(),
        "threshold": grouped["threshold"].first(),
        "verdicts": grouped["verdict"].agg(lambda v: ", ".join(sorted(set(v)))),
        "verdicts agree": grouped["verdict"].agg(lambda v: len(set(v)) == 1).astype(object),
        "by run": "",
    })
    choices = table[table["kind"] == "choice"] if "kind" in table else table.iloc[:0]
    rows = []
    for (chapter, name), part in choices.groupby(["chapter", "check"], sort=False):
        part = part.sort_values(["window_length", "sample_seed"])
        rows.append({"chapter": chapter, "check": name, "kind": "choice", "smallest value": part["value"].min(),
                     "largest value": part["value"].max(), "verdicts": "", "verdicts agree": None,
                     "by run": ", ".join(f"w{w}/s{s}: {v:g}" for w, s, v in
                                         zip(part["window_length"], part["sample_seed"], part["value"]))})
    if rows:
        spread = pd.concat([spread, pd.DataFrame(rows).set_index(["chapter", "check"])])
    return spread.reset_index(level="chapter")


def precision_table(table: pd.DataFrame, other: str = "bfloat16") -> pd.DataFrame:
    """Per check: the float32 run against the run that asked for ``other``, at the same seed and window length.

    Columns: chapter, check, float32 value and interval, the other run's value, interval and the precision it used,
    difference (other - float32), the float32 interval's half-width, and whether the difference lies within it.
    """
    table = checks_only(table)
    base = table[table["precision"] == "float32"]
    asked = table[table["precision"] == other]
    if asked.empty:
        raise ValueError(f"no run asked for precision={other!r}")
    keys = ["sample_seed", "window_length", "chapter", "check"]
    merged = base.merge(asked, on=keys, suffixes=("", f" {other}"))
    if merged.empty:
        raise ValueError(f"no float32 run shares a seed and window length with the {other} run")
    half_width = (merged["high"] - merged["low"]) / 2
    difference = merged[f"value {other}"] - merged["value"]
    return pd.DataFrame({
        "chapter": merged["chapter"], "check": merged["check"],
        "float32": merged["value"], "float32 low": merged["low"], "float32 high": merged["high"],
        other: merged[f"value {other}"], f"{other} low": merged[f"low {other}"],
        f"{other} high": merged[f"high {other}"], "precision used": merged[f"precision_used {other}"],
        "difference": difference, "interval half-width": half_width,
        "within the interval": difference.abs() <= half_width,
    })
