"""The build executes several pages at once, in processes of their own, in an order that respects what each page
waits for; every kernel computes on one thread."""
from __future__ import annotations

import json
import threading
import time

import pytest
from schedule_tasks import timed_task

from bookbuild.chapters import LOW_PRIORITY_PAGES, RERUN_PAGES, RUNS_AFTER, START_ORDER, chapters, start_order
from bookbuild.execute import (
    LOW_PRIORITY_ENV,
    LOW_PRIORITY_GRACE_SECONDS,
    SLOTS_ENV,
    core_slot,
    core_slots,
    default_jobs,
    environment,
    execute_chapter,
    execute_chapters,
)
from utils.paths import BOOK_DIR


def _log(folder, name):
    return json.loads((folder / f"{name}.json").read_text())


def test_pages_run_side_by_side_and_after_what_they_wait_for(tmp_path):
    tasks = {name: {"chapter": name, "log_dir": str(tmp_path), "seconds": 1.0} for name in ("a", "b", "c", "d")}
    lines = []
    runs = execute_chapters(tasks, jobs=2, after={"c": ["a"], "d": ["c", "b", "not a task"]}, announce=lines.append,
                            function=timed_task)
    assert list(runs) == ["a", "b", "c", "d"] and all(not run.cached for run in runs.values())
    a, b, c, d = (_log(tmp_path, name) for name in "abcd")
    assert a["start"] < b["end"] and b["start"] < a["end"]  # two at once
    assert c["start"] >= a["end"] and d["start"] >= max(b["end"], c["end"])  # each after what it waits for
    assert a["pid"] != b["pid"]  # processes of their own
    assert lines[0] == "a: started" and any(line.startswith("d: ") and line.endswith(" s") for line in lines)


def test_one_job_runs_the_pages_one_after_the_other(tmp_path):
    tasks = {name: {"chapter": name, "log_dir": str(tmp_path), "seconds": 0.3} for name in ("a", "b", "c")}
    execute_chapters(tasks, jobs=1, function=timed_task, announce=lambda line: None)
    logs = [_log(tmp_path, name) for name in "abc"]
    assert logs[0]["end"] <= logs[1]["start"] and logs[1]["end"] <= logs[2]["start"]


def test_a_failed_page_stops_what_waits_on_it_and_raises_its_error(tmp_path):
    tasks = {"a": {"chapter": "a", "log_dir": str(tmp_path), "seconds": 0.1, "fail": True},
             "b": {"chapter": "b", "log_dir": str(tmp_path), "seconds": 0.5},
             "c": {"chapter": "c", "log_dir": str(tmp_path), "seconds": 0.1}}
    with pytest.raises(ValueError, match="a failed on purpose"):
        execute_chapters(tasks, jobs=2, after={"c": ["a"]}, function=timed_task, announce=lambda line: None)
    assert (tmp_path / "b.json").exists() and not (tmp_path / "c.json").exists()  # b finished, c never started


def test_jobs_and_the_dependency_table_are_checked():
    with pytest.raises(ValueError, match="jobs=0 must be >= 1"):
        execute_chapters({}, jobs=0)
    with environment({"BOOKBUILD_JOBS": "3"}):
        assert default_jobs() == 3
    with environment({"BOOKBUILD_JOBS": "0"}), pytest.raises(ValueError, match="BOOKBUILD_JOBS=0"):
        default_jobs()
    with environment({"BOOKBUILD_JOBS": "two"}), pytest.raises(ValueError, match="BOOKBUILD_JOBS='two' must be"):
        default_jobs()
    pages = set(chapters())
    assert set(RUNS_AFTER) <= pages and {first for firsts in RUNS_AFTER.values() for first in firsts} <= pages
    assert set(START_ORDER) == pages and sorted(start_order(chapters())) == sorted(pages)
    assert start_order(["99_robustness", "zz_new", "04_dynamics"]) == ["04_dynamics", "99_robustness", "zz_new"]
    # a page never starts before what it waits for would let it: what it waits for comes earlier in the order
    assert all(START_ORDER.index(first) < START_ORDER.index(page) for page, firsts in RUNS_AFTER.items()
               for first in firsts)



def _most_at_once(logs):
    """The largest number of logged intervals that overlap at one instant."""
    return max(sum(other["start"] <= log["start"] < other["end"] for other in logs) for log in logs)


