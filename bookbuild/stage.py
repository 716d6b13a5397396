"""Stage the executed chapters as a Jupyter Book source tree and build its HTML.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import papermill

from utils.paths import BOOK_DIR, BUILD_DIR, REPO_ROOT, RUNS_DIR
from utils.results import is_lab_only

from .chapters import chapters
from .front_page import write_front_page

SOURCE_DIR = BUILD_DIR / "source"  # staged book: config, pages and executed chapters


HTML_DIR = BUILD_DIR / "html"


STAGED_FILES = ("_config.yml", "_toc.yml", "references.bib")


STAGED_DIRS = ("_static", "_vendor")  # _vendor: files copied as is into the site (MathJax)


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
