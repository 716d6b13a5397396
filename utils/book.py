"""Build the book: sync the jupytext pairs, execute every chapter with papermill, build the HTML with Jupyter Book.

    python -m utils.book build                      # the published book, default parameters
    python -m utils.book build --chapters 01_encoding --force
    python -m utils.book build --params-dir DIR --set tiny_model=PATH --runs-dir DIR --html-dir DIR

Executed notebooks go to ``_build/runs/`` (never over the paired ``.ipynb``). A chapter is re-executed only when its
source, a ``utils`` module it imports (directly or not), the data, the requirements, its parameters or the results of
a chapter it reads changed (a stamp beside the run), so a second build with nothing changed only rebuilds the HTML.
At the end the build prints its budget (and writes it to
``_build/runs/budget.json``): each page's seconds, the total, the cache's size, and the compute floor, the FLOPs of the
model passes and trainings the chapters ran (:mod:`utils.budget`) over this machine's fp32 matrix-multiply rate,
measured in the same build.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import papermill
import torch
import yaml

from . import budget, cache
from .compute import matmul_rate
from .front_page import write_front_page
from .paths import BUILD_DIR, REPO_ROOT, RESULTS_DIR, RUNS_DIR, cache_dir
from .results import is_lab_only

BOOK_DIR = REPO_ROOT / "book"
SOURCE_DIR = BUILD_DIR / "source"  # staged book: config, pages and executed chapters
HTML_DIR = BUILD_DIR / "html"
STAGED_FILES = ("_config.yml", "_toc.yml", "references.bib")
STAGED_DIRS = ("_static", "_vendor")  # _vendor: files copied as is into the site (MathJax)


def chapters() -> list[str]:
    """Chapter names (``NN_name``) in book order: every ``book/NN_*.py``."""
    return sorted(path.stem for path in BOOK_DIR.glob("[0-9][0-9]_*.py"))


TEMPLATES = ("headlines",)  # notebooks that chapters rerun with papermill; not pages of the book


def notebooks() -> list[str]:
    """Every paired notebook of ``book/``: the chapters and the rerun templates."""
    return chapters() + list(TEMPLATES)


def sync_pairs() -> None:
    """Sync each notebook's ``.py`` (the source) with its paired ``.ipynb``."""
    sources = [str(BOOK_DIR / f"{name}.py") for name in notebooks()]
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", *sources], check=True)


def load_parameters(params_dir: Path | None, chapter: str, substitutions: dict[str, str]) -> dict[str, Any]:
    """Parameters for ``chapter`` from ``params_dir/<chapter>.yaml`` (``{name}`` placeholders substituted)."""
    if params_dir is None:
        return {}
    path = Path(params_dir) / f"{chapter}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no parameters for chapter {chapter!r}: {path} is missing")

    text = path.read_text()
    for name, value in substitutions.items():
        text = text.replace("{" + name + "}", value)
    return yaml.safe_load(text) or {}


