"""Stand-ins for :func:`bookbuild.execute.execute_chapter` in the scheduler's tests: importable by a spawned process,
each records when it ran and in which process."""
from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

from bookbuild.execute import LOW_PRIORITY_ENV, ChapterRun, core_slot


def timed_task(chapter: str, log_dir: str, seconds: float = 0.5, fail: bool = False, slot: bool = True,
               wait_for: str = "", low_priority: bool = False) -> ChapterRun:
    """Sleep ``seconds`` holding a core slot (none when not ``slot``; raise when ``fail``), writing
    ``log_dir/<chapter>.json`` with start, end, pid and the thread variables the process saw. The slot is asked for
    (with low priority when ``low_priority``) once the file ``wait_for`` exists, and ``log_dir/<chapter>.asking`` is
    written then."""
    while wait_for and not Path(wait_for).exists():
        time.sleep(0.05)
    if low_priority:
        os.environ[LOW_PRIORITY_ENV] = "1"
    Path(log_dir, f"{chapter}.asking").touch()
    with core_slot() if slot else nullcontext():
        start = time.time()
        time.sleep(seconds)
        if fail:
            raise ValueError(f"{chapter} failed on purpose")
    Path(log_dir, f"{chapter}.json").write_text(json.dumps(
        {"start": start, "end": time.time(), "pid": os.getpid(), "omp": os.environ.get("OMP_NUM_THREADS")}))
    return ChapterRun(chapter, time.time() - start, False, Path(log_dir))


def locked_task(lock: str, log: str, seconds: float = 0.5) -> None:
    """Hold :func:`utils.cache.exclusive` on ``lock`` for ``seconds``, appending ``start end`` to ``log``."""
    from utils import cache

    with cache.exclusive(Path(lock)):
        start = time.time()
        time.sleep(seconds)
        with open(log, "a") as handle:
            handle.write(f"{start} {time.time()}\n")
