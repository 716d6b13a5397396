"""Execute a chapter with papermill (reusing an up-to-date run), and rerun a template over a grid of parameters,
each run in a folder of its own with its own results file.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import papermill

from utils import cache
from utils.paths import BOOK_DIR, RUNS_DIR

from .chapters import TEMPLATES
from .stamps import chapter_stamp


@dataclass
class ChapterRun:
    chapter: str
    seconds: float
    cached: bool
    output: Path


def execute_chapter(
    chapter: str,
    parameters: dict[str, Any],
    runs_dir: Path = RUNS_DIR,
    *,
    force: bool = False,
    results_dir: Path | None = None,
    notebook: Path | None = None,
) -> ChapterRun:
    """Execute ``book/<chapter>.ipynb`` with papermill into ``runs_dir`` unless an up-to-date run is there.

    Args:
        results_dir: where the run writes its results file (``LOGLINEAR_RESULTS`` for the kernel); None keeps the
            environment's.
        notebook: the notebook to execute, when it is not ``book/<chapter>.ipynb`` (the output is still named
            ``<chapter>.ipynb``).

    Raises:
        papermill.PapermillExecutionError: a cell failed (the partial notebook is kept for inspection, unstamped).
    """

    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    output = runs_dir / f"{chapter}.ipynb"
    stamp_path = runs_dir / f"{chapter}.stamp"
    stamp = chapter_stamp(chapter, parameters, results_dir)
    if not force and output.exists() and stamp_path.exists() and stamp_path.read_text() == stamp:
        return ChapterRun(chapter, 0.0, True, output)
    stamp_path.unlink(missing_ok=True)
    previous = os.environ.get("LOGLINEAR_RESULTS")
    if results_dir is not None:  # the kernel inherits it; the chapter's start_run starts the file afresh
        os.environ["LOGLINEAR_RESULTS"] = str(results_dir)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook or BOOK_DIR / f"{chapter}.ipynb"),
            str(output),
            parameters=parameters,
            cwd=str(BOOK_DIR),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
    finally:
        if previous is None:
            os.environ.pop("LOGLINEAR_RESULTS", None)
        else:
            os.environ["LOGLINEAR_RESULTS"] = previous
    seconds = time.perf_counter() - start
    stamp_path.write_text(stamp)
    (runs_dir / f"{chapter}.seconds").write_text(f"{seconds:.1f}")
    return ChapterRun(chapter, seconds, False, output)


def rerun_grid(template: str, grid: list[dict[str, Any]], runs_root: Path) -> list[dict[str, Any]]:
    """Execute the notebook ``book/<template>.ipynb`` once per parameter set, each run in a folder of its own.

    The run with parameters ``p`` goes to ``runs_root/<hash of p>/``, so pages that share ``runs_root`` share their
    identical runs; it is announced by a label (the parameters that differ between the runs of the grid, as
    ``name-value`` pairs). Each folder holds the executed notebook, its stamp (an unchanged run is reused) and its
    own results file ``<template>.json``, which never touches the published book's files. Returns each run's results
    (the parsed JSON), in grid order.
    """
    if template not in TEMPLATES:
        raise ValueError(f"template={template!r} is not a rerun template; choose one of {list(TEMPLATES)}")
    varying = [name for name in dict.fromkeys(key for parameters in grid for key in parameters)
               if len({json.dumps(parameters.get(name), sort_keys=True, default=str) for parameters in grid}) > 1]
    outputs = []
    for parameters in grid:
        label = "_".join(f"{name}-{Path(str(parameters.get(name))).name}" for name in varying) or "run"
        digest = cache.key_of(parameters)[:8]
        folder = Path(runs_root) / digest
        run = execute_chapter(template, parameters, folder, results_dir=folder)
        print(f"[rerun] {template} {label} ({digest}): {'reused' if run.cached else f'{run.seconds:.0f} s'}",
              flush=True)
        outputs.append(json.loads((folder / f"{template}.json").read_text()))
    return outputs
