"""Build the book: sync the jupytext pairs, execute every chapter with papermill, build the HTML with Jupyter Book.

    python -m bookbuild build                      # the published book, default parameters
    python -m bookbuild build --chapters 01_encoding --force
    python -m bookbuild build --params-dir DIR --set tiny_model=PATH --runs-dir DIR --html-dir DIR

The pages execute several at once (``--jobs``, one per core by default), each in a process of its own with its kernel
on one thread, in an order that lets each page wait for what it reads or reuses (:data:`bookbuild.chapters.RUNS_AFTER`;
:mod:`bookbuild.execute`); the runs of the rerun pages share the same cores (one core slot per job).
Executed notebooks go to ``_build/runs/`` (never over the paired ``.ipynb``). A chapter is
re-executed only when its source, a project module it imports (directly or not), the data, the requirements, its
parameters or the results of a chapter it reads changed (a stamp beside the run), so a second build with nothing
changed only rebuilds the HTML. At the end the build prints its budget (and writes it to ``_build/runs/budget.json``):
each page's seconds, their sum, the chapter time (wall clock from the first page's start to the last page's end), the
cache's size, and the compute floor, the FLOPs of the model passes and trainings the chapters ran (:mod:`utils.budget`)
over this machine's fp32 matrix-multiply rate, measured in the same build.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from utils import budget, cache
from utils.paths import BUILD_DIR, RESULTS_DIR, RUNS_DIR
from utils.validation import check_positive_int

from .chapters import RERUN_PAGES, RUNS_AFTER, chapters, load_parameters, start_order, sync_pairs
from .execute import JOBS_ENV, ChapterRun, core_slots, default_jobs, environment, execute_chapter, execute_chapters
from .report import budget_report, compare_results, format_budget, format_comparison, fp32_rate
from .stage import HTML_DIR, build_html, stage


def build(
    *,
    selected: list[str] | None = None,
    params_dir: Path | None = None,
    substitutions: dict[str, str] | None = None,
    runs_dir: Path = RUNS_DIR,
    html_dir: Path = HTML_DIR,
    results_dir: Path = RESULTS_DIR,
    force: bool = False,
    html: bool = True,
    jobs: int | None = None,
) -> list[ChapterRun]:
    """Sync, execute (with caching, ``jobs`` pages at once as :data:`bookbuild.chapters.RUNS_AFTER` allows) and
    build; prints each page as it starts and ends. Each chapter writes its results to ``results_dir/<chapter>.json``
    (the published book's ``_build/results/`` by default)."""
    started = time.perf_counter()
    jobs = default_jobs() if jobs is None else check_positive_int("jobs", jobs)
    sync_pairs()
    names = chapters()
    unknown = sorted(set(selected or []) - set(names))
    if unknown:
        raise ValueError(f"chapters={unknown} are not chapters of the book; choose from {names}")
    ledger = Path(runs_dir) / "budget-ledger.jsonl"  # the chapters' kernels append their charges to it
    ledger.unlink(missing_ok=True)
    tasks = {chapter: {"chapter": chapter, "parameters": load_parameters(params_dir, chapter, substitutions or {}),
                       "runs_dir": runs_dir, "force": force, "results_dir": results_dir,
                       "slot": chapter not in RERUN_PAGES}
             for chapter in start_order(selected or names)}
    rates = [fp32_rate()]
    print(f"[book] executing {len(tasks)} pages, {jobs} at once (each kernel on one thread)", flush=True)
    executing = time.perf_counter()
    # the kernels inherit the ledger's path, how many runs a rerun page may execute at once and the core slots
    with core_slots(jobs), environment({budget.BUDGET_ENV: str(ledger), JOBS_ENV: str(jobs)}):
        executed = execute_chapters(tasks, jobs=jobs, after=RUNS_AFTER,
                                    announce=lambda line: print(f"[book] {line}", flush=True))
    runs = [executed[chapter] for chapter in selected or names]  # in book order
    wall_seconds = time.perf_counter() - executing
    rates.append(fp32_rate())
    if html:
        html_start = time.perf_counter()
        build_html(stage(runs_dir, BUILD_DIR / "source"), html_dir)
        print(f"[book] html: {time.perf_counter() - html_start:.0f} s -> {html_dir / 'index.html'}")
    report = budget_report(runs, budget.read_ledger(ledger), max(rates), wall_seconds, jobs)
    (Path(runs_dir) / "budget.json").write_text(json.dumps(report, indent=1))
    print(format_budget(report))
    print(f"[book] total {time.perf_counter() - started:.0f} s (with syncing, the rate measurements and the HTML)")
    return runs


SWEEPS_DIR = BUILD_DIR / "sweeps"
MODELS_PAGE = "98_models"


def sweep(models: list[str], *, trained_models: bool = False, out_dir: Path = SWEEPS_DIR,
          parameters: dict[str, Any] | None = None) -> Path:
    """Set ``models`` side by side: execute the models page (``book/98_models``) for them into a folder of its own
    under ``out_dir`` (keyed by the models and parameters; results kept there, never in the published book), convert
    it to HTML and return the HTML page's path."""
    if not models:
        raise ValueError("models=[] must name at least one model (offline name, Hugging Face id or folder)")
    parameters = {"models": list(models), "trained_models": trained_models, **(parameters or {})}
    digest = cache.key_of(parameters)[:12]
    folder = Path(out_dir) / digest
    run = execute_chapter(MODELS_PAGE, parameters, folder, results_dir=folder)
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", "--log-level", "WARN", str(run.output)],
                   check=True)
    page = run.output.with_suffix(".html")
    print(f"[sweep] {len(models)} models side by side: {page}")
    return page


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bookbuild", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build_parser = sub.add_parser("build", help="execute the chapters and build the HTML")
    build_parser.add_argument("--chapters", nargs="*", default=None, help="only these chapters (default: all)")
    build_parser.add_argument("--params-dir", type=Path, default=None, help="folder of <chapter>.yaml parameters")
    build_parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                              help="substitute {NAME} in the parameter files")
    build_parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR)
    build_parser.add_argument("--html-dir", type=Path, default=HTML_DIR)
    build_parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                              help="where the chapters write their results files")
    build_parser.add_argument("--force", action="store_true", help="re-execute even if a run is up to date")
    build_parser.add_argument("--no-html", action="store_true", help="execute only")
    build_parser.add_argument("--jobs", type=int, default=None,
                              help="pages (and rerun runs) executed at once, each kernel on one thread "
                                   "(default: $BOOKBUILD_JOBS, else one per core)")
    sweep_parser = sub.add_parser("sweep", help="set models side by side (the models page, for your models)")
    sweep_parser.add_argument("--models", nargs="+", required=True,
                              help="offline names, Hugging Face ids or local folders")
    sweep_parser.add_argument("--trained-models", action="store_true",
                              help="add chapter 4's trained models from the published build's results")
    sweep_parser.add_argument("--out-dir", type=Path, default=SWEEPS_DIR)
    compare_parser = sub.add_parser("compare", help="compare two builds' results folders value by value")
    compare_parser.add_argument("before", type=Path, help="a results folder (for example a copy of _build/results)")
    compare_parser.add_argument("after", type=Path, help="another results folder")
    args = parser.parse_args(argv)
    if args.command == "compare":
        report = compare_results(args.before, args.after)
        print(format_comparison(report))
        if report["differ"] or report["missing"]:
            raise SystemExit(1)
        return
    if args.command == "sweep":
        sweep(args.models, trained_models=args.trained_models, out_dir=args.out_dir)
        return
    substitutions = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r} must look like NAME=VALUE")
        substitutions[name] = value
    build(selected=args.chapters, params_dir=args.params_dir, substitutions=substitutions, runs_dir=args.runs_dir,
          html_dir=args.html_dir, results_dir=args.results_dir, force=args.force, html=not args.no_html,
          jobs=args.jobs)

