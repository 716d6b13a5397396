"""The models page's table: each model's headline checks beside the others, with chapter 4's random-initialisation
baselines.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..validation import check_choice
from .grids import TRAINED_PREFIX


def shared_name(names: list[str]) -> str:
    """The words all ``names`` share, with ``*`` where they differ (e.g. a model's own k or d)."""
    split = [name.split(" ") for name in names]
    if len({len(words) for words in split}) != 1:
        return f"{names[0]} (per model)"
    return " ".join(words[0] if len(set(words)) == 1 else "*" for words in zip(*split))


def _argmax_cells(run: dict[str, Any]) -> dict[str, str]:
    """The models table's argmax rows of one run: unargmaxable tokens and duplicate rows, each as "n of tested"
    (with "(sample)" where a sample of the vocabulary was tested)."""
    if "argmax_counts" not in run:
        raise ValueError("a run has no argmax_counts: it was made by an older book/headlines.py; rerun it")
    counts = run["argmax_counts"]["value"]
    of = f" of {counts['tested']:,}" + ("" if counts["whole_vocabulary"] else " (sample)")
    return {"unargmaxable tokens": f"{counts['unargmaxable']:,}{of}",
            "duplicate rows": f"{counts['duplicate']:,}{of}"}


#: the models table's check whose random-initialisation baseline chapter 4 records (chapter and start of the name)
ENCODING_ACCURACY = ("01_encoding", "accurate")


def random_init_baselines(dynamics: Mapping[str, Any] | None) -> dict[str, dict[tuple[str, str], float]]:
    """Chapter 4's random-initialisation baselines, as :func:`models_table` takes them: ``{"chapter 4: <size>":
    {ENCODING_ACCURACY: R² of the encoding fit at step 0}}`` for the size whose step 0 chapter 4 records
    (``initial_encoding_r2_by_size``: every size; in older results ``initial_encoding_r2``, of its ``main_size``);
    ``{}`` when ``dynamics`` (chapter 4's results file, parsed) is None or records none."""
    if dynamics and "initial_encoding_r2_by_size" in dynamics:
        return {f"{TRAINED_PREFIX}{size}": {ENCODING_ACCURACY: float(value)}
                for size, value in dynamics["initial_encoding_r2_by_size"]["value"].items()}
    if not dynamics or "initial_encoding_r2" not in dynamics or "main_size" not in dynamics:
        return {}
    size = dynamics["main_size"]["value"]
    return {f"{TRAINED_PREFIX}{size}": {ENCODING_ACCURACY: float(dynamics["initial_encoding_r2"]["value"])}}


def _passes(value: float, threshold: float, direction: str) -> bool:
    """Whether ``value`` is on the claim's side of ``threshold`` (direction "above" or "below")."""
    check_choice("direction", direction, ("above", "below"))
    return value >= threshold if direction == "above" else value <= threshold


def models_table(runs: list[dict[str, Any]], labels: list[str],
                 baselines: Mapping[str, Mapping[tuple[str, str], float]] | None = None) -> pd.DataFrame:
    """One column per model: its vocabulary, dimension and window, its unargmaxable tokens and duplicate rows (of
    the tokens tested), each headline check as value [low, high] verdict, and the choices the checks rest on (e.g.
    chapter 2's k chosen on training windows). A check is matched across models by its chapter and place; its name
    shows ``*`` where the models' own settings (d) differ.

    A check with a random-initialisation baseline (``baselines``: label -> {(chapter, start of the check's name):
    the baseline's value}, e.g. :func:`random_init_baselines`) gets a row of its own below it, "<check>: random
    initialisation", with the baseline's value ("—" for a model without one); where the baseline itself clears the
    check's threshold, the model's cell says "uninformative": an untrained model would pass the check too.

    Args:
        runs: results of ``book/headlines.py`` runs, one per model, each with the same checks in the same order.
        labels: the models' names as the page shows them, one per run.
    """
    if len(runs) != len(labels):
        raise ValueError(f"labels has {len(labels)} names for {len(runs)} runs")
    baselines = baselines or {}
    unknown = sorted(set(baselines) - set(labels))
    if unknown:
        raise ValueError(f"baselines names models {unknown} that are not among labels={labels}")
    checks = [run["checks"]["value"] for run in runs]
    if len({tuple(check["chapter"] for check in run_checks) for run_checks in checks}) != 1:
        raise ValueError("the runs do not hold the same checks in the same order")
    names = [shared_name([run_checks[i]["check"] for run_checks in checks]) for i in range(len(checks[0]))]
    keys = {key for model in baselines.values() for key in model}
    columns = {}
    for run, run_checks, label in zip(runs, checks, labels):
        model = run["model_description"]["value"]
        column = {"vocabulary V": model["vocabulary"], "dimension d": model["dimension"],
                  "window": run["_run"]["parameters"]["window_length"], **_argmax_cells(run)}
        for name, check in zip(names, run_checks):
            row = f"{check['chapter']}: {name}"
            column[row] = f"{check['value']:.3g} [{check['low']:.3g}, {check['high']:.3g}] {check['verdict']}"
            key = next((k for k in keys if k[0] == check["chapter"] and name.startswith(k[1])), None)
            if key is None:
                continue
            baseline = baselines.get(label, {}).get(key)
            column[f"{row}: random initialisation"] = "—" if baseline is None else f"{baseline:.3g}"
            if baseline is not None and _passes(baseline, check["threshold"], check["direction"]):
                column[row] += f" (uninformative: the random initialisation reaches {baseline:.3g})"
        for choice in run.get("choices", {}).get("value", []):
            column[f"{choice['chapter']}: {choice['choice']}"] = choice["value"]
        columns[label] = column
    return pd.DataFrame(columns)
