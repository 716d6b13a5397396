"""Every chapter executes under papermill on tiny parameters, and the book builds from those runs."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from utils import book
from utils.results import load_results

PARAMS_DIR = Path(__file__).parent / "params"
_runs: dict[str, book.ChapterRun] = {}


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


def run_tiny(chapter: str, runs_dir: Path, tiny_model_dir: Path) -> book.ChapterRun:
    if chapter not in _runs:
        parameters = book.load_parameters(PARAMS_DIR, chapter, {"tiny_model": str(tiny_model_dir)})
        _runs[chapter] = book.execute_chapter(chapter, parameters, runs_dir, force=True)
    return _runs[chapter]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", book.chapters())
def test_chapter_runs_on_tiny_parameters(chapter, runs_dir, tiny_model_dir):
    run = run_tiny(chapter, runs_dir, tiny_model_dir)
    executed = nbformat.read(run.output, as_version=4)
    errors = [output for cell in executed.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors
    assert executed.cells[1].metadata.get("tags") == ["injected-parameters"]
    results = load_results(chapter)
    assert results, f"{chapter} recorded no results"
    json.dumps(results)


@pytest.mark.slow
def test_book_builds_from_the_tiny_runs(runs_dir, tiny_model_dir, tmp_path):
    for chapter in book.chapters():
        run_tiny(chapter, runs_dir, tiny_model_dir)
    source = book.stage(runs_dir, tmp_path / "source")
    html = book.build_html(source, tmp_path / "html")
    for chapter in book.chapters():
        page = (html / "book" / f"{chapter}.html").read_text()
        assert "glue" not in page.lower() or "{glue" not in page
    assert (html / "index.html").exists()
