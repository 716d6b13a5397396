"""A chapter's rebuild stamp follows its imports: editing a ``utils`` module the chapter does not import (directly or
not) leaves its stamp valid; editing one it does import, or the results of a chapter it reads, invalidates it."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bookbuild import stamps
from bookbuild.chapters import chapters
from utils.paths import BOOK_DIR, REPO_ROOT


@pytest.fixture
def repo_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the sources a stamp reads, with the stamps module pointed at it."""
    root = tmp_path / "repo"
    for package in stamps.PROJECT_PACKAGES:
        shutil.copytree(REPO_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "book", root / "book", ignore=shutil.ignore_patterns("*.ipynb", "_build"))
    shutil.copytree(REPO_ROOT / "data", root / "data")
    shutil.copy(REPO_ROOT / "requirements.txt", root / "requirements.txt")
    monkeypatch.setattr(stamps, "REPO_ROOT", root)
    monkeypatch.setattr(stamps, "BOOK_DIR", root / "book")
    monkeypatch.setattr(stamps, "RESULTS_DIR", root / "_build" / "results")
    return root


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


def test_imports_found_directly_transitively_and_relatively(repo_copy):
    chapter = repo_copy / "book" / "04_dynamics.py"
    files = {path.relative_to(repo_copy).as_posix() for path in stamps.imported_project_files([chapter])}
    assert "utils/dynamics/training.py" in files  # imported by the chapter
    assert "utils/validation.py" in files  # only through other utils modules (relative imports)
    assert "utils/__init__.py" in files and "utils/dynamics/__init__.py" in files  # packages run on import
    assert "utils/steering/nulls.py" not in files and "utils/pruning/sweep.py" not in files


def test_stamp_follows_the_chapters_imports(repo_copy):
    parameters = {"steps": 6}
    before = stamps.chapter_stamp("04_dynamics", parameters)
    assert stamps.chapter_stamp("04_dynamics", parameters) == before  # deterministic
    edit(repo_copy / "utils" / "steering" / "nulls.py")  # chapter 4 never imports it
    assert stamps.chapter_stamp("04_dynamics", parameters) == before
    edit(repo_copy / "utils" / "validation.py")  # imported only through other modules
    assert stamps.chapter_stamp("04_dynamics", parameters) != before
    after_validation = stamps.chapter_stamp("04_dynamics", parameters)
    edit(repo_copy / "utils" / "dynamics" / "training.py")  # imported directly
    assert stamps.chapter_stamp("04_dynamics", parameters) != after_validation


def test_stamp_follows_the_results_a_chapter_reads(repo_copy, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    parameters = {"n_candidates": 4}
    before = stamps.chapter_stamp("06_undertrained", parameters, results)
    (results / "04_dynamics.json").write_text('{"final_checkpoints": 1}')
    after = stamps.chapter_stamp("06_undertrained", parameters, results)
    assert after != before  # chapter 4 ran: chapter 6 reads its trained runs
    (results / "01_encoding.json").write_text("{}")
    assert stamps.chapter_stamp("06_undertrained", parameters, results) == after  # a chapter it does not read


def test_every_chapter_reading_published_results_declares_whose():
    """A chapter that looks in the published results folder declares which chapters' results it reads."""
    for chapter in chapters():
        text = (BOOK_DIR / f"{chapter}.py").read_text()
        if re.search(r"\bRESULTS_DIR\b", text):
            assert stamps.READS_RESULTS_OF.get(chapter), f"{chapter} reads published results without declaring whose"


def test_stamp_follows_the_build_tool_only_where_a_page_imports_it(repo_copy):
    """The rerun pages run their grids through :func:`bookbuild.execute.rerun_grid`: editing it invalidates them, not a
    chapter that never imports the build tool."""
    robustness, dynamics = stamps.chapter_stamp("99_robustness", {}), stamps.chapter_stamp("04_dynamics", {})
    edit(repo_copy / "bookbuild" / "execute.py")
    assert stamps.chapter_stamp("99_robustness", {}) != robustness
    assert stamps.chapter_stamp("04_dynamics", {}) == dynamics
