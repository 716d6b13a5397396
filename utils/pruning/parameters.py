"""The parameters of chapter 3 (deleting output-embedding dimensions), checked in one place before any work.

The chapter checks every knob with :func:`check_parameters` (from its ``globals()``), then the knobs that depend on
the model (lengths against its context, enough windows in each corpus split) with :func:`check_model_parameters`
once it is loaded.  Invalid values raise ``ValueError`` naming the parameter, the value and what is allowed.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..corpora import CORPORA, check_window_count
from ..validation import check_choice, check_float, check_int, check_positive_int
from .criteria import CRITERIA
from .sweep import check_fractions

#: the chapter's knobs that must be positive integers
POSITIVE_INTS: tuple[str, ...] = ("n_tokens", "n_tokens_test", "batch_size", "saliency_positions", "chunk_size",
                                  "n_prompts", "prompt_length", "max_new_tokens", "generation_batch_size",
                                  "n_boot_texts", "basis_positions")
#: the chapter's seeds (non-negative integers)
SEEDS: tuple[str, ...] = ("sample_seed", "seed", "reference_seed", "generation_seed")


def check_parameters(p: Mapping[str, Any]) -> dict[str, list[float]]:
    """Check every knob of chapter 3 that needs no model; ``p`` is the chapter's namespace.

    Returns:
        The three grids of deletion fractions, sorted and without repeats (:func:`utils.pruning.sweep.check_fractions`):
        {"fractions", "generation_fractions", "basis_fractions"}.
    """
    check_choice("fit_corpus", p["fit_corpus"], CORPORA)
    if not p["corpora"]:
        raise ValueError("corpora must name at least one corpus")
    for name in p["corpora"]:
        check_choice("corpora", name, CORPORA)
    for name in p["criteria"]:
        check_choice("criteria", name, CRITERIA)
    check_choice("criteria (must include the paper's)", "abs_A", p["criteria"])
    for name in POSITIVE_INTS:
        check_positive_int(name, p[name])
    for name in SEEDS:
        check_int(name, p[name], minimum=0)
    if p["generation_threads"] is not None:
        check_positive_int("generation_threads", p["generation_threads"])
    grids = {name: check_fractions(p[name]) for name in ("fractions", "generation_fractions", "basis_fractions")}
    if grids["basis_fractions"][0] == 0:
        raise ValueError(f"basis_fractions must be above 0 (each must delete a dimension); got "
                         f"{grids['basis_fractions']}")
    if not p["basis_random_seeds"]:
        raise ValueError("basis_random_seeds must hold at least one seed; got []")
    for value in p["basis_random_seeds"]:
        check_int("basis_random_seeds", value, minimum=0)
    check_float("basis_top1_margin", p["basis_top1_margin"], low=-1.0, high=1.0)
    check_float("basis_js_ratio", p["basis_js_ratio"], low=0.0, low_inclusive=False)
    for name in ("js_threshold", "perplexity_threshold"):
        check_float(name, p[name], low=0.0, low_inclusive=False)
    for name in ("top1_threshold", "mauve_saturation", "paper_fraction"):
        check_float(name, p[name], low=0.0, high=1.0)
    check_choice("mauve_pooling", p["mauve_pooling"], ("mean", "last"))
    check_int("n_examples", p["n_examples"], minimum=0, maximum=p["n_prompts"])
    if "random" in p["criteria"] and not p["random_seeds"]:
        raise ValueError("random_seeds must hold at least one seed when criteria include 'random'")
    return grids


def check_model_parameters(p: Mapping[str, Any], loaded) -> None:
    """Check the knobs of chapter 3 that depend on the loaded model (a :class:`utils.models.LoadedModel`): lengths
    against its context and the sample sizes against the windows of each corpus split."""
    window_length, n_tokens, n_tokens_test = p["window_length"], p["n_tokens"], p["n_tokens_test"]
    check_int("window_length", window_length, minimum=2, maximum=loaded.n_ctx)
    check_int("prompt_length", p["prompt_length"], maximum=window_length)
    check_int("short_max", p["short_max"], minimum=1, maximum=window_length - 1)
    check_int("long_min", p["long_min"], minimum=p["short_max"] + 1, maximum=window_length)
    check_int("saliency_positions", p["saliency_positions"], maximum=n_tokens // window_length * window_length)
    if p["n_positions"] is not None:  # the two-halves yardstick draws n_positions from each half of the test windows
        check_int("n_positions", p["n_positions"], minimum=1,
                  maximum=n_tokens_test // window_length // 2 * window_length)
    check_int("basis_positions", p["basis_positions"], maximum=n_tokens_test // window_length * window_length)
    check_int("n_prompts", p["n_prompts"], maximum=n_tokens_test // window_length)
    check_int("n_tokens_test", n_tokens_test, minimum=2 * window_length)  # two halves for the JS scale
    check_window_count(loaded.tokenizer, p["fit_corpus"], "train", window_length, n_tokens)
    for name in p["corpora"]:
        check_window_count(loaded.tokenizer, name, "test", window_length, n_tokens_test)
