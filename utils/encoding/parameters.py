"""The parameters of chapter 1 (the log-linear encoding), checked in one place before any work.

The chapter builds :class:`EncodingParameters` from its ``globals()`` in one call (``from_namespace``), which
checks every knob that needs no model, then checks the knobs that depend on the model or the corpora (the window
against the model's context, sizes against its vocabulary and hidden size, enough windows in each corpus split) with
:meth:`EncodingParameters.check_model` once it is loaded. Invalid values raise ``ValueError`` (``TypeError`` for a
non-integer where an integer is needed) naming the parameter, the value and what is allowed. ``model``,
``revision``, ``device`` and ``precision`` are checked by :func:`utils.models.load_model`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..corpora import CORPORA, check_window_count
from ..parameters import PageParameters
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


@dataclass(frozen=True)
class EncodingParameters(PageParameters):
    """Chapter 1's knobs (see the chapter's parameters cell for what each one does), checked when built."""

    corpus: str
    ood_corpora: list[str]
    window_length: int
    n_tokens: int
    n_tokens_ood: int
    sample_seed: int
    batch_size: int
    test_fraction: float
    seed: int
    n_boot: int
    n_boot_texts: int
    r2_threshold: float
    sparse_share: float
    kept_share: float
    top_k: list[int]
    lasso_fractions: list[float]
    n_random_bases: int
    window_counts: list[int]
    n_probe_ood: int
    n_transfer_subsets: int
    vocab_sizes: list[int]
    n_vocab_subsets: int
    n_vocab_positions: int
    n_entropy_bins: int
    n_entropy_positions: int
    n_error_tokens: int
    second_model: str | None
    second_model_tokens: int

    def __post_init__(self) -> None:
        check_choice("corpus", self.corpus, CORPORA)
        for name in _non_empty("ood_corpora", self.ood_corpora):
            check_choice("ood_corpora", name, CORPORA)
        for name in POSITIVE_INTS:
            check_positive_int(name, getattr(self, name))
        for name in SEEDS:
            check_int(name, getattr(self, name), minimum=0)
        check_int("window_length", self.window_length, minimum=2)
        check_int("n_tokens_ood", self.n_tokens_ood, maximum=self.n_tokens)
        check_int("n_random_bases", self.n_random_bases, minimum=2)
        for value in _non_empty("window_counts", self.window_counts):
            check_int("window_counts", value, minimum=1, maximum=self.n_tokens // self.window_length - 1)
        for value in _non_empty("top_k", self.top_k):
            check_positive_int("top_k", value)
        for value in _non_empty("vocab_sizes", self.vocab_sizes):
            check_int("vocab_sizes", value, minimum=8)
        for value in _non_empty("lasso_fractions", self.lasso_fractions):
            check_float("lasso_fractions", value, low=0.0, high=1.0, low_inclusive=False)
        for name in SHARES:
            check_float(name, getattr(self, name), low=0, high=1, low_inclusive=False, high_inclusive=False)
        check_float("r2_threshold", self.r2_threshold, high=1)
        if self.second_model is not None and not isinstance(self.second_model, str):
            raise TypeError(f"second_model={self.second_model!r} must be a model name or None")

    def check_model(self, loaded: Any) -> None:
        """Checks against the loaded model (a :class:`utils.models.LoadedModel`): the window against its context,
        the vocabulary subsets against its vocabulary, the top-k grid against its hidden size, and the sample sizes
        against the windows of each corpus split."""
        V, d = loaded.model.get_output_embeddings().weight.shape
        check_int("window_length", self.window_length, minimum=2, maximum=loaded.n_ctx)
        for value in self.vocab_sizes:
            check_int("vocab_sizes", value, minimum=8, maximum=V - 1)
        check_window_count(loaded.tokenizer, self.corpus, "train", self.window_length, self.n_tokens)
        for name in self.ood_corpora:
            check_window_count(loaded.tokenizer, name, "test", self.window_length, self.n_tokens_ood)
        for value in self.top_k:
            check_int("top_k", value, minimum=1, maximum=d)
