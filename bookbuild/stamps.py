"""Rebuild stamps: a chapter re-executes only when something it depends on changed.

A stamp hashes a chapter's parameters and source, the templates it reruns, the project modules these import
(``utils`` and ``bookbuild``, directly or not), the data, the requirements and the results of the chapters it reads,
so editing a module that a chapter never imports leaves its run valid.
"""
from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path
from typing import Any

from utils.paths import BOOK_DIR, REPO_ROOT, RESULTS_DIR

from .chapters import TEMPLATES

#: the packages whose modules a stamp follows: the analysis code and the build tool (the rerun pages import its
#: :func:`bookbuild.execute.rerun_grid`)
PROJECT_PACKAGES = ("utils", "bookbuild")


def _module_file(module: str) -> Path | None:
    """The file of a project module named ``module`` (``utils.a.b`` or ``bookbuild.a``): ``utils/a/b.py`` or
    ``utils/a/b/__init__.py``; None for a module of another package."""
    parts = module.split(".")
    if parts[0] not in PROJECT_PACKAGES:
        return None
    base = REPO_ROOT.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_modules(path: Path, package: str | None) -> set[str]:
    """Module names that the source ``path`` imports anywhere in its code (also inside functions), resolved.

    ``package`` is the package a relative import starts from (``utils.dynamics`` for a file of that package), None
    for a file outside the project's packages. ``from m import x`` yields ``m`` and ``m.x`` (``x`` may be a
    submodule)."""
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


def imported_project_files(sources: list[Path]) -> list[Path]:
    """Every file of the project's packages (:data:`PROJECT_PACKAGES`) that ``sources`` import, directly or through
    other modules of them, sorted.

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


def chapter_stamp(chapter: str, parameters: dict[str, Any], results_dir: Path | None = None,
                  threads: int = 1) -> str:
    """Hash of everything an executed chapter depends on: its parameters and source, the templates it reruns, the
    project modules these import (directly or not; :func:`imported_project_files`), the data, the requirements, the
    results of the chapters it reads (:data:`READS_RESULTS_OF`, in ``results_dir`` and the published folder), and
    the threads its kernel computes on (they change the last bits of threaded sums). Editing a module that a chapter
    never imports leaves its run valid."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True, default=str).encode())
    digest.update(f"threads={threads}".encode())
    source = BOOK_DIR / f"{chapter}.py"
    text = source.read_text(encoding="utf-8") if source.exists() else ""
    sources = [source] + [BOOK_DIR / f"{name}.py" for name in TEMPLATES if name != chapter and f'"{name}"' in text]
    sources = [path for path in sources if path.exists()]
    inputs = sources + [REPO_ROOT / "requirements.txt"]
    inputs += imported_project_files(sources) + sorted((REPO_ROOT / "data").glob("*.txt"))
    folders = dict.fromkeys(folder for folder in (results_dir, RESULTS_DIR) if folder is not None)
    inputs += [Path(folder) / f"{read}.json" for read in READS_RESULTS_OF.get(chapter, ()) for folder in folders]
    for path in inputs:
        if path.exists():
            digest.update(str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
