"""Execute a chapter with papermill (reusing an up-to-date run), several at once in processes of their own, and rerun
a template over a grid of parameters, each run in a folder of its own with its own results file.

Every kernel runs its math libraries (torch, numpy's BLAS) on :data:`KERNEL_THREADS` thread, whatever the machine:
a threaded reduction sums in an order that depends on the number of threads, so a fixed number makes the book's
numbers the same on a 2-core and on a 64-core machine (of one instruction set). The machine's cores are used by
executing several notebooks at once (``jobs``): on two cores, two one-thread kernels side by side did the work of
two two-thread kernels one after the other in 22% less time (the rerun template's runs, measured), because the
pages' single-threaded parts (Python, small solves, linear programs) then overlap.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import papermill

from utils import cache
from utils.paths import BOOK_DIR, RUNS_DIR
from utils.validation import check_positive_int

from .chapters import TEMPLATES
from .stamps import chapter_stamp

KERNEL_THREADS = 1  # threads of each kernel's torch and BLAS: fixed, so that the numbers never depend on the machine
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
JOBS_ENV = "BOOKBUILD_JOBS"  # how many notebooks a build executes at once; the rerun pages' grids read it too


def default_jobs() -> int:
    """Notebooks executed at once by default: ``$BOOKBUILD_JOBS`` when set, else one per core this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    value = os.environ.get(JOBS_ENV)
    if not value:
        return cores
    if not value.strip().isdigit():
        raise ValueError(f"{JOBS_ENV}={value!r} must be a whole number of notebooks executed at once (>= 1)")
    return check_positive_int(JOBS_ENV, int(value))


@dataclass
class ChapterRun:
    chapter: str
    seconds: float
    cached: bool
    output: Path


@contextmanager
def environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """Within the block, ``os.environ`` holds ``overrides`` (a kernel started in it inherits them); restored after.
    Process-wide: concurrent executions run in processes of their own (:func:`execute_chapters`)."""
    previous = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def is_up_to_date(chapter: str, parameters: dict[str, Any], runs_dir: Path = RUNS_DIR,
                  results_dir: Path | None = None) -> bool:
    """Whether ``runs_dir`` holds a finished run of ``chapter`` whose stamp matches what it depends on now."""
    runs_dir = Path(runs_dir)
    output, stamp_path = runs_dir / f"{chapter}.ipynb", runs_dir / f"{chapter}.stamp"
    return (output.exists() and stamp_path.exists()
            and stamp_path.read_text() == chapter_stamp(chapter, parameters, results_dir, KERNEL_THREADS))


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

    The kernel runs torch and BLAS on :data:`KERNEL_THREADS` thread.

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
    if not force and is_up_to_date(chapter, parameters, runs_dir, results_dir):
        return ChapterRun(chapter, 0.0, True, output)
    stamp_path = runs_dir / f"{chapter}.stamp"
    stamp_path.unlink(missing_ok=True)
    overrides = dict.fromkeys(THREAD_VARIABLES, str(KERNEL_THREADS))
    if results_dir is not None:  # the kernel inherits it; the chapter's start_run starts the file afresh
        overrides["LOGLINEAR_RESULTS"] = str(results_dir)
    start = time.perf_counter()
    with environment(overrides):
        papermill.execute_notebook(
            str(notebook or BOOK_DIR / f"{chapter}.ipynb"),
            str(output),
            parameters=parameters,
            cwd=str(BOOK_DIR),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
    seconds = time.perf_counter() - start
    stamp_path.write_text(chapter_stamp(chapter, parameters, results_dir, KERNEL_THREADS))
    (runs_dir / f"{chapter}.seconds").write_text(f"{seconds:.1f}")
    return ChapterRun(chapter, seconds, False, output)


def execute_chapters(
    tasks: Mapping[str, Mapping[str, Any]],
    *,
    jobs: int,
    after: Mapping[str, Sequence[str]] | None = None,
    announce: Callable[[str], None] = print,
    function: Callable[..., ChapterRun] = execute_chapter,
) -> dict[str, ChapterRun]:
    """Execute several notebooks, up to ``jobs`` at once, each in a process of its own, in the order of ``tasks``
    as far as ``after`` allows.

    Args:
        tasks: name -> keyword arguments of ``function`` (:func:`execute_chapter`); a task whose run is up to date
            (:func:`is_up_to_date`) is reused without starting a process.
        after: name -> names of tasks that must finish first (those not in ``tasks`` are ignored): a page that reads
            another's results, or reuses the cache entries another writes.
        announce: called with one line as each task starts and ends (the build's progress).
        function: what executes one task (a test's stand-in); it must be importable by a spawned process.

    Returns:
        name -> :class:`ChapterRun`, in the order of ``tasks``.

    Raises:
        The first failed task's error (papermill.PapermillExecutionError for a failed cell), after the tasks already
        started have finished; tasks waiting on a failed one are not started.
    """
    jobs = check_positive_int("jobs", jobs)
    after = {name: [first for first in (after or {}).get(name, ()) if first in tasks] for name in tasks}
    runs: dict[str, ChapterRun] = {}
    waiting = list(tasks)
    for name in list(waiting):
        kwargs = tasks[name]
        if function is execute_chapter and not kwargs.get("force") and is_up_to_date(
                kwargs["chapter"], kwargs["parameters"], kwargs.get("runs_dir", RUNS_DIR), kwargs.get("results_dir")):
            runs[name] = ChapterRun(kwargs["chapter"], 0.0, True, Path(kwargs.get("runs_dir", RUNS_DIR))
                                    / f"{kwargs['chapter']}.ipynb")
            waiting.remove(name)
            announce(f"{name}: up to date, reused")
    running: dict[Future, str] = {}
    failure: BaseException | None = None
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state of this one (or of a kernel)
    with ProcessPoolExecutor(max_workers=min(jobs, max(1, len(waiting))), mp_context=context) as pool:
        while waiting or running:
            ready = [name for name in waiting if all(first in runs for first in after[name])]
            while failure is None and ready and len(running) < jobs:
                name = ready.pop(0)
                waiting.remove(name)
                announce(f"{name}: started")
                running[pool.submit(function, **tasks[name])] = name
            if not running:
                break  # what is left waits on a failed task
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                try:
                    runs[name] = future.result()
                    announce(f"{name}: {runs[name].seconds:.0f} s")
                except Exception as error:  # noqa: BLE001 - the first one is raised once the others have finished
                    announce(f"{name}: failed ({type(error).__name__})")
                    failure = failure or error
    if failure is not None:
        raise failure
    return {name: runs[name] for name in tasks}


def rerun_grid(template: str, grid: list[dict[str, Any]], runs_root: Path, *,
               jobs: int | None = None) -> list[dict[str, Any]]:
    """Execute the notebook ``book/<template>.ipynb`` once per parameter set, each run in a folder of its own, up
    to ``jobs`` runs at once (default :func:`default_jobs`; :func:`execute_chapters`).

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
    folders, tasks = [], {}
    for parameters in grid:
        label = "_".join(f"{name}-{Path(str(parameters.get(name))).name}" for name in varying) or "run"
        digest = cache.key_of(parameters)[:8]
        folder = Path(runs_root) / digest
        folders.append(folder)  # a parameter set listed twice is one task, executed once
        tasks[f"{label} ({digest})"] = {"chapter": template, "parameters": parameters, "runs_dir": folder,
                                        "results_dir": folder}
    execute_chapters(tasks, jobs=default_jobs() if jobs is None else jobs,
                     announce=lambda line: print(f"[rerun] {template} {line}", flush=True))
    return [json.loads((folder / f"{template}.json").read_text()) for folder in folders]