def _module_file(module: str) -> Path | None:
    """The file of a ``utils`` module named ``module`` (``utils.a.b``): ``a/b.py`` or ``a/b/__init__.py``; else None."""
    parts = module.split(".")
    if parts[0] != "utils":
        return None
    base = REPO_ROOT.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_modules(path: Path, package: str | None) -> set[str]:
    """Module names that the source ``path`` imports anywhere in its code (also inside functions), resolved.

    ``package`` is the package a relative import starts from (``utils.dynamics`` for a file of that package), None
    for a file outside ``utils``. ``from m import x`` yields ``m`` and ``m.x`` (``x`` may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def imported_utils_files(sources: list[Path]) -> list[Path]:
    """Every file of ``utils`` that ``sources`` import, directly or through other ``utils`` modules, sorted.

    Importing ``utils.a.b`` runs ``utils/__init__.py`` and ``utils/a/__init__.py`` too, so those count. An import
    inside a function counts as well (it may run), so the set errs on the side of re-executing a chapter."""
    found: set[Path] = set()
    pending = [(source, None) for source in sources]
    while pending:
        path, package = pending.pop()
        for module in _imported_modules(path, package):
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):
                prefix = ".".join(parts[:depth])
                file = _module_file(prefix)
                if file is None or file in found:
                    continue
                found.add(file)
                is_package = file.name == "__init__.py"
                pending.append((file, prefix if is_package else prefix.rpartition(".")[0]))
    return sorted(found)


# chapters that read another chapter's published results (chapter 4's trained runs), so re-execute after it
READS_RESULTS_OF = {"06_undertrained": ("04_dynamics",), "98_models": ("04_dynamics",)}


def _stamp(chapter: str, parameters: dict[str, Any], results_dir: Path | None = None) -> str:
    """Hash of everything an executed chapter depends on: its parameters and source, the templates it reruns, the
    ``utils`` modules these import (directly or not; :func:`imported_utils_files`), the data, the requirements, and
    the results of the chapters it reads (:data:`READS_RESULTS_OF`, in ``results_dir`` and the published folder).
    Editing a module that a chapter never imports leaves its run valid."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True, default=str).encode())
    source = BOOK_DIR / f"{chapter}.py"
    text = source.read_text(encoding="utf-8") if source.exists() else ""
    sources = [source] + [BOOK_DIR / f"{name}.py" for name in TEMPLATES if name != chapter and f'"{name}"' in text]
    sources = [path for path in sources if path.exists()]
    inputs = sources + [REPO_ROOT / "requirements.txt"]
    inputs += imported_utils_files(sources) + sorted((REPO_ROOT / "data").glob("*.txt"))
    folders = dict.fromkeys(folder for folder in (results_dir, RESULTS_DIR) if folder is not None)
    inputs += [Path(folder) / f"{read}.json" for read in READS_RESULTS_OF.get(chapter, ()) for folder in folders]
    for path in inputs:
        if path.exists():
            digest.update(str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


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
    stamp = _stamp(chapter, parameters, results_dir)
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


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def parameters_page(runs_dir: Path = RUNS_DIR) -> str:
    """Markdown: for each chapter, its papermill command, its parameters (default and help) and its last run time.

    Generated from the chapters' ``parameters`` cells when the book is staged, so it cannot drift from them.
    """

    lines = []
    for chapter in chapters():
        seconds_file = Path(runs_dir) / f"{chapter}.seconds"
        timing = (f"last measured run: {float(seconds_file.read_text()):.0f} s on this build's machine"
                  if seconds_file.exists() else "no measured run time yet")
        lines += [f"### {chapter}", "", f"{timing}.", "", "```bash",
                  f".venv/bin/papermill book/{chapter}.ipynb _build/runs/{chapter}-mine.ipynb --cwd book -p NAME VALUE",
                  "```", "", "| parameter | default | meaning |", "|---|---|---|"]
        for name, spec in papermill.inspect_notebook(str(BOOK_DIR / f"{chapter}.ipynb")).items():
            lines.append(f"| `{name}` | `{_markdown_cell(spec['default'])}` | {_markdown_cell(spec['help'] or '')} |")
        lines.append("")
    return "\n".join(lines)


def stage(runs_dir: Path = RUNS_DIR, source_dir: Path = SOURCE_DIR) -> Path:
    """Assemble the book's source tree: config, markdown pages, the executed chapters and the generated
    parameter reference (``book/parameters.generated.md``, included by the rerunning page)."""
    if source_dir.exists():
        shutil.rmtree(source_dir)
    (source_dir / "book").mkdir(parents=True)
    for name in STAGED_FILES:
        shutil.copy2(REPO_ROOT / name, source_dir / name)
    for name in STAGED_DIRS:
        if (REPO_ROOT / name).exists():
            shutil.copytree(REPO_ROOT / name, source_dir / name)
    for page in BOOK_DIR.glob("*.md"):
        shutil.copy2(page, source_dir / "book" / page.name)
    for chapter in chapters():
        executed = Path(runs_dir) / f"{chapter}.ipynb"
        if not executed.exists():
            raise FileNotFoundError(f"chapter {chapter!r} has not been executed: {executed} is missing")
        write_book_notebook(executed, source_dir / "book" / executed.name)
    (source_dir / "book" / "parameters.generated.md").write_text(parameters_page(runs_dir))
    write_front_page(chapters(), source_dir / "book")
    return source_dir


def write_book_notebook(executed: Path, target: Path) -> int:
    """Copy an executed chapter for the book without the outputs shown only to notebook front ends
    (:func:`utils.results.is_lab_only`: the figures, which the book shows where their ``{glue:figure}`` sits);
    returns how many were dropped."""
    notebook = json.loads(Path(executed).read_text(encoding="utf-8"))
    dropped = 0
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            kept = [output for output in cell.get("outputs", []) if not is_lab_only(output)]
            dropped += len(cell.get("outputs", [])) - len(kept)
            cell["outputs"] = kept
    Path(target).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return dropped


def build_html(source_dir: Path = SOURCE_DIR, html_dir: Path = HTML_DIR) -> Path:
    """Run ``jupyter-book build`` on the staged tree, warnings as errors; the site lands in ``html_dir``.

    ``--all`` rebuilds every page: an incremental Sphinx build keeps stale navigation on unchanged pages.
    """
    work = source_dir.parent / "jupyter-book"
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source_dir),
               "--path-output", str(work), "--warningiserror", "--keep-going", "--all"]
    subprocess.run(command, check=True)
    if html_dir.exists():
        shutil.rmtree(html_dir)
    shutil.copytree(work / "_build" / "html", html_dir)
    return html_dir


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
) -> list[ChapterRun]:
    """Sync, execute (with caching) and build; prints the time of each step. Each chapter writes its results to
    ``results_dir/<chapter>.json`` (the published book's ``_build/results/`` by default)."""
    started = time.perf_counter()
    sync_pairs()
    names = chapters()
    unknown = sorted(set(selected or []) - set(names))
    if unknown:
        raise ValueError(f"chapters={unknown} are not chapters of the book; choose from {names}")
    ledger = Path(runs_dir) / "budget-ledger.jsonl"  # the chapters' kernels append their charges to it
    ledger.unlink(missing_ok=True)
    previous = os.environ.get(budget.BUDGET_ENV)
    os.environ[budget.BUDGET_ENV] = str(ledger)
    rates = [fp32_rate()]
    runs = []
    try:
        for chapter in selected or names:
            print(f"[book] executing {chapter} ...", flush=True)
            run = execute_chapter(chapter, load_parameters(params_dir, chapter, substitutions or {}), runs_dir,
                                  force=force, results_dir=results_dir)
            print(f"[book] {chapter}: {'cached' if run.cached else f'{run.seconds:.0f} s'}", flush=True)
            runs.append(run)
    finally:
        if previous is None:
            os.environ.pop(budget.BUDGET_ENV, None)
        else:
            os.environ[budget.BUDGET_ENV] = previous
    rates.append(fp32_rate())
    if html:
        html_start = time.perf_counter()
        build_html(stage(runs_dir, BUILD_DIR / "source"), html_dir)
        print(f"[book] html: {time.perf_counter() - html_start:.0f} s -> {html_dir / 'index.html'}")
    report = budget_report(runs, budget.read_ledger(ledger), max(rates))
    (Path(runs_dir) / "budget.json").write_text(json.dumps(report, indent=1))
    print(format_budget(report))
    print(f"[book] total {time.perf_counter() - started:.0f} s (with syncing, the rate measurements and the HTML)")
    return runs


