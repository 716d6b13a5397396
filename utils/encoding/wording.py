"""Chapter 1's wording: words chosen from computed numbers.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .dispersion import DECLARED_STATISTIC, STATISTICS, best_dispersion


def ordering_sentence(ranks: pd.DataFrame, n_groups: int, declared: str = DECLARED_STATISTIC) -> str:
    """The declared statistic's rank correlation with R² over the groups, and which candidate orders R² best
    (descriptive: chosen after looking), in words, from :func:`utils.encoding.dispersion.rank_statistics`'s table."""
    best = best_dispersion(ranks)
    rho = dict(zip(ranks.statistic, ranks["all groups"]))
    entropy = rho.get("mean_entropy", math.nan)
    entropy_text = ("" if math.isnan(entropy) else
                    f"; the mean entropy of the predictions, kept as a correlate, reaches {entropy:.2f}"
                    + (" and orders R² better" if abs(entropy) > abs(rho[declared]) else ""))
    best_text = ("it is also the candidate dispersion that orders R² best" if best == declared else
                 f"of the candidate dispersions, {best} orders R² best ({rho[best]:.2f}; chosen after looking, so "
                 "not tested)")
    return (f"Over {n_groups} groups of positions, R² {trend_word(rho[declared])} as the declared statistic "
            f"{declared} ({STATISTICS[declared]}) grows, rank correlation {rho[declared]:.2f}; {best_text}"
            f"{entropy_text}.")


def trend_word(rho: float) -> str:
    """A rank correlation's direction in words: "rises" (> 0), "falls" (< 0) or "does not move" (0 or NaN)."""
    return "rises" if rho > 0 else "falls" if rho < 0 else "does not move"


def range_word(value: float, low: float, high: float) -> str:
    """Where ``value`` lies against a range of reference values: "below", "within" or "above" it."""
    if low > high:
        raise ValueError(f"low={low} must not exceed high={high}")
    return "below" if value < low else "above" if value > high else "within"


def transfer_sentence(transfer: pd.DataFrame, equal_r2: np.ndarray) -> str:
    """The transfer results in words, one sentence per corpus of :func:`utils.encoding.transfer.transfer_table`: the
    main direction's rank
    correlation and its R² once intercept and scale are refitted (what the direction carries), the raw prediction's
    R² (which also charges the main corpus's intercept and scale), and the own fit placed against the range of the
    main corpus's equal-position fits (``equal_r2``)."""
    low, high = float(np.min(equal_r2)), float(np.max(equal_r2))
    return " ".join(
        f"On {row.corpus} ({row.text}), the main corpus's direction orders the held-out tokens with Spearman "
        f"{row['Spearman (A from main corpus)']:.3f} and, with its intercept and scale refitted on {row.corpus}'s "
        f"training tokens, reaches R² {row['R² (main direction, rescaled)']:.3f} (taken as it stands, with the main "
        f"corpus's intercept and scale, {row['R² (A from main corpus)']:.3f}); the corpus's own fit reaches "
        f"{row['R² (own A)']:.3f}, {range_word(row['R² (own A)'], low, high)} the main corpus's range at as many "
        f"positions; the cosine of the two directions is {row['cosine(A_main, A_own)']:.3f}."
        for _, row in transfer.iterrows())
