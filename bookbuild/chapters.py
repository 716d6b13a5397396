"""The book's notebooks: the chapters in book order, the rerun templates, their jupytext pairs and parameter files.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from utils.paths import BOOK_DIR


def chapters() -> list[str]:
    """Chapter names (``NN_name``) in book order: every ``book/NN_*.py``."""
    return sorted(path.stem for path in BOOK_DIR.glob("[0-9][0-9]_*.py"))


# what a page waits for when the build executes several at once (bookbuild.execute.execute_chapters): the pages whose
# results it reads (chapter 4's trained models), and those whose cache entries it reuses rather than computes again
# (chapter 1's passes, which chapters 2, 3 and 5 read again; chapter 2's held-out pass and chapter 5's argmax
# verdicts of the head, which the rerun pages' run at the chapters' settings reuses). The two rerun pages share that
# run; whichever comes second waits for the other's (bookbuild.execute.execute_chapter locks the run's folder).
RUNS_AFTER: dict[str, tuple[str, ...]] = {
    "02_steering": ("01_encoding",),
    "03_pruning": ("01_encoding",),
    "05_argmaxability": ("01_encoding",),
    "06_undertrained": ("04_dynamics",),
    "98_models": ("01_encoding", "02_steering", "04_dynamics", "05_argmaxability"),
    "99_robustness": ("01_encoding", "02_steering", "05_argmaxability"),
}

# pages whose kernel executes a grid of runs of a rerun template (bookbuild.execute.rerun_grid) and mostly waits for
# them: each of their runs takes one of the build's core slots, the page itself none
RERUN_PAGES = ("98_models", "99_robustness")

# pages whose runs let every other notebook take a freed core slot first (bookbuild.execute.core_slot): the models
# page's runs are short (chapter 4's small models, and the default model's run it shares with the robustness page), so
# they fill the cores at the end of the build rather than leave one core alone with a long robustness run
LOW_PRIORITY_PAGES = ("98_models",)

# the order in which the build starts the pages that may start (a page not named here comes last, in book order): first
# the pages the robustness page's runs (most of the book's work) wait for, so that they start early, with chapter 4's
# training beside them; the short pages last, to fill the cores while the last runs finish
START_ORDER = ("01_encoding", "04_dynamics", "05_argmaxability", "02_steering", "99_robustness", "03_pruning",
               "06_undertrained", "98_models")


def start_order(names: list[str]) -> list[str]:
    """``names`` in the order the build starts them (:data:`START_ORDER`, then the rest in the given order)."""
    return sorted(names, key=lambda name: START_ORDER.index(name) if name in START_ORDER else len(START_ORDER))


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
