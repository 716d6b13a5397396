"""Reruns of the headline checks side by side: over sampling seeds, window lengths and the body's precision (the
robustness page), and over models (the models page)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .activations import compute_activations
from .argmax.verdicts import find_unargmaxable
from .undertrained.indicators import sample_tokens
from .validation import check_choice, check_int, check_positive_int


def models_to_compare(models: list[str], offline: list[str], trained_models: bool,
                      results_folders: list[Path]) -> dict[str, str]:
    """The models of the models page, label -> source: ``models`` (or every ``offline`` model when empty; a folder
    is labelled by its name), then, with ``trained_models``, chapter 4's last checkpoints from the first of
    ``results_folders`` that holds ``04_dynamics.json`` (labelled "chapter 4: <size>"; left out, saying so, when
    none does)."""
    named = {Path(name).name if Path(name).is_dir() else name: name for name in models or offline}
    trained_results = dynamics_results(results_folders)
    if trained_models and trained_results is not None:
        folders = json.loads(trained_results.read_text()).get("final_checkpoints", {}).get("value", {})
        named.update({f"{TRAINED_PREFIX}{size}": folder for size, folder in folders.items()})
    elif trained_models:
        print("chapter 4 has not run in this build yet: its trained models are left out")
    return named


TRAINED_PREFIX = "chapter 4: "


def dynamics_results(results_folders: list[Path]) -> Path | None:
    """Chapter 4's results file in the first of ``results_folders`` that holds one (None when none does)."""
    return next((Path(folder) / "04_dynamics.json" for folder in results_folders
                 if (Path(folder) / "04_dynamics.json").exists()), None)


def models_grid(named: Mapping[str, str], contexts: Mapping[str, int], common: Mapping[str, Any], *,
                window_length: int, argmax_max_tokens: int | None,
                trained_argmax_max_tokens: int | None) -> list[dict[str, Any]]:
    """The models page's runs of ``book/headlines.py``, one per model (``named``: label -> source, as
    :func:`models_to_compare`): ``common`` parameters, the model, its window (``window_length`` capped at the model's
    context, ``contexts``: label -> tokens) and its argmax token sample: ``trained_argmax_max_tokens`` for chapter 4's
    models, ``argmax_max_tokens`` for the others. A sample of None (the whole vocabulary) is left out of the
    parameters, so that a run equal to one of the robustness page keeps its folder and is shared."""
    for name, value in (("argmax_max_tokens", argmax_max_tokens),
                        ("trained_argmax_max_tokens", trained_argmax_max_tokens)):
        if value is not None:
            check_positive_int(name, value)
    grid = []
    for label, source in named.items():
        sample = trained_argmax_max_tokens if label.startswith(TRAINED_PREFIX) else argmax_max_tokens
        grid.append({**common, "model": source, "revision": None,
                     "window_length": min(window_length, contexts[label]),
                     **({} if sample is None else {"argmax_max_tokens": sample})})
    return grid


def headline_passes(loaded: Any, corpus: str, *, window_length: int, sample_seed: int, n_tokens: int,
                    n_tokens_test: int, batch_size: int, store: bool = True) -> dict[str, Any]:
    """The training and held-out passes of the headlines template (:func:`utils.activations.compute_activations`):
    ``{"train": Activations, "test": Activations}``. ``window_length`` must fit the model's context. A pass already
    in the cache (the chapters' own, at their seed and window) is read from it; a new one is written to it only with
    ``store`` (the rerun pages keep each run's numbers in its results file, not its passes)."""

    check_int("window_length", window_length, minimum=2, maximum=loaded.n_ctx)
    return {split: compute_activations(loaded, corpus, split, window_length=window_length, sample_seed=sample_seed,
                                       n_tokens=n_tokens if split == "train" else n_tokens_test,
                                       batch_size=batch_size, store=store)
            for split in ("train", "test")}


