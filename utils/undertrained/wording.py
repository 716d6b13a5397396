"""Chapter 6's wording decisions: words chosen from computed numbers.
"""
from __future__ import annotations

from typing import Any

from ..validation import check_int
from .scorecard import rule_of_three, share_bound, worst_training_change


def ranking_wording(table) -> str:
    """Which indicator's top list holds the most verified tokens (a
    :func:`utils.undertrained.indicators.precision_table`), in words; ties are named together."""
    if len(table) == 0:
        raise ValueError("table must hold at least one indicator")
    best = table.precision.max()
    names = list(table.indicator[table.precision == best])
    lead = " and ".join(f"the {name}" for name in names)
    verb, whose = ("tie", "each top") if len(names) > 1 else ("ranks best", "its top")
    return f"{lead} {verb}, with {best:.0%} of {whose} {int(table.k.iloc[0])} verified"


def lift_wording(lift: float, interval: Any) -> str:
    """Whether a candidate list beats random tokens, from the lift and its interval (three-valued)."""
    if interval.low > 0:
        return "more often under-trained than random tokens"
    if interval.high < 0:
        return "less often under-trained than random tokens"
    return "not distinguishable from random tokens at this sample size"


def geometry_wording(n_unargmaxable: int, n_duplicate: int, quantised: bool = False) -> str:
    """What the head's geometry says of the verified under-trained tokens, in words (the counts are stated apart);
    ``quantised``: the head is stored on a Q8_0 grid, so its duplicate rows may be rounding ties."""
    n_unargmaxable = check_int("n_unargmaxable", n_unargmaxable, minimum=0)
    n_duplicate = check_int("n_duplicate", n_duplicate, minimum=0)
    if n_unargmaxable == 0 and n_duplicate == 0:
        return ("the head's geometry forbids none of them: the model can hardly say them, yet some input makes "
                "each one win")
    if quantised and n_unargmaxable == 0:
        return ("none is unargmaxable; the duplicates can at best tie with their twins in the head as stored, but the "
                "stored head is quantised, so whether their rows are identical before rounding is not known")
    return ("the geometry itself forbids a strict argmax to those (a duplicate row can at best tie with its twin), "
            "while the other verified tokens could win for some input")


def quantisation_wording(grid: dict[str, float], ties: Any, float_duplicates: int | None, *,
                         what: str = "the duplicated candidates") -> str:
    """The quantisation caveat in words: whether the head lies on a Q8_0 grid (``grid``:
    :func:`utils.undertrained.geometry.quantisation_grid`), how far ``what`` (``ties``:
    :func:`utils.undertrained.geometry.nearest_distinct_steps` of those duplicated rows) lie from rows stored
    differently, and the duplicate rows of chapter 4's float32 heads (None without chapter 4)."""
    if grid["on_grid"] < 1.0:
        text = (f"{grid['on_grid']:.1%} of the head's 32-value blocks lie on a GGUF Q8_0 grid, so the head is not read "
                f"as Q8_0-quantised and its duplicate rows as exact")
    else:
        text = (f"every 32-value block of the head lies on a GGUF Q8_0 grid (each value an integer multiple of its "
                f"block's step; median step {grid['median_step']:.2g}): the head is de-quantised")
        if len(ties):
            steps = float(ties.max_steps.max())
            text += (f"; {what} lie {steps:g} step{'' if steps == 1 else 's'} or less, in at most "
                     f"{int(ties.n_differ.max())} of {int(grid['d'])} values, from rows stored "
                     f"differently, so float rows as close as that could have been merged by rounding: the "
                     f"duplicates may be rounding ties")
    if float_duplicates is not None:
        text += (f". In chapter 4's float32 heads, never quantised, {float_duplicates:,} rows are exact duplicates "
                 f"(largest count over sizes)")
    return text


def training_bound_wording(changes: dict[str, dict[str, int]]) -> str:
    """What the sample of chapter 4's tokens says of the whole vocabulary, in words (:func:`share_bound`)."""
    if not changes:
        return "without chapter 4's models there is no sample to bound"
    created, tested, V = worst_training_change(changes)
    high = share_bound(created, tested).high
    if created == 0:
        return (f"none of the {tested:,} sampled tokens of a size became unargmaxable, which bounds the share of its "
                f"{V:,} tokens that did at {high:.2%} (exact binomial bound, 95% one-sided; the rule of three, "
                f"3/{tested:,}, gives {rule_of_three(tested):.2%}), up to about {high * V:,.0f} tokens: a sample "
                f"cannot show that none did")
    return (f"{created:,} of the {tested:,} sampled tokens of a size became unargmaxable, a share of at most "
            f"{high:.2%} of its {V:,} tokens (exact binomial bound, 95% one-sided)")


def training_effect_wording(created: int, removed: int) -> str:
    """What training did to the unargmaxable tokens of the tested sample, in words."""
    created = check_int("created", created, minimum=0)
    removed = check_int("removed", removed, minimum=0)
    if created == 0 and removed == 0:
        return "training neither created nor removed an unargmaxable token among those tested"
    parts = []
    if created:
        parts.append(f"created {created} unargmaxable token{'s' if created != 1 else ''}")
    if removed:
        parts.append(f"removed {removed}")
    return "training " + " and ".join(parts) + " among those tested"
