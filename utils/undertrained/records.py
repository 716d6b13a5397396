"""What chapter 6 records: its numbers, each builder recording a block of them with the chapter's recorder
(:class:`utils.results.Recorder`). Its checks are in :mod:`utils.undertrained.scorecard`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .indicators import CLOSENESS, COSINE
from .prompting import Prompting
from .wording import geometry_wording, lift_wording, quantisation_wording, ranking_wording, training_effect_wording

if TYPE_CHECKING:
    from ..results import Recorder


def record_prompting(rec: Recorder, prompting: Prompting, reference_rule: str, table: Any, lift: float,
                     lift_interval: Any) -> None:
    """Record section 6.1's numbers with the chapter's recorder. ``table``: the
    :func:`utils.undertrained.indicators.precision_table`; ``lift``, ``lift_interval``: :meth:`Prompting.lift`."""
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
    """Record section 6.2's numbers with the chapter's recorder, from the
    :func:`utils.undertrained.indicators.rank_agreement` and :func:`utils.undertrained.indicators.top_overlap` of the
    views and the verdicts of the verified candidates (``quantised``: the head is stored on a Q8_0 grid)."""
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


def record_reachability(rec: Recorder, reach: Any, changes: dict[str, dict[str, int]], recovery: Any) -> None:
    """Record section 6.3's numbers with the chapter's recorder, from :func:`utils.undertrained.training.reachability`'s
    three results (worst case over sizes; "none" and NaN without chapter 4's runs)."""
    created = sum(c["created"] for c in changes.values())
    removed = sum(c["removed"] for c in changes.values())
    nan = float("nan")
    rec("dyn_sizes", ", ".join(changes) or "none", None, "chapter 4's sizes tested")
    rec("dyn_tested", max([c["tested"] for c in changes.values()], default=0), ",", "tokens tested per checkpoint")
    rec("dyn_unargmaxable", int(reach.unargmaxable.sum()) if len(reach) else 0, ",",
        "unargmaxable verdicts over every size, stage and group")
    rec("dyn_created", created, ",", "tokens that became unargmaxable between initialisation and the end")
    rec("dyn_wording", training_effect_wording(created, removed), None, "what training did, in words")
    rec("recovery_precision", float(recovery.precision.min()) if len(recovery) else nan, ".0%",
        "smallest precision (over sizes) of the closest rows at finding never-seen tokens")
    rec("recovery_base", float(recovery.base_rate.max()) if len(recovery) else nan, ".0%",
        "largest share of never-seen tokens in the vocabulary (the base rate)")
    rec("recovery_auc", float(recovery.auc.min()) if len(recovery) else nan, ".2f",
        "smallest AUC of closeness at separating never-seen from seen tokens")