def check_rows(checks: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """One JSON-able row per :class:`utils.uncertainty.Check` of each chapter (``{chapter: [Check, ...]}``), in order:
    chapter, check, value, low, high, threshold, direction, verdict."""
    return [{"chapter": chapter, "check": c.name, "value": c.value, "low": c.interval.low, "high": c.interval.high,
             "threshold": c.threshold, "direction": c.direction, "verdict": c.verdict}
            for chapter, chapter_checks in checks.items() for c in chapter_checks]


def choice_rows(choices: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One JSON-able row per choice a chapter's checks rest on (``{chapter: {choice: value}}``, e.g. chapter 2's k
    chosen on training windows), in order: chapter, choice, value. A choice is kept out of the checks' names, so that
    runs that choose differently still share their checks; the rerun pages show it as a row of its own."""
    return [{"chapter": chapter, "choice": name, "value": value}
            for chapter, chapter_choices in choices.items() for name, value in chapter_choices.items()]


def argmax_counts(E: np.ndarray, b: np.ndarray | None, *, max_tokens: int | None, seed: int,
                  **settings: Any) -> dict[str, Any]:
    """How many tokens of the head ``E`` (V, d), ``b`` (V,) or None can never be the strict argmax, by
    :func:`utils.argmax.verdicts.find_unargmaxable` (cached by the head's fingerprint and ``settings``: box,
    patience, start; at chapter 5's settings and token sample its verdicts are reused).

    Args:
        max_tokens: None tests the whole vocabulary (as chapter 5 at its defaults); else a sample of that many tokens
            drawn with ``seed`` (chapter 5's draw, :func:`utils.undertrained.indicators.sample_tokens`).
    Returns:
        tested, unargmaxable, duplicate (tokens whose row has an identical twin), whole_vocabulary (bool) and the
        seconds the verdicts took when computed (the cached value otherwise).
    """

    if max_tokens is not None:
        check_positive_int("argmax_max_tokens", max_tokens)
    tokens = sample_tokens(E.shape[0], max_tokens, seed)
    verdicts = find_unargmaxable(E, b, tokens=tokens, progress=False, **settings)
    counts = verdicts.counts()
    return {"tested": counts["tested"], "unargmaxable": counts["unargmaxable"], "duplicate": counts["duplicate"],
            "whole_vocabulary": tokens is None, "seconds": float(verdicts.meta.get("seconds", float("nan")))}


def checks_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, check) and per (run, choice) from the results files of ``book/headlines.py`` runs.

    Columns: sample_seed, window_length, precision (asked for), precision_used (after any fallback), kind ("check",
    or "choice" for a value the checks rest on, such as chapter 2's chosen k, recorded by :func:`choice_rows`),
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


def _checks_only(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`checks_table` that are checks (a table without a ``kind`` column holds only checks)."""
    return table if "kind" not in table else table[table["kind"] == "check"]


def spread_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per check: the smallest and largest value over the runs, the widest interval, and the verdicts reached; then
    one row per choice the checks rest on (kind "choice", e.g. chapter 2's chosen k): its smallest and largest value
    and its value in each run ("by run", as window/seed: value), with no interval, threshold or verdict.

    Rows are grouped by chapter and name, so a check whose runs rest on different choices is still one check.
    """
    checks = _checks_only(table)
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


def choice_spread_text(spread: pd.DataFrame) -> str:
    """The choices of :func:`spread_table` in words, e.g. "02_steering's k chosen on training windows: from 4 to 64
    over the runs (w128/s0: 32, ...)"; "no choice was recorded" when the spread has none."""
    choices = spread[spread["kind"] == "choice"]
    if choices.empty:
        return "no choice was recorded"
    parts = []
    for name, row in choices.iterrows():
        low, high = row["smallest value"], row["largest value"]
        extent = f"{low:g} in every run" if low == high else f"from {low:g} to {high:g} over the runs"
        parts.append(f"{row['chapter']}'s {name}: {extent} ({row['by run']})")
    return "; ".join(parts)


def robustness_figure(table: pd.DataFrame):
    """One panel per check: each run's value with its interval (x: window length and seed); threshold dashed.
    Choices (:func:`checks_table`'s kind "choice") have no panel: the spread table shows them."""

    table = _checks_only(table)
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


def precision_table(table: pd.DataFrame, other: str = "bfloat16") -> pd.DataFrame:
    """Per check: the float32 run against the run that asked for ``other``, at the same seed and window length.

    Columns: chapter, check, float32 value and interval, the other run's value, interval and the precision it used,
    difference (other - float32), the float32 interval's half-width, and whether the difference lies within it.
    """
    table = _checks_only(table)
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
    precision other than float32; ``table``: :func:`checks_table` of every run, ``runs``: their results files), and
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


def _shared_name(names: list[str]) -> str:
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
    names = [_shared_name([run_checks[i]["check"] for run_checks in checks]) for i in range(len(checks[0]))]
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


def models_figure(runs: list[dict[str, Any]], labels: list[str]):
    """One panel per headline check: each model's value with its interval over texts; the threshold dashed."""

    checks = [run["checks"]["value"] for run in runs]
    names = [_shared_name([run_checks[i]["check"] for run_checks in checks]) for i in range(len(checks[0]))]
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
