"""What chapter 6 records: its numbers, each builder recording a block of them with the chapter's recorder
(:class:`utils.results.Recorder`), its scorecard checks and figure.

Every check says what its interval is over: the closeness lift over tokens (a bootstrap of the prompted top list and
the random controls), the tokens that cannot win strictly over what the head's Q8_0 rounding may have merged, and
the tokens that training made unargmaxable over the sample of tokens tested (an exact binomial bound: with no such
token among n, the rule of three, about 3 / n).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from .uncertainty import Check, Interval, exact
from .undertrained import CLOSENESS, COSINE, Prompting, geometry_wording, lift_wording, ranking_wording
from .validation import check_float, check_int, check_positive_int

if TYPE_CHECKING:
    from .results import Recorder


def share_bound(k: int, n: int, level: float = 0.95) -> Interval:
    """The exact binomial (Clopper-Pearson) bounds of a share seen ``k`` times in ``n`` sampled tokens, each bound
    one-sided at ``level``: -> Interval with unit "sampled token". With ``k = 0`` the upper bound is
    ``1 - (1 - level) ** (1 / n)``, about ``3 / n`` at 95% (the rule of three)."""
    n = check_positive_int("n", n)
    k = check_int("k", k, minimum=0, maximum=n)
    level = check_float("level", level, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    low = 0.0 if k == 0 else float(stats.beta.ppf(1 - level, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(level, k + 1, n - k))
    return Interval(low, high, level, 0, "sampled token")


def rule_of_three(n: int) -> float:
    """3 / n: the rule-of-three approximation of the 95% upper bound of a share never seen in ``n`` samples."""
    return 3.0 / check_positive_int("n", n)


def worst_training_change(changes: dict[str, dict[str, int]]) -> tuple[int, int, int]:
    """(created, tested, V) of the size whose share of tokens made unargmaxable is largest (the first on ties);
    ``changes``: size -> :func:`utils.undertrained_training.created_removed` (with "V")."""
    if not changes:
        raise ValueError("changes must hold at least one size")
    size = max(changes, key=lambda s: changes[s]["created"] / changes[s]["tested"])
    return changes[size]["created"], changes[size]["tested"], changes[size]["V"]


def record_prompting(rec: Recorder, prompting: Prompting, reference_rule: str, table: Any, lift: float,
                     lift_interval: Any) -> None:
    """Record section 6.1's numbers with the chapter's recorder. ``table``: the
    :func:`utils.undertrained.precision_table`; ``lift``, ``lift_interval``: :meth:`Prompting.lift`."""
    precision = dict(zip(table.indicator, table.precision))
    rec("reference_rule", reference_rule, None, "how the unused reference set was chosen")
    rec("n_reference", len(prompting.reference), ",", "tokens in the unused reference set")
    rec("n_candidates", int(table.k.iloc[0]), ",", "top tokens of each indicator prompted")
    rec("n_control", len(prompting.control), ",", "random control tokens prompted")
    rec("threshold", prompting.threshold, "g", "probability below which a prompted token counts as under-trained")
    rec("n_templates", len(prompting.templates), ",", "copy templates; a token's probability is their largest")
    rec("n_prompted", len(prompting.prompted), ",", "distinct tokens prompted")
    rec("n_verified", int(prompting.hits(prompting.candidates).sum()), ",",
        "distinct candidates verified as under-trained")
    rec("control_rate", float(prompting.hits(prompting.control).mean()), ".0%",
        "share of random control tokens verified (base rate)")
    rec("reference_rate", float(np.mean(prompting.hits(prompting.reference))), ".0%",
        "share of the reference tokens verified")
    rec("ranking", ranking_wording(table), None, "which indicator's top list holds most verified tokens")
    rec("precision_euclidean", float(precision[CLOSENESS]), ".0%", "precision of the closeness top list (Euclidean)")
    rec("precision_cosine", float(precision.get(COSINE, math.nan)), ".0%",
        "precision of the closeness top list (cosine distance)")
    rec("lift", lift, ".0%", "precision of the closeness indicator minus the base rate")
    rec("lift_interval", lift_interval.label(".0%"), None, "its interval (token-level bootstrap)")
    rec("lift_wording", lift_wording(lift, lift_interval), None, "the lift in words")


def record_agreement(rec: Recorder, correlations: Any, overlap: Any, n_under: int, n_unargmaxable: int,
                     n_duplicate: int, n_verdict_tokens: int, quantised: bool = False) -> None:
    """Record section 6.2's numbers with the chapter's recorder, from the :func:`utils.undertrained.rank_agreement`
    and :func:`utils.undertrained.top_overlap` of the views and the verdicts of the verified candidates
    (``quantised``: the head is stored on a Q8_0 grid)."""
    cosine = COSINE in overlap.index
    rec("rho_closeness_predicted", correlations.loc[CLOSENESS, "predicted -log alpha"], ".2f",
        "rank correlation: closeness to unused mean vs predicted -log alpha")
    rec("rho_predicted_measured", correlations.loc["predicted -log alpha", "measured -log alpha"], ".2f",
        "rank correlation: predicted vs measured -log alpha")
    rec("rho_closeness_margin", correlations.loc[CLOSENESS, "thin argmax margin"], ".2f",
        "rank correlation: closeness vs thin argmax margin")
    rec("rho_euclidean_cosine", correlations.loc[CLOSENESS, COSINE] if cosine else math.nan, ".2f",
        "rank correlation: closeness by Euclidean vs by cosine distance")
    rec("overlap_closeness_predicted", int(overlap.loc[CLOSENESS, "predicted -log alpha"]), ",",
        "tokens shared by the two top lists")
    rec("overlap_euclidean_cosine", int(overlap.loc[CLOSENESS, COSINE]) if cosine else 0, ",",
        "tokens shared by the Euclidean and cosine top lists")
    rec("n_under", n_under, ",", "verified under-trained candidates")
    rec("under_unargmaxable", n_unargmaxable, ",", "verified under-trained candidates that are unargmaxable")
    rec("under_duplicate", n_duplicate, ",", "verified under-trained candidates whose row has an identical twin")
    rec("under_geometry", geometry_wording(n_unargmaxable, n_duplicate, quantised), None,
        "what the geometry says, in words")
    rec("verdict_tokens", n_verdict_tokens, ",", "tokens with chapter 5's verdicts")


def quantisation_wording(grid: dict[str, float], ties: Any, float_duplicates: int | None, *,
                         what: str = "the duplicated candidates") -> str:
    """The quantisation caveat in words: whether the head lies on a Q8_0 grid (``grid``:
    :func:`utils.undertrained.quantisation_grid`), how far ``what`` (``ties``:
    :func:`utils.undertrained.nearest_distinct_steps` of those duplicated rows) lie from rows stored differently, and
    the duplicate rows of chapter 4's float32 heads (None without chapter 4)."""
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


