"""The budget a build prints: each page's seconds, the cache's size, and the compute floor at this machine's fp32
matrix-multiply rate, measured in the same build.
"""
from __future__ import annotations

from typing import Any

import torch

from utils import budget
from utils.compute import matmul_rate
from utils.paths import cache_dir

from .execute import ChapterRun


def fp32_rate() -> float:
    """This machine's fp32 matrix-multiply rate now (GFLOP/s): the best of 1024- and 2048-sized products."""
    return max(matmul_rate(torch.float32, torch.device("cpu"), size=size) for size in (1024, 2048))


def budget_report(runs: list[ChapterRun], charges: list[dict[str, Any]], fp32_gflops: float) -> dict[str, Any]:
    """The build's budget: each page's seconds (None where its run was reused), the cache's bytes, and
    :func:`utils.budget.summarize` of the ledger's charges at ``fp32_gflops``."""
    executed = sum(run.seconds for run in runs if not run.cached)
    return {"pages": {run.chapter: None if run.cached else round(run.seconds, 1) for run in runs},
            "cache_bytes": budget.folder_bytes(cache_dir()),
            **budget.summarize(charges, executed, fp32_gflops)}


def format_budget(report: dict[str, Any]) -> str:
    """The budget as the build prints it."""
    lines = ["[book] budget of this build:", f"    {'page':24s} {'seconds':>9s}"]
    for page, seconds in report["pages"].items():
        lines.append(f"    {page:24s} {'reused' if seconds is None else f'{seconds:9.1f}':>9s}")
    lines.append(f"    {'chapter time':24s} {report['chapter_seconds']:9.1f}")
    for kind in budget.KINDS:
        if kind in report["flops"]:
            lines.append(f"    {kind + ' FLOPs':24s} {report['flops'][kind] / 1e12:9.1f} TFLOP "
                         f"({report['tokens'][kind]:,} tokens)")
    lines += [f"    {'fp32 matmul rate':24s} {report['fp32_gflops']:9.1f} GFLOP/s (best of start and end)",
              f"    {'compute floor':24s} {report['floor_seconds']:9.1f} s",
              f"    {'chapter time / floor':24s} " + (f"{report['ratio']:9.2f}x" if report["floor_seconds"] > 0
                                                          else f"{'n/a':>9s}  (these pages ran no model work)"),
              f"    {'cache':24s} {report['cache_bytes'] / 1e9:9.2f} GB ({cache_dir().name}/)"]
    return "\n".join(lines)
