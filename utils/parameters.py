"""The base of the pages' parameter objects: a frozen dataclass of a page's knobs, built from its namespace in one call.

Each chapter and rerun page declares its knobs as the fields of a subclass (``utils.argmax.parameters``,
``utils.encoding.parameters``, ...), whose ``__post_init__`` checks them; :meth:`PageParameters.from_namespace`
builds it from the page's ``globals()``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

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
