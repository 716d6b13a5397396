"""The numbers chapter 3 records, each builder recording a block of them with the chapter's recorder
(:class:`utils.results.Recorder`), ``rec(name, value, fmt, description)``, so that the chapter records a whole block
in one call."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .wording import measure_gap_text, percent, percent_format

if TYPE_CHECKING:
    from ..results import Recorder


def record_sweep(rec: Recorder, tests: Mapping[str, Any], n_positions: int, fractions: list[float], n_orders: int,
                 js_halves: float, halves_safe: Any, js_corpora: Mapping[str, float]) -> None:
    """Record the held-out passes and the sweep's size, and the two-halves yardstick.

    Args:
        rec: the chapter's recorder.
        tests: {corpus: Activations} of the held-out passes (each has ``describe()``).
        n_positions: test positions per corpus in the sweep.
        fractions: the sweep's deletion fractions, sorted.
        n_orders: number of deletion orders (criteria and random seeds) compared.
        js_halves: JS (nats) between the alphas of two halves of the in-distribution test text.
        halves_safe: ``largest_safe_fraction`` frame indexed by criterion for the yardstick threshold.
        js_corpora: {corpus: JS (nats)} between the in-distribution and each other test pass.
    """
    for name, acts in tests.items():
        rec(f"text_test_{name}", acts.describe(), None, f"the held-out {name} pass")
    rec("test_texts", "; ".join(acts.describe() for acts in tests.values()), None,
        "the held-out passes, one sentence each")
    rec("n_positions", int(n_positions), ",", "test positions per corpus in the sweep")
    rec("max_fraction", fractions[-1], percent_format(fractions[-1]), "largest fraction")
    rec("n_settings", n_orders * len(fractions), None, "pruned heads compared per corpus")
    rec("js_halves", js_halves, ".3f", "JS (nats) between alpha of two halves of the in-distribution test text, "
        "each sampled at the sweep's number of positions with the same offsets, full head")
    rec("abs_A_js_halves_fraction", percent(float(halves_safe.loc["abs_A", "largest_fraction"])), None,
        "|A| criterion: largest fraction whose JS(alpha) stays below the two-halves yardstick")
    rec("js_corpora", ", ".join(f"{v:.3f} ({k})" for k, v in js_corpora.items()) or "none measured", None,
        "JS (nats) between alpha of the whole in-distribution and other test passes, full head")


def record_paper_fraction(rec: Recorder, nearest: float, paper_js: float, paper_top1: float, at_paper: Any,
                          js_threshold: float, top1_threshold: float) -> None:
    """Record the |A| criterion at the paper's fraction and the largest fractions within each threshold.

    Args:
        rec: the chapter's recorder.
        nearest: the grid fraction nearest the paper's.
        paper_js, paper_top1: the |A| criterion's largest fractions within the JS and top-1 thresholds.
        at_paper: the in-distribution sweep rows of the |A| criterion indexed by fraction (js_alpha, mean_kl,
            top1_agreement columns).
    """
    rec("paper_fraction", nearest, percent_format(nearest), "the fraction the paper's claim is checked at")
    rec("abs_A_js_fraction", paper_js, percent_format(paper_js),
        f"|A| criterion: largest fraction with JS(alpha) < {js_threshold} (in-distribution)")
    rec("abs_A_top1_fraction", paper_top1, percent_format(paper_top1),
        f"|A| criterion: largest fraction with top-1 agreement > {top1_threshold} (in-distribution)")
    rec("abs_A_js_at_paper", float(at_paper.loc[nearest, "js_alpha"]), ".2g",
        "JS(alpha) in nats at the paper's fraction, |A| criterion")
    rec("abs_A_kl_at_paper", float(at_paper.loc[nearest, "mean_kl"]), ".3f",
        "mean per-position KL in nats at the paper's fraction, |A| criterion")
    rec("abs_A_top1_at_paper", float(at_paper.loc[nearest, "top1_agreement"]), ".1%",
        "top-1 agreement at the paper's fraction, |A| criterion")
    rec("measure_gap", measure_gap_text(paper_js, paper_top1), None, "which measure tolerates more deletion (|A|)")
    rec("js_threshold", js_threshold, "g", "JS threshold (nats)")
    rec("top1_threshold", top1_threshold, ".0%", "top-1 agreement threshold")


def record_generation(rec: Recorder, n_prompts: int, prompt_length: int, n_prompt_documents: int,
                      mauve_by_condition: Any, mauve_fraction: float, best: str) -> None:
    """Record the generation study: its prompts and the MAUVE scores at the headline fraction.

    Args:
        rec: the chapter's recorder.
        n_prompt_documents: documents of the held-out split the prompts come from.
        mauve_by_condition: a Series of MAUVE by condition label ("full model", "<criterion> <fraction%>").
        mauve_fraction: the generation fraction nearest the paper's.
        best: the criterion chosen on training text.
    """
    rec("n_prompts", n_prompts, None, "prompts sampled per head")
    rec("prompt_length", prompt_length, None, "tokens per prompt")
    rec("prompt_documents", int(n_prompt_documents), None, "documents of the held-out split the prompts come from")
    rec("mauve_floor", float(mauve_by_condition["full model"]), ".3f",
        "MAUVE of the full model against itself (second sampling seed)")
    rec("mauve_fraction", mauve_fraction, percent_format(mauve_fraction),
        "generation fraction nearest the paper's (MAUVE headline)")
    rec("mauve_abs_A", float(mauve_by_condition[f"abs_A {percent(mauve_fraction)}"]), ".3f",
        "MAUVE of the |A|-pruned model at the headline fraction")
    rec("mauve_best", float(mauve_by_condition[f"{best} {percent(mauve_fraction)}"]), ".3f",
        "MAUVE of the model pruned by the best criterion at the headline fraction")
