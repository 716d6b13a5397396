"""Chapter 5's wording decisions: words chosen from computed numbers.
"""
from __future__ import annotations

import math


def first_fraction_text(first: float, fractions: list[float]) -> str:
    """``first`` (a :func:`utils.argmax.sweeps.first_unargmaxable_fraction`) in words: "75%", or "none up to 95%" when
    it is NaN (no deleted fraction of ``fractions`` left a token unargmaxable)."""
    if math.isfinite(first):
        return f"{first:.0%}"
    return f"none up to {max(fractions):.0%}"


def paper_range_sentence(first: float, paper_low: float = 0.3, paper_high: float = 0.4) -> str:
    """Where chapter 3's deletions (the paper's range, ``paper_low`` to ``paper_high``) lie relative to ``first``,
    the smallest deleted fraction with an unargmaxable token (NaN: none on the grid), as a sentence."""
    paper_range = f"{100 * paper_low:.0f}–{paper_high:.0%}"
    if not math.isfinite(first) or first > paper_high:
        return f"The {paper_range} deletions of chapter 3 (the paper's range) stop short of that point."
    return f"The {paper_range} deletions of chapter 3 (the paper's range) already reach that point."
