"""Where the book keeps its inputs, caches and outputs.

All paths are derived from the repository root; the cache folder can be moved with the
environment variable ``LOGLINEAR_CACHE`` (for example to share it between clones).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
DATA_DIR: Path = REPO_ROOT / "data"
BOOK_DIR: Path = REPO_ROOT / "book"  # the pages: jupytext pairs and markdown
BUILD_DIR: Path = REPO_ROOT / "_build"
RESULTS_DIR: Path = BUILD_DIR / "results"
RUNS_DIR: Path = BUILD_DIR / "runs"


def cache_dir() -> Path:
    """The on-disk cache for activations, fits and trained checkpoints (created on demand)."""
    path = Path(os.environ.get("LOGLINEAR_CACHE", REPO_ROOT / "_cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