def test_core_slots_bound_what_computes_at_once_and_a_rerun_page_holds_none(tmp_path):
    tasks = {name: {"chapter": name, "log_dir": str(tmp_path), "seconds": 0.6} for name in "abc"}
    with core_slots(2):  # three processes started at once, two slots: the third computes when a slot frees
        execute_chapters(tasks, jobs=3, function=timed_task, announce=lambda line: None)
    logs = [_log(tmp_path, name) for name in "abc"]
    assert _most_at_once(logs) == 2 and len({log["pid"] for log in logs}) == 3
    # a task without a slot (a rerun page waiting for its runs) starts beside the one job's page
    tasks = {"page": {"chapter": "page", "log_dir": str(tmp_path), "seconds": 0.6},
             "grid": {"chapter": "grid", "log_dir": str(tmp_path), "seconds": 0.6, "slot": False}}
    with core_slots(1):
        execute_chapters(tasks, jobs=1, function=timed_task, announce=lambda line: None)
    page, grid = _log(tmp_path, "page"), _log(tmp_path, "grid")
    assert grid["start"] < page["end"] and page["start"] < grid["end"]
    assert SLOTS_ENV not in __import__("os").environ  # the build's slots end with it
    with core_slot():  # outside a build: nothing to wait for
        pass
    with pytest.raises(ValueError, match="jobs=0 must be >= 1"), core_slots(0):
        pass


def test_a_low_priority_run_takes_a_freed_slot_only_when_no_other_notebook_asks_for_it(tmp_path, monkeypatch):
    go = tmp_path / "go"
    tasks = {"low": {"seconds": 0.3, "low_priority": True},
             "other": {"seconds": 0.3, "wait_for": str(go)}}  # asks only after the slot is freed
    tasks = {name: {"chapter": name, "log_dir": str(tmp_path), **task} for name, task in tasks.items()}
    with core_slots(1):
        with core_slot():  # this process holds the one slot until "low" waits for it
            worker = threading.Thread(target=execute_chapters, args=(tasks,),
                                      kwargs={"jobs": 2, "function": timed_task, "announce": lambda line: None})
            worker.start()
            deadline = time.time() + 120
            while not (tmp_path / "low.asking").exists():
                assert time.time() < deadline, "the low-priority task never asked for a slot"
                time.sleep(0.05)
            time.sleep(0.3)
        freed = time.time()
        time.sleep(0.5)  # within the grace, only "low" waits: the slot stays free for whoever comes
        go.touch()
        worker.join()
    low, other = _log(tmp_path, "low"), _log(tmp_path, "other")
    assert freed + 0.5 <= other["start"] < low["start"]  # the slot waited, then went to "other"
    assert low["start"] >= other["end"] + LOW_PRIORITY_GRACE_SECONDS - 0.1  # free that long, then it went to "low"
    assert set(LOW_PRIORITY_PAGES) <= set(RERUN_PAGES)
    monkeypatch.setenv(LOW_PRIORITY_ENV, "yes")
    with core_slots(1), pytest.raises(ValueError, match="BOOKBUILD_LOW_PRIORITY='yes' must be 1"), core_slot():
        pass


def test_two_processes_executing_one_run_execute_it_once(tmp_path):
    """Two rerun pages that share a run: the second waits for the first's and reuses it (a lock on its folder)."""
    import nbformat

    counter = tmp_path / "executed.txt"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import time\ntime.sleep(1)\nopen({str(counter)!r}, 'a').write('x')")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "shared.ipynb"
    nbformat.write(notebook, source)
    task = {"chapter": "zz_shared_run", "parameters": {}, "runs_dir": tmp_path / "run", "notebook": source}
    runs = execute_chapters({"first": task, "second": dict(task)}, jobs=2, announce=lambda line: None,
                            function=execute_chapter)
    assert counter.read_text() == "x"  # the notebook ran once
    assert sorted(run.cached for run in runs.values()) == [False, True]


def test_the_pages_that_execute_grids_are_the_rerun_pages():
    grids = {path.stem for path in BOOK_DIR.glob("[0-9][0-9]_*.py") if "rerun_grid(" in path.read_text()}
    assert grids == set(RERUN_PAGES)
