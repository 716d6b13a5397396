"""Execute a chapter with papermill (reusing an up-to-date run), several at once in processes of their own, and rerun
a template over a grid of parameters, each run in a folder of its own with its own results file.

Every kernel runs its math libraries (torch, numpy's BLAS) on :data:`KERNEL_THREADS` thread, whatever the machine:
a threaded reduction sums in an order that depends on the number of threads, so a fixed number makes the book's
numbers the same on a 2-core and on a 64-core machine (of one instruction set). The machine's cores are used by
executing several notebooks at once (``jobs``): on two cores, two one-thread kernels side by side did the work of
two two-thread kernels one after the other in 22% less time (the rerun template's runs, measured), because the
pages' single-threaded parts (Python, small solves, linear programs) then overlap.

A build holds ``jobs`` *core slots* (:func:`core_slots`): every notebook it executes computes only while it holds
one (:func:`core_slot`), the runs that a rerun page executes included, while that page's own kernel, which mostly
waits for them, holds none. So a rerun page's runs and the other pages share the cores: when a grid is down to its
last run, the next page takes the free core instead of leaving it idle. The runs of a page of low
priority (:data:`bookbuild.chapters.LOW_PRIORITY_PAGES`; ``$BOOKBUILD_LOW_PRIORITY``, which the runs it executes
inherit) take a slot only once it has been free for :data:`LOW_PRIORITY_GRACE_SECONDS` (ample time for a grid to
start its next run), so any other waiting notebook takes it first: their short runs then fill the cores at the end of
the build instead of leaving one core alone with the robustness page's last long run.

Each kernel's allocator keeps the memory it frees (:data:`ALLOCATOR_VARIABLES`): by default glibc hands every block
above a few MB back to the system and maps it afresh, zeroed page by page, at the next allocation of that size; the
pages' loops allocate such blocks thousands of times (measured: a chapter 4 training step 4% faster, the headline
checks 10%, the model pass unchanged). Memory layout only: no number changes.
"""
from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import papermill

from utils import cache
from utils.paths import BOOK_DIR, RUNS_DIR
from utils.validation import check_positive_int

from .chapters import LOW_PRIORITY_PAGES, TEMPLATES
from .stamps import chapter_stamp

KERNEL_THREADS = 1  # threads of each kernel's torch and BLAS: fixed, so that the numbers never depend on the machine
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
JOBS_ENV = "BOOKBUILD_JOBS"  # how many notebooks a build executes at once; the rerun pages' grids read it too
SLOTS_ENV = "BOOKBUILD_SLOTS"  # the folder of the build's core slots, one lock file each (:func:`core_slots`)
LOW_PRIORITY_ENV = "BOOKBUILD_LOW_PRIORITY"  # "1": the process lets any other take a freed core slot first
LOW_PRIORITY_GRACE_SECONDS = 2.0  # a slot freed this recently goes to a waiter of the default priority, if one comes
# glibc's allocator: blocks up to 1 GB come from (and go back to) the process's heap, which keeps up to 4 GB free
ALLOCATOR_VARIABLES = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