def fp32_rate() -> float:
    """This machine's fp32 matrix-multiply rate now (GFLOP/s): the best of 1024- and 2048-sized products."""
    return max(matmul_rate(torch.float32, torch.device("cpu"), size=size) for size in (1024, 2048))


def budget_report(runs: list[ChapterRun], charges: list[dict[str, Any]], fp32_gflops: float) -> dict[str, Any]:
    """The build's budget: each page's seconds (None where its run was reused), the cache's bytes, and
    :func:`utils.budget.summarize` of the ledger's charges at ``fp32_gflops``."""
    executed = sum(run.seconds for run in runs if not run.cached)
    return {"pages": {run.chapter: None if run.cached else round(run.seconds, 1) for run in runs},
            "cache_bytes": budget.folder_bytes(cache_dir()),
            **budget.summarize(charges, executed, fp32_gflops)}


def format_budget(report: dict[str, Any]) -> str:
    """The budget as the build prints it."""
    lines = ["[book] budget of this build:", f"    {'page':24s} {'seconds':>9s}"]
    for page, seconds in report["pages"].items():
        lines.append(f"    {page:24s} {'reused' if seconds is None else f'{seconds:9.1f}':>9s}")
    lines.append(f"    {'chapter time':24s} {report['chapter_seconds']:9.1f}")
    for kind in budget.KINDS:
        if kind in report["flops"]:
            lines.append(f"    {kind + ' FLOPs':24s} {report['flops'][kind] / 1e12:9.1f} TFLOP "
                         f"({report['tokens'][kind]:,} tokens)")
    lines += [f"    {'fp32 matmul rate':24s} {report['fp32_gflops']:9.1f} GFLOP/s (best of start and end)",
              f"    {'compute floor':24s} {report['floor_seconds']:9.1f} s",
              f"    {'chapter time / floor':24s} " + (f"{report['ratio']:9.2f}x" if report["floor_seconds"] > 0
                                                          else f"{'n/a':>9s}  (these pages ran no model work)"),
              f"    {'cache':24s} {report['cache_bytes'] / 1e9:9.2f} GB ({cache_dir().name}/)"]
    return "\n".join(lines)


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
    parser = argparse.ArgumentParser(prog="python -m utils.book", description=__doc__.split("\n")[0])
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
    sweep_parser = sub.add_parser("sweep", help="set models side by side (the models page, for your models)")
    sweep_parser.add_argument("--models", nargs="+", required=True,
                              help="offline names, Hugging Face ids or local folders")
    sweep_parser.add_argument("--trained-models", action="store_true",
                              help="add chapter 4's trained models from the published build's results")
    sweep_parser.add_argument("--out-dir", type=Path, default=SWEEPS_DIR)
    args = parser.parse_args(argv)
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
          html_dir=args.html_dir, results_dir=args.results_dir, force=args.force, html=not args.no_html)


if __name__ == "__main__":
    main()
