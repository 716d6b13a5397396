"""Record a chapter's headline numbers: glued into the text and written to ``_build/results/<chapter>.json``.

Numbers in prose are never typed by hand: a chapter calls :func:`record` and its markdown refers to the
value with ``{glue:text}`\\`<chapter>.<name>\\``.  The JSON files are what the front page's scorecard reads.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from .paths import RESULTS_DIR


def _to_jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    return value


def results_path(chapter: str, results_dir: Path | None = None) -> Path:
    return Path(results_dir or os.environ.get("LOGLINEAR_RESULTS", RESULTS_DIR)) / f"{chapter}.json"


def load_results(chapter: str, results_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """The recorded numbers of ``chapter`` (empty when the chapter has not run)."""
    path = results_path(chapter, results_dir)
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def format_value(value: Any, fmt: str | None) -> str:
    if fmt is None:
        return str(value)
    return format(value, fmt)


def record(
    chapter: str,
    name: str,
    value: Any,
    *,
    fmt: str | None = None,
    description: str = "",
    display: bool = False,
    results_dir: Path | None = None,
) -> None:
    """Glue ``value`` as ``<chapter>.<name>`` and merge it into ``_build/results/<chapter>.json``.

    The glued object is the formatted string (so prose shows exactly what the JSON's ``text`` holds);
    the JSON keeps the raw value too.  The file is rewritten atomically.  Nothing is returned, so a chapter cell
    ending in ``record(...)`` displays nothing on the page.
    """
    text = format_value(value, fmt)
    try:
        from myst_nb import glue

        glue(f"{chapter}.{name}", text, display=display)
    except ImportError:  # outside a notebook environment the JSON is still written
        pass
    path = results_path(chapter, results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = load_results(chapter, results_dir)
    data[name] = {"value": _to_jsonable(value), "text": text, "description": description}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{chapter}.", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def glue_figure(name: str, figure: Any) -> None:
    """Glue a matplotlib figure under ``name`` for a captioned ``{glue:figure}`` directive, then close it."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(name, figure, display=False)
    plt.close(figure)


VERDICTS = ("reproduced", "partly reproduced", "not reproduced")


def verdict(checks: dict[str, bool]) -> str:
    """The scorecard verdict from named checks of a claim: all pass, some pass, or none pass."""
    if not checks:
        raise ValueError("checks must name at least one check of the claim")
    passed = sum(bool(value) for value in checks.values())
    return VERDICTS[0] if passed == len(checks) else VERDICTS[1] if passed else VERDICTS[2]


def record_scorecard(chapter: str, figure: str, checks: dict[str, bool]) -> None:
    """Record a chapter's scorecard entry for the front page.

    Args:
        figure: this book's figure for the claim, as a short text built from computed values.
        checks: one-line criteria (each stating its threshold and the measured value) -> whether it passed.

    Records ``scorecard_figure``, ``verdict`` and ``verdict_reason`` (the criteria, each marked passed or failed).
    Returns nothing, like :func:`record`, so a chapter cell ending in this call shows no stray value.
    """
    outcome = verdict(checks)
    reason = "; ".join(f"{name} ({'yes' if ok else 'no'})" for name, ok in checks.items())
    record(chapter, "scorecard_figure", figure, description="this book's figure for the chapter's claim")
    record(chapter, "verdict", outcome, description="scorecard verdict")
    record(chapter, "verdict_reason", reason, description="criteria behind the verdict")
