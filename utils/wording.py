"""Wording decisions shared by the chapters: words chosen from computed numbers."""
from __future__ import annotations

import math
from typing import Any

from .validation import check_float


def ordering_wording(value: float, reference: float, tolerance: float = 0.0, *, higher: str = "higher",
                     lower: str = "lower", same: str = "about the same") -> str:
    """``higher`` when ``value > reference + tolerance``, ``lower`` when below ``reference - tolerance``, else
    ``same``."""
    check_float("tolerance", tolerance, low=0.0)
    if value > reference + tolerance:
        return higher
    if value < reference - tolerance:
        return lower
    return same



def value_text(value: Any, fmt: str, missing: str = "not reached") -> str:
    """``format(value, fmt)``, or ``missing`` for None or NaN (a milestone the run never reached)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, fmt)

