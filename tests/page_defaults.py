"""The defaults of a page's parameters cell (``book/<page>.py``), executed, for the tests of its parameter object."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from utils.results import chapter_parameter_names

BOOK_DIR = Path(__file__).parents[1] / "book"


def page_defaults(page: str) -> dict[str, Any]:
    """name -> default value of each knob of ``book/<page>.py``'s parameters cell (the cell run as it is)."""
    source = (BOOK_DIR / f"{page}.py").read_text(encoding="utf-8")
    cell = source.split('# %% tags=["parameters"]', 1)[1].split("\n# %%", 1)[0]
    namespace: dict[str, Any] = {}
    exec(cell, namespace)  # noqa: S102 - the page's own assignments
    return {name: namespace[name] for name in chapter_parameter_names(page)}