def record_quantisation(rec: Recorder, grid: dict[str, float], ties: Any, float_duplicates: int | None) -> None:
    """Record the quantisation caveat's numbers and sentence (:func:`quantisation_wording`) with the chapter's
    recorder."""
    rec("quant_on_grid", grid["on_grid"], ".1%", "share of the head's 32-value blocks on a Q8_0 grid")
    rec("quant_step", grid["median_step"], ".2g", "median Q8_0 step of the head's blocks")
    rec("tie_steps", float(ties.max_steps.max()) if len(ties) else math.nan, "g",
        "largest gap, in steps, from a duplicated candidate to the nearest row stored differently")
    rec("float_duplicates", -1 if float_duplicates is None else int(float_duplicates), ",",
        "duplicate rows in chapter 4's float32 heads (largest over sizes; -1: not available)")
    rec("quant_caveat", quantisation_wording(grid, ties, float_duplicates), None, "the quantisation caveat, in words")


def scorecard_checks(lift: float, lift_interval: Any, n_unargmaxable: int, n_duplicate: int, *,
                     quantised: bool = False, changes: dict[str, dict[str, int]] | None = None) -> list:
    """The chapter's checks (:class:`utils.uncertainty.Check`), each saying what its interval is over:

    - the closeness lift above 0 (interval over tokens: the top list and the random controls resampled);
    - the verified under-trained tokens that cannot win strictly (unargmaxable or duplicate rows) at most 0: exact for
      a float head; for a ``quantised`` head the interval runs from none to all of the duplicates being rounding
      ties of the Q8_0 storage;
    - with chapter 4's models (``changes``: size -> created, tested, V), the share of sampled tokens that training
      made unargmaxable at most 0, with the exact binomial bound over the sampled tokens (:func:`share_bound`)."""
    n_unargmaxable = check_int("n_unargmaxable", n_unargmaxable, minimum=0)
    n_duplicate = check_int("n_duplicate", n_duplicate, minimum=0)
    n_cannot_win = n_unargmaxable + n_duplicate
    if quantised and n_duplicate:
        cannot_win = ("cannot win strictly: verified under-trained tokens of the de-quantised head that are "
                      "unargmaxable or have a duplicate row (interval: from none to all of the duplicates being Q8_0 "
                      "rounding ties)")
        interval = Interval(float(n_unargmaxable), float(n_cannot_win), 1.0, 0, "rounding")
    else:
        cannot_win = ("cannot win strictly: verified under-trained tokens that are unargmaxable or have a duplicate "
                      "row (exact: a property of the head)")
        interval = exact(n_cannot_win)
    checks = [
        Check("closeness to the unused mean: precision of its top list minus the random base rate (interval over "
              "tokens: the top list and the random controls resampled)", lift, lift_interval, 0.0, "above", ".2f"),
        Check(cannot_win, float(n_cannot_win), interval, 0.0, "below", ".0f"),
    ]
    if changes:
        created, tested, V = worst_training_change(changes)
        checks.append(Check(
            f"made unargmaxable by training: share of chapter 4's tokens ({tested:,} sampled of {V:,}; interval: "
            f"exact binomial bounds over the sampled tokens, 95% one-sided, the rule of three when none)",
            created / tested, share_bound(created, tested), 0.0, "below", ".2%"))
    return checks


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


def scorecard_figure(model: str, prompting: Prompting, n_unargmaxable: int, n_duplicate: int) -> str:
    """The chapter's figure for the scorecard, in words, from the prompting and the verdicts of its candidates."""
    n_verified = int(prompting.hits(prompting.candidates).sum())
    return (f"{n_verified} of {len(prompting.candidates)} candidates of {model} under-trained "
            f"(random tokens: {prompting.hits(prompting.control).mean():.0%}); of those, "
            f"{n_unargmaxable} unargmaxable, {n_duplicate} duplicate rows")
