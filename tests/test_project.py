"""Project hygiene: pins agree between pip and conda, jupytext pairs are in sync, chapters follow the contract."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

from bookbuild.chapters import chapters, notebooks
from utils.paths import BOOK_DIR, REPO_ROOT


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s#;]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_environment_yml_carries_the_same_pins_as_requirements():
    requirements = pins((REPO_ROOT / "requirements.txt").read_text().splitlines())
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    assert requirements, "requirements.txt pins nothing"
    assert pins(pip_section) == requirements


def test_every_requirement_is_pinned():
    for name in ("requirements.txt", "requirements-nodeps.txt", "requirements-gemma.txt"):
        lines = [line.strip() for line in (REPO_ROOT / name).read_text().splitlines()]
        entries = [line for line in lines if line and not line.startswith("#")]
        assert entries and all("==" in line for line in entries), name


@pytest.mark.parametrize("chapter", notebooks())
def test_jupytext_pair_is_in_sync(chapter):
    source = jupytext.read(BOOK_DIR / f"{chapter}.py")
    paired = jupytext.read(BOOK_DIR / f"{chapter}.ipynb")
    assert [(c.cell_type, c.source) for c in paired.cells] == [(c.cell_type, c.source) for c in source.cells], (
        f"book/{chapter}.py and .ipynb differ: run `jupytext --sync book/{chapter}.py`"
    )
    assert all(not cell.get("outputs") for cell in paired.cells if cell.cell_type == "code"), (
        f"book/{chapter}.ipynb is committed with outputs"
    )


@pytest.mark.parametrize("chapter", chapters())
def test_chapter_contract(chapter):
    notebook = jupytext.read(BOOK_DIR / f"{chapter}.py")
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code_cells[0].metadata.get("tags", []), "first code cell must be tagged parameters"
    assert (REPO_ROOT / "tests" / "params" / f"{chapter}.yaml").exists(), "tiny test parameters missing"
    toc = (REPO_ROOT / "_toc.yml").read_text()
    assert f"book/{chapter}" in toc


MAX_CELL_LINES = 15  # code lines of one cell, comments and blank lines aside; the papermill parameters cell excepted


@pytest.mark.parametrize("notebook", notebooks())
def test_code_cells_are_short(notebook):
    """Logic lives in ``utils``: no code cell of a page or template is longer than ``MAX_CELL_LINES`` lines."""
    cells = [cell for cell in jupytext.read(BOOK_DIR / f"{notebook}.py").cells
             if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", [])]
    lengths = [len([line for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#")])
               for cell in cells]
    long_cells = {index: length for index, length in enumerate(lengths) if length > MAX_CELL_LINES}
    assert not long_cells, f"book/{notebook}.py: code cells (index: lines) over {MAX_CELL_LINES} lines: {long_cells}"


def test_toc_lists_only_existing_pages():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [entry["file"] for entry in toc["chapters"]]
    for name in files:
        stem = REPO_ROOT / name
        assert stem.with_suffix(".md").exists() or stem.with_suffix(".py").exists(), name


def test_the_robustness_notebook_shares_the_chapters_defaults():
    """book/headlines.py recomputes the chapters' headline checks: its defaults must be theirs."""
    import papermill

    headlines = {name: spec["default"] for name, spec in
                 papermill.inspect_notebook(str(BOOK_DIR / "headlines.ipynb")).items()}
    shared = 0
    for chapter in ("01_encoding", "02_steering", "03_pruning"):
        for name, spec in papermill.inspect_notebook(str(BOOK_DIR / f"{chapter}.ipynb")).items():
            if name in headlines and name not in ("n_tokens", "n_tokens_test"):
                assert headlines[name] == spec["default"], f"{name}: headlines {headlines[name]} != {chapter}"
                shared += 1
    assert shared >= 10


def test_ruff_passes():
    """The lint configuration in pyproject.toml (mathematical names allowed where the papers use them) holds."""
    import subprocess
    import sys
    from pathlib import Path

    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", "--no-cache", str(REPO_ROOT)], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_noqa_for_names_and_no_sys_path_edits():
    folders = ("utils", "tests", "benchmarks", "book")
    path_edit = "sys.path." + "insert"  # spelled in two parts so that this file does not match itself
    for path in [path for folder in folders for path in (REPO_ROOT / folder).rglob("*.py")]:
        text = path.read_text()
        assert not re.search(r"noqa: ?N8", text), f"{path.name}: a noqa for a name (configure ruff instead)"
        assert path_edit not in text, f"{path.name} edits sys.path"


@pytest.mark.parametrize("notebook", notebooks())
def test_no_cell_header_carries_text(notebook):
    """A ``# %%`` line holds the cell type and tags only: jupytext takes any other text as the cell's title, and the
    rendered paragraph would lose it."""
    header = re.compile(r'^# %%( \[markdown\])?( tags=\[[^\]]*\])?$')
    lines = (BOOK_DIR / f"{notebook}.py").read_text(encoding="utf-8").splitlines()
    bad = [f"{number}: {line}" for number, line in enumerate(lines, 1) if line.startswith("# %%")
           and not header.match(line)]
    assert not bad, f"book/{notebook}.py: cell headers with text: {bad}"


def test_make_lab_opens_the_chapters_as_notebooks(tmp_path, monkeypatch):
    """The lab target's viewer setting, written where it writes it, is what JupyterLab reads as its default."""
    from jupyter_server.services.config import ConfigManager

    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlab: ")[1].split("\n\n")[0].splitlines()[1:]
    setting = next(line.strip() for line in recipe if "jupytext-config" in line)
    venv = tmp_path / "venv"
    command = (setting.replace("$(LAB_OVERRIDES)", str(venv / "etc/jupyter/labconfig/default_setting_overrides.json"))
               .replace("$(BIN)/", str(Path(sys.executable).parent) + "/"))
    assert "$(VENV)/etc/jupyter/labconfig/default_setting_overrides.json" in makefile
    subprocess.run(command, shell=True, check=True, capture_output=True)
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(venv / "etc/jupyter"))
    overrides = ConfigManager(config_dir_name="labconfig").get("default_setting_overrides")
    assert overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"] == "Jupytext Notebook"
