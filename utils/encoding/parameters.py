"""The parameters of chapter 1 (the log-linear encoding), checked in one place before any work.

The chapter checks every knob that needs no model with :func:`check_parameters` (from its ``globals()``), then the
knobs that depend on the model or the corpora (the window against the model's context, sizes against its
vocabulary and hidden size, enough windows in each corpus split) with :func:`check_model_parameters` once it is
loaded. Invalid values raise ``ValueError`` (``TypeError`` for a non-integer where an integer is needed) naming the
parameter, the value and what is allowed. ``model``, ``revision``, ``device`` and ``precision`` are checked by
:func:`utils.models.load_model`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..corpora import CORPORA, check_window_count
from ..validation import check_choice, check_float, check_int, check_positive_int

#: the chapter's knobs that must be positive integers
POSITIVE_INTS: tuple[str, ...] = ("n_tokens", "n_tokens_ood", "batch_size", "n_boot", "n_boot_texts",
                                  "n_probe_ood", "n_transfer_subsets", "n_vocab_subsets", "n_vocab_positions",
                                  "n_entropy_bins", "n_entropy_positions", "n_error_tokens", "second_model_tokens")
#: the chapter's seeds (non-negative integers)
SEEDS: tuple[str, ...] = ("sample_seed", "seed")
#: the chapter's shares, each strictly between 0 and 1
SHARES: tuple[str, ...] = ("test_fraction", "sparse_share", "kept_share")


def _non_empty(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name}={values!r} must be a list")
    values = list(values)
    if not values:
        raise ValueError(f"{name}=[] must hold at least one value")
    return values


def check_parameters(p: Mapping[str, Any]) -> None:
    """Check every knob of chapter 1 that needs no model; ``p`` is the chapter's namespace (its ``globals()``)."""
    check_choice("corpus", p["corpus"], CORPORA)
    for name in _non_empty("ood_corpora", p["ood_corpora"]):
        check_choice("ood_corpora", name, CORPORA)
    for name in POSITIVE_INTS:
        check_positive_int(name, p[name])
    for name in SEEDS:
        check_int(name, p[name], minimum=0)
    check_int("window_length", p["window_length"], minimum=2)
    check_int("n_tokens_ood", p["n_tokens_ood"], maximum=p["n_tokens"])
    check_int("n_random_bases", p["n_random_bases"], minimum=2)
    for value in _non_empty("window_counts", p["window_counts"]):
        check_int("window_counts", value, minimum=1, maximum=p["n_tokens"] // p["window_length"] - 1)
    for value in _non_empty("top_k", p["top_k"]):
        check_positive_int("top_k", value)
    for value in _non_empty("vocab_sizes", p["vocab_sizes"]):
        check_int("vocab_sizes", value, minimum=8)
    for value in _non_empty("lasso_fractions", p["lasso_fractions"]):
        check_float("lasso_fractions", value, low=0.0, high=1.0, low_inclusive=False)
    for name in SHARES:
        check_float(name, p[name], low=0, high=1, low_inclusive=False, high_inclusive=False)
    check_float("r2_threshold", p["r2_threshold"], high=1)
    if p["second_model"] is not None and not isinstance(p["second_model"], str):
        raise TypeError(f"second_model={p['second_model']!r} must be a model name or None")


def check_model_parameters(p: Mapping[str, Any], loaded) -> None:
    """Check the knobs of chapter 1 that depend on the loaded model (a :class:`utils.models.LoadedModel`): the
    window against its context, the vocabulary subsets against its vocabulary, the top-k grid against its hidden
    size, and the sample sizes against the windows of each corpus split."""
    V, d = loaded.model.get_output_embeddings().weight.shape
    check_int("window_length", p["window_length"], minimum=2, maximum=loaded.n_ctx)
    for value in p["vocab_sizes"]:
        check_int("vocab_sizes", value, minimum=8, maximum=V - 1)
    check_window_count(loaded.tokenizer, p["corpus"], "train", p["window_length"], p["n_tokens"])
    for name in p["ood_corpora"]:
        check_window_count(loaded.tokenizer, name, "test", p["window_length"], p["n_tokens_ood"])
    for value in p["top_k"]:
        check_int("top_k", value, minimum=1, maximum=d)
