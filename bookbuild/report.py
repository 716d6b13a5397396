"""What a build reports: its budget (each page's seconds, the cache's size, and the compute floor at this machine's
fp32 matrix-multiply rate, measured in the same build), and how its recorded values compare with another build's.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from utils import budget
from utils.compute import matmul_rate
from utils.paths import cache_dir

from .execute import ChapterRun


def fp32_rate() -> float:
    """This machine's fp32 matrix-multiply rate now (GFLOP/s): the best of 1024- and 2048-sized products."""
    return max(matmul_rate(torch.float32, torch.device("cpu"), size=size) for size in (1024, 2048))


def budget_report(runs: list[ChapterRun], charges: list[dict[str, Any]], fp32_gflops: float,
                  wall_seconds: float | None = None, jobs: int = 1) -> dict[str, Any]:
    """The build's budget: each page's seconds (None where its run was reused), the cache's bytes, and
    :func:`utils.budget.summarize` of the ledger's charges at ``fp32_gflops``.

    Chapter time is ``wall_seconds``, the wall-clock time from the first page's start to the last page's end (with
    ``jobs`` pages at once the pages' own seconds overlap, and their sum, ``page_seconds``, exceeds it); None takes
    that sum (pages one after the other)."""
    page_seconds = sum(run.seconds for run in runs if not run.cached)
    return {"pages": {run.chapter: None if run.cached else round(run.seconds, 1) for run in runs},
            "page_seconds": round(page_seconds, 1), "jobs": jobs,
            "cache_bytes": budget.folder_bytes(cache_dir()),
            **budget.summarize(charges, page_seconds if wall_seconds is None else wall_seconds, fp32_gflops)}


def format_budget(report: dict[str, Any]) -> str:
    """The budget as the build prints it."""
    lines = ["[book] budget of this build:", f"    {'page':24s} {'seconds':>9s}"]
    for page, seconds in report["pages"].items():
        lines.append(f"    {page:24s} {'reused' if seconds is None else f'{seconds:9.1f}':>9s}")
    lines.append(f"    {'pages summed':24s} {report['page_seconds']:9.1f}")
    lines.append(f"    {'chapter time':24s} {report['chapter_seconds']:9.1f}  "
                 f"(wall clock, up to {report['jobs']} pages at once)")
    for kind in budget.KINDS:
        if kind in report["flops"]:
            lines.append(f"    {kind + ' FLOPs':24s} {report['flops'][kind] / 1e12:9.1f} TFLOP "
                         f"({report['tokens'][kind]:,} tokens)")
    lines += [f"    {'fp32 matmul rate':24s} {report['fp32_gflops']:9.1f} GFLOP/s (best of start and end)",
              f"    {'compute floor':24s} {report['floor_seconds']:9.1f} s",
              f"    {'chapter time / floor':24s} " + (f"{report['ratio']:9.2f}x" if report["floor_seconds"] > 0
                                                          else f"{'n/a':>9s}  (these pages ran no model work)"),
              f"    {'cache':24s} {report['cache_bytes'] / 1e9:9.2f} GB = {report['cache_bytes'] / 2**30:.2f} GiB "
              f"({cache_dir().name}/; du -h prints GiB)"]
    return "\n".join(lines)


def _in_cache(entry: Any) -> str:
    """A results entry as JSON, each path into a ``_cache/`` folder cut to the part from ``_cache/`` on."""
    return re.sub(r"[^\s'\"]*/_cache/", "_cache/", json.dumps(entry, sort_keys=True))


def compare_results(before: Path, after: Path) -> dict[str, list[str]]:
    """Compare two folders of results files (``<page>.json``, as a build writes them) value by value: every recorded
    name of every page in either folder, its whole entry (value, text, description), the run's provenance
    (``_run``: code version, date, seconds) aside.

    Returns ``{"compared": [...], "differ": [...], "timings": [...], "missing": [...]}`` of ``page.name`` labels:
    ``timings`` are the differing names that hold a measured duration (``*_seconds``, ``*_minutes``), which no two
    runs share; ``missing`` the pages found in only one folder. Paths into a build's cache (chapter 4's checkpoint
    folders) are compared from the cache folder ``_cache/`` on, so two clones of the book compare equal."""
    before, after = Path(before), Path(after)
    pages = sorted({path.name for folder in (before, after) for path in folder.glob("*.json")})
    report: dict[str, list[str]] = {"compared": [], "differ": [], "timings": [], "missing": []}
    for page in pages:
        if not (before / page).exists() or not (after / page).exists():
            report["missing"].append(page)
            continue
        old, new = (json.loads((folder / page).read_text()) for folder in (before, after))
        for name in sorted((set(old) | set(new)) - {"_run"}):
            label = f"{page.removesuffix('.json')}.{name}"
            report["compared"].append(label)
            if _in_cache(old.get(name)) != _in_cache(new.get(name)):
                report["timings" if name.endswith(("_seconds", "_minutes")) else "differ"].append(label)
    return report


def format_comparison(report: dict[str, list[str]]) -> str:
    """A :func:`compare_results` report as ``python -m bookbuild compare`` prints it."""
    lines = [f"{len(report['compared'])} recorded values compared: {len(report['differ'])} differ, "
             f"{len(report['timings'])} measured durations differ, {len(report['missing'])} pages in one folder only"]
    lines += [f"  differs: {label}" for label in report["differ"]]
    lines += [f"  duration: {label}" for label in report["timings"]]
    lines += [f"  only in one folder: {page}" for page in report["missing"]]
    return "\n".join(lines)
