"""The grids of runs the rerun pages execute: the models to set side by side (the offline ones, Hugging Face ids or
folders, and chapter 4's trained models) and one run per model, with its context and argmax sample.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..validation import check_positive_int


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
