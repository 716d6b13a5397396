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
