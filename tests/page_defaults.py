"""The defaults of a page's parameters cell (``book/<page>.py``), executed, for the tests of its parameter object."""
from __future__ import annotations

from typing import Any

from utils.parameters import parameter_names, parameters_cell


def page_defaults(page: str) -> dict[str, Any]:
    """name -> default value of each knob of ``book/<page>.py``'s parameters cell (the cell run as it is)."""
    namespace: dict[str, Any] = {}
    exec(parameters_cell(page), namespace)  # noqa: S102 - the page's own assignments
    return {name: namespace[name] for name in parameter_names(page)}
