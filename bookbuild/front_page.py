"""The front page's detail behind its scorecard: every check of every chapter in one figure, and in a folded table.

The scorecard's rows (``book/intro.md``) stay short: the claim, the paper's figure, each check's number and interval,
the verdict. What stands behind a verdict (each check against its threshold) is drawn here, from the results files of
the chapters the build executed, and written into the staged book by :func:`write_front_page` (called by
:func:`bookbuild.stage.stage`): ``scorecard.generated.md``, included by the front page, and its figure.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from utils.results import VERDICT_SIGNS, load_results, setting_of

#: colour of each verdict in the figure (the signs of :data:`utils.results.VERDICT_SIGNS` go with them)
VERDICT_COLOURS = {"reproduced": "#1a7f37", "inconclusive": "#7d7d7d", "not reproduced": "#cf222e"}
FIGURE_NAME = "scorecard_checks.png"
PAGE_NAME = "scorecard.generated.md"


def chapter_checks(chapters: list[str], results_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded check of ``chapters``, in order: dicts of the results files' ``checks`` with ``chapter``."""
    rows = []
    for chapter in chapters:
        recorded = load_results(chapter, results_dir).get("checks")
        for check in (recorded or {}).get("value") or []:
            rows.append({"chapter": chapter, **check})
    return rows


def _fmt(check: dict[str, Any]) -> str:
    return check.get("fmt") or ".3g"


def _number(value: float, fmt: str) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def checks_figure(checks: list[dict[str, Any]]):
    """One row per check: its number (dot) and interval (bar) on the check's own axis, the threshold dashed, coloured
    by verdict, the side of the threshold the claim needs shaded."""
    if not checks:
        raise ValueError("checks is empty: no chapter recorded a scorecard")
    fig = Figure(figsize=(8.0, 0.55 * len(checks) + 0.4))  # no pyplot: the build's process draws it, not a kernel
    axes = fig.subplots(len(checks), 1, squeeze=False)
    for ax, check, label in zip(axes[:, 0], checks, check_labels(checks)):
        colour = VERDICT_COLOURS[check["verdict"]]
        low, high, value, threshold = check["low"], check["high"], check["value"], check["threshold"]
        ends = [x for x in (low, high, value, threshold) if x is not None and math.isfinite(x)]
        span = (max(ends) - min(ends)) or max(abs(threshold), 1.0) * 0.1
        left, right = min(ends) - 0.25 * span, max(ends) + 0.25 * span
        ax.set_xlim(left, right)
        shaded = (threshold, right) if check["direction"] == "above" else (left, threshold)
        ax.axvspan(*shaded, color="#ddf4e4", lw=0)
        ax.axvline(threshold, color="0.3", ls="--", lw=1)
        ax.plot([low, high], [0, 0], color=colour, lw=3, solid_capstyle="butt")
        ax.plot([value], [0], "o", color=colour, ms=6)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=7, pad=1)
        ax.set_ylabel(f"{label}  {VERDICT_SIGNS[check['verdict']]}", rotation=0, ha="right", va="center", fontsize=8)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    fig.subplots_adjust(left=0.45, right=0.98, top=0.99, bottom=0.04, hspace=1.1)
    return fig


def check_labels(checks: list[dict[str, Any]], width: int = 56) -> list[str]:
    """A short label per check: ``ch. 1 accurate`` (the name up to its first colon), with what tells apart two checks
    of one chapter that share it (the end of the name from its last " at ", else a number), cut to ``width``."""
    shorts = [(check["chapter"], check["name"].split(":")[0].strip()) for check in checks]
    labels = []
    for (chapter, short), check in zip(shorts, checks):
        if shorts.count((chapter, short)) > 1:
            setting = setting_of(check["name"])
            short += f", at {setting}" if setting else f" ({len(labels) + 1})"
        label = f"ch. {chapter[:2].lstrip('0')}  {short}"
        labels.append(label if len(label) <= width else label[: width - 1] + "…")
    return labels


def checks_table(checks: list[dict[str, Any]]) -> str:
    """The checks as a Markdown table: chapter, check, number, interval and what it is over, threshold, verdict."""
    lines = ["| chapter | check | number | interval | threshold | verdict |", "|---|---|---|---|---|---|"]
    for check in checks:
        fmt = _fmt(check)
        groups = f"{check['n_groups']} " if check.get("n_groups") else ""
        over = ("exact" if check.get("unit") == "none"
                else f"{check.get('level', 0.95):.0%}, over {groups}{check.get('unit', '')}s")
        side = ">=" if check["direction"] == "above" else "<="
        name = check["name"].replace("|", "\\|")  # a bar inside a cell, escaped for the table
        lines.append(
            f"| {check['chapter'][:2].lstrip('0')} | {name} | {_number(check['value'], fmt)} "
            f"| [{_number(check['low'], fmt)}, {_number(check['high'], fmt)}] ({over}) | {side} "
            f"{_number(check['threshold'], fmt)} | {VERDICT_SIGNS[check['verdict']]} {check['verdict']} |")
    return "\n".join(lines)


def front_page_markdown(checks: list[dict[str, Any]]) -> str:
    """The Markdown the front page includes: the figure of every check, with its caption, and the folded table."""
    n_chapters = len({check["chapter"] for check in checks})
    return f"""```{{figure}} {FIGURE_NAME}
:name: fig-scorecard-checks
:width: 100%

The {len(checks)} checks behind the verdicts of {n_chapters} chapters, each on its own axis: the measured number (dot)
and its 95% interval (bar) against the threshold (dashed), the side the claim needs shaded; green reproduced, grey
inconclusive, red not reproduced (the signs are those of the table above).
```

:::{{dropdown}} Every check in words: its number, interval (and what it is over), threshold and verdict
{checks_table(checks)}
:::
"""


def write_front_page(chapters: list[str], book_dir: Path, results_dir: Path | None = None) -> int:
    """Write the figure and ``scorecard.generated.md`` into ``book_dir`` (the staged book's folder); returns how many
    checks they show."""
    checks = chapter_checks(chapters, results_dir)
    fig = checks_figure(checks)
    fig.savefig(Path(book_dir) / FIGURE_NAME, dpi=110)
    (Path(book_dir) / PAGE_NAME).write_text(front_page_markdown(checks), encoding="utf-8")
    return len(checks)
