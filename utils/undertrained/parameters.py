"""The parameters of chapter 6 (under-trained tokens), checked in one place before any work.

The chapter checks every knob that needs no model with :func:`check_parameters` (from its ``globals()``), then the
knobs that depend on the model (the window against its context, token counts against its vocabulary less the unused
reference set) with :func:`check_model_parameters` once it is loaded. Invalid values raise ``ValueError``
(``TypeError`` for a non-integer where an integer is needed) naming the parameter, the value and what is allowed.

``model`` and ``revision`` are checked by :func:`utils.models.load_model`. Whether the corpus split holds
``n_tokens // window_length`` windows is checked by :func:`utils.corpora.sample_windows` inside
:func:`utils.activations.compute_activations`, before any model pass and with the same message as
:func:`utils.corpora.check_window_count`; checking it here as well would tokenize the whole split once more (about
3 s at the defaults).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..argmax.prepared import STARTS, check_box
from ..compute import DEVICES, PRECISIONS
from ..corpora import CORPORA
from ..head import output_head
from ..validation import check_choice, check_float, check_int, check_positive_int
from .indicators import unused_reference

#: the chapter's knobs that must be positive integers
POSITIVE_INTS: tuple[str, ...] = ("n_candidates", "n_control", "n_tokens", "batch_size", "prompt_batch_size",
                                  "dynamics_max_tokens", "n_table")
#: the chapter's seeds (non-negative integers)
SEEDS: tuple[str, ...] = ("seed", "sample_seed")


def check_parameters(p: Mapping[str, Any]) -> None:
    """Check every knob of chapter 6 that needs no model; ``p`` is the chapter's namespace (its ``globals()``)."""

    check_choice("device", p["device"], DEVICES)
    check_choice("precision", p["precision"], PRECISIONS)
    check_choice("corpus", p["corpus"], CORPORA)
    for name in POSITIVE_INTS:
        check_positive_int(name, p[name])
    for name in SEEDS:
        check_int(name, p[name], minimum=0)
    check_float("threshold", p["threshold"], low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    window_length = check_int("window_length", p["window_length"], minimum=2)
    check_int("n_tokens", p["n_tokens"], minimum=window_length)  # at least one window
    if p["max_tokens"] is not None:
        check_positive_int("max_tokens", p["max_tokens"])
    check_box(p["box"])
    check_int("patience", p["patience"], minimum=0)
    check_choice("start", p["start"], STARTS)
    check_int("early_step", p["early_step"], minimum=1)


def check_model_parameters(p: Mapping[str, Any], loaded: Any) -> None:
    """Check the knobs of chapter 6 that depend on the loaded model (a :class:`utils.models.LoadedModel`):
    ``window_length`` fits its context, and ``n_candidates`` and ``n_control`` are at most the tokens left once the
    unused reference set (:func:`utils.undertrained.indicators.unused_reference`, left out of every top list and of
    the control draw) is taken from the vocabulary."""

    check_int("window_length", p["window_length"], minimum=2, maximum=loaded.n_ctx)
    reference, _ = unused_reference(loaded.tokenizer)
    pool = output_head(loaded.model).V - len(reference)
    for name in ("n_candidates", "n_control"):
        value = check_positive_int(name, p[name])
        if value > pool:
            raise ValueError(f"{name}={value} must be <= {pool}, the vocabulary's tokens outside the unused "
                             f"reference set ({len(reference)} tokens)")