def default_jobs() -> int:
    """Notebooks executed at once by default: ``$BOOKBUILD_JOBS`` when set, else one per core this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    value = os.environ.get(JOBS_ENV)
    if not value:
        return cores
    if not value.strip().isdigit():
        raise ValueError(f"{JOBS_ENV}={value!r} must be a whole number of notebooks executed at once (>= 1)")
    return check_positive_int(JOBS_ENV, int(value))


@contextmanager
def core_slots(jobs: int) -> Iterator[Path]:
    """Within the block, ``$BOOKBUILD_SLOTS`` names a fresh folder of ``jobs`` slot files, which every process the
    block starts (pages, their kernels, the runs of a rerun page) inherits; removed after."""
    jobs = check_positive_int("jobs", jobs)
    with tempfile.TemporaryDirectory(prefix="bookbuild-slots-") as folder:
        for index in range(jobs):
            Path(folder, f"slot-{index}").touch()
        with environment({SLOTS_ENV: folder}):
            yield Path(folder)


def _take_free_slot(paths: Sequence[Path], free_for_seconds: float) -> Any:
    """An open handle holding the lock of a free slot, one freed at least ``free_for_seconds`` ago; or None."""

    def freed_recently(path: Path) -> bool:
        return bool(free_for_seconds) and time.time() - path.stat().st_mtime < free_for_seconds

    for path in paths:
        if freed_recently(path):  # another waiter's turn: leave its lock alone
            continue
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        if freed_recently(path):  # freed while we looked
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
            continue
        return handle
    return None


@contextmanager
def core_slot(poll_seconds: float = 0.2) -> Iterator[None]:
    """Hold one of the build's core slots (:func:`core_slots`) for the block, waiting until one is free; nothing
    outside a build (``$BOOKBUILD_SLOTS`` unset). A slot is an exclusive lock on its file: the operating system
    releases it if its holder dies. A slot's file is touched when it is released; with ``$BOOKBUILD_LOW_PRIORITY``
    set to 1, the process takes only a slot free for :data:`LOW_PRIORITY_GRACE_SECONDS`, so that any other waiter
    (polling every ``poll_seconds``) takes a freed slot first.
    """
    folder = os.environ.get(SLOTS_ENV)
    if not folder:
        yield
        return
    paths = sorted(Path(folder).glob("slot-*"))
    if not paths:
        raise RuntimeError(f"{SLOTS_ENV}={folder!r} holds no slot files: set it only through core_slots()")
    low_priority = os.environ.get(LOW_PRIORITY_ENV, "0")
    if low_priority not in ("0", "1"):
        raise ValueError(f"{LOW_PRIORITY_ENV}={low_priority!r} must be 1 (wait for the others) or 0 (the default)")
    free_for_seconds = LOW_PRIORITY_GRACE_SECONDS if low_priority == "1" else 0.0
    handle = None
    while handle is None:
        handle = _take_free_slot(paths, free_for_seconds)
        if handle is None:
            time.sleep(poll_seconds)
    try:
        yield
    finally:
        os.utime(handle.name)  # when it was freed, for the waiters of low priority
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


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
    slot: bool = True,
) -> ChapterRun:
    """Execute ``book/<chapter>.ipynb`` with papermill into ``runs_dir`` unless an up-to-date run is there.

    The kernel runs torch and BLAS on :data:`KERNEL_THREADS` thread, and computes while this process holds a core
    slot (:func:`core_slot`; its seconds are counted from then). Two processes that execute the same run (two rerun
    pages sharing one run's folder) take turns on a lock in ``runs_dir``: the second finds the first's run and
    reuses it.

    Args:
        results_dir: where the run writes its results file (``LOGLINEAR_RESULTS`` for the kernel); None keeps the
            environment's.
        notebook: the notebook to execute, when it is not ``book/<chapter>.ipynb`` (the output is still named
            ``<chapter>.ipynb``).
        slot: False for a page whose kernel mostly waits for the runs it executes (each of which takes a slot).

    Raises:
        papermill.PapermillExecutionError: a cell failed (the partial notebook is kept for inspection, unstamped).
    """

    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    with cache.exclusive(runs_dir / f".{chapter}.lock"):
        return _execute_chapter(chapter, parameters, runs_dir, force=force, results_dir=results_dir,
                                notebook=notebook, slot=slot)


def _execute_chapter(chapter: str, parameters: dict[str, Any], runs_dir: Path, *, force: bool,
                     results_dir: Path | None, notebook: Path | None, slot: bool) -> ChapterRun:
    """:func:`execute_chapter` under its lock."""
    output = runs_dir / f"{chapter}.ipynb"
    if not force and is_up_to_date(chapter, parameters, runs_dir, results_dir):
        return ChapterRun(chapter, 0.0, True, output)
    stamp_path = runs_dir / f"{chapter}.stamp"
    stamp_path.unlink(missing_ok=True)
    overrides = {**dict.fromkeys(THREAD_VARIABLES, str(KERNEL_THREADS)), **ALLOCATOR_VARIABLES}
    if results_dir is not None:  # the kernel inherits it; the chapter's start_run starts the file afresh
        overrides["LOGLINEAR_RESULTS"] = str(results_dir)
    if chapter in LOW_PRIORITY_PAGES:  # the kernel and the runs it executes inherit it
        overrides[LOW_PRIORITY_ENV] = "1"
    with core_slot() if slot else nullcontext(), environment(overrides):
        start = time.perf_counter()
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

    A task with ``slot=False`` (a rerun page, whose runs take the slots) starts as soon as what it waits for has
    finished and does not count against ``jobs``.

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
    slotted = {name: tasks[name].get("slot", True) for name in tasks}
    workers = min(jobs, sum(slotted[name] for name in waiting)) + sum(not slotted[name] for name in waiting)
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
        while waiting or running:
            ready = [name for name in waiting if all(first in runs for first in after[name])]
            for name in ready:
                if failure is not None or (slotted[name] and sum(slotted[n] for n in running.values()) >= jobs):
                    continue
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
