"""The base of the pages' parameter objects: a frozen dataclass of a page's knobs, built from its namespace in one call.

Each chapter and rerun page declares its knobs as the fields of a subclass (``utils.argmax.parameters``,
``utils.encoding.parameters``, ...), whose ``__post_init__`` checks them; :meth:`PageParameters.from_namespace`
builds it from the page's ``globals()``. :func:`parameters_cell`, :func:`parameter_names` and
:func:`literal_defaults` read a page's parameters cell itself (``book/<page>.py``), without running the page.
"""
from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from .paths import BOOK_DIR

P = TypeVar("P", bound="PageParameters")


class PageParameters:
    """Mixin of a frozen dataclass of a page's knobs (see the page's parameters cell for what each one does)."""

    @classmethod
    def from_namespace(cls: type[P], namespace: Mapping[str, Any]) -> P:
        """The parameters named by this class's fields, read from ``namespace`` (the page's ``globals()``); a field
        without a default must be there."""
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        names = [f.name for f in fields]
        required = [f.name for f in fields if f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in namespace]
        if missing:
            raise ValueError(f"the chapter's parameters lack {missing}; expected every one of {names}")
        return cls(**{name: namespace[name] for name in names if name in namespace})


def parameters_cell(page: str) -> str:
    """The source of the ``parameters`` cell of ``book/<page>.py`` (the knobs papermill can override)."""
    source = (BOOK_DIR / f"{page}.py").read_text(encoding="utf-8")
    marker = '# %% tags=["parameters"]'
    if marker not in source:
        raise ValueError(f"book/{page}.py has no parameters cell")
    return source.split(marker, 1)[1].split("\n# %%", 1)[0]


def _assignments(page: str) -> list[tuple[str, ast.expr]]:
    return [(target.id, node.value) for node in ast.parse(parameters_cell(page)).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)]


def parameter_names(page: str) -> list[str]:
    """Names assigned in the ``parameters`` cell of ``book/<page>.py``, in order."""
    return [name for name, _ in _assignments(page)]


def literal_defaults(page: str) -> dict[str, Any]:
    """The default values of ``book/<page>.py``'s parameters cell, for a cell whose every value is a literal
    (``ValueError`` from :func:`ast.literal_eval` otherwise)."""
    return {name: ast.literal_eval(value) for name, value in _assignments(page)}
