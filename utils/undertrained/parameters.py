"""The parameters of chapter 6 (under-trained tokens), checked in one place before any work.

The chapter builds :class:`UndertrainedParameters` from its ``globals()`` in one call (``from_namespace``), which
checks every knob that needs no model, then checks the knobs that depend on the model (the window against its context,
token counts against its vocabulary less the unused reference set) with :meth:`UndertrainedParameters.check_model`
once it is loaded. Invalid values raise ``ValueError`` (``TypeError`` for a non-integer where an integer is needed)
naming the parameter, the value and what is allowed.

``model`` and ``revision`` are checked by :func:`utils.models.load_model`. Whether the corpus split holds
``n_tokens // window_length`` windows is checked by :func:`utils.corpora.sample_windows` inside
:func:`utils.activations.compute_activations`, before any model pass and with the same message as
:func:`utils.corpora.check_window_count`; checking it here as well would tokenize the whole split once more (about
3 s at the defaults).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..argmax.prepared import STARTS, check_box
from ..compute import DEVICES, PRECISIONS
from ..corpora import CORPORA
from ..head import output_head
from ..parameters import PageParameters
from ..validation import check_choice, check_float, check_int, check_positive_int
from .indicators import unused_reference

#: the chapter's knobs that must be positive integers
POSITIVE_INTS: tuple[str, ...] = ("n_candidates", "n_control", "n_tokens", "batch_size", "prompt_batch_size",
                                  "dynamics_max_tokens", "n_table")
#: the chapter's seeds (non-negative integers)
SEEDS: tuple[str, ...] = ("seed", "sample_seed")


@dataclass(frozen=True)
class UndertrainedParameters(PageParameters):
    """Chapter 6's knobs (see the chapter's parameters cell for what each one does), checked when built."""

    device: str
    precision: str
    n_candidates: int
    n_control: int
    threshold: float
    seed: int
    corpus: str
    window_length: int
    n_tokens: int
    sample_seed: int
    batch_size: int
    prompt_batch_size: int
    max_tokens: int | None
    box: float
    patience: int
    start: str
    dynamics_max_tokens: int
    early_step: int
    n_table: int

    def __post_init__(self) -> None:
        check_choice("device", self.device, DEVICES)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("corpus", self.corpus, CORPORA)
        for name in POSITIVE_INTS:
            check_positive_int(name, getattr(self, name))
        for name in SEEDS:
            check_int(name, getattr(self, name), minimum=0)
        check_float("threshold", self.threshold, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        window_length = check_int("window_length", self.window_length, minimum=2)
        check_int("n_tokens", self.n_tokens, minimum=window_length)  # at least one window
        if self.max_tokens is not None:
            check_positive_int("max_tokens", self.max_tokens)
        check_box(self.box)
        check_int("patience", self.patience, minimum=0)
        check_choice("start", self.start, STARTS)
        check_int("early_step", self.early_step, minimum=1)

    def check_model(self, loaded: Any) -> None:
        """Checks against the loaded model (a :class:`utils.models.LoadedModel`): ``window_length`` fits its context,
        and ``n_candidates`` and ``n_control`` are at most the tokens left once the unused reference set
        (:func:`utils.undertrained.indicators.unused_reference`, left out of every top list and of the control draw)
        is taken from the vocabulary."""
        check_int("window_length", self.window_length, minimum=2, maximum=loaded.n_ctx)
        reference, _ = unused_reference(loaded.tokenizer)
        pool = output_head(loaded.model).V - len(reference)
        for name in ("n_candidates", "n_control"):
            value = check_positive_int(name, getattr(self, name))
            if value > pool:
                raise ValueError(f"{name}={value} must be <= {pool}, the vocabulary's tokens outside the unused "
                                 f"reference set ({len(reference)} tokens)")
