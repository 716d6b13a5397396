"""The parameters of chapter 3 (deleting output-embedding dimensions), checked in one place before any work.

The chapter builds :class:`PruningParameters` from its ``globals()`` in one call (``from_namespace``), which checks
every knob that needs no model and gives the sorted grids of deletion fractions (:attr:`PruningParameters.grids`),
then checks the knobs that depend on the model (lengths against its context, enough windows in each corpus split)
with :meth:`PruningParameters.check_model` once it is loaded. Invalid values raise ``ValueError`` naming the
parameter, the value and what is allowed. ``model``, ``revision``, ``device`` and ``precision`` are checked by
:func:`utils.models.load_model`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..corpora import CORPORA, check_window_count
from ..parameters import PageParameters
from ..validation import check_choice, check_float, check_int, check_positive_int
from .criteria import CRITERIA
from .sweep import check_fractions

#: the chapter's knobs that must be positive integers
POSITIVE_INTS: tuple[str, ...] = ("n_tokens", "n_tokens_test", "batch_size", "saliency_positions", "chunk_size",
                                  "n_prompts", "prompt_length", "max_new_tokens", "generation_batch_size",
                                  "n_boot_texts", "basis_positions")
#: the chapter's seeds (non-negative integers)
SEEDS: tuple[str, ...] = ("sample_seed", "seed", "reference_seed", "generation_seed")
#: the chapter's grids of deletion fractions
GRIDS: tuple[str, ...] = ("fractions", "generation_fractions", "basis_fractions")


@dataclass(frozen=True)
class PruningParameters(PageParameters):
    """Chapter 3's knobs (see the chapter's parameters cell for what each one does), checked when built."""

    fit_corpus: str
    corpora: list[str]
    window_length: int
    n_tokens: int
    n_tokens_test: int
    sample_seed: int
    batch_size: int
    seed: int
    criteria: list[str]
    random_seeds: list[int]
    saliency_positions: int
    fractions: list[float]
    n_positions: int | None
    chunk_size: int
    short_max: int
    long_min: int
    js_threshold: float
    top1_threshold: float
    perplexity_threshold: float
    mauve_saturation: float
    paper_fraction: float
    basis_random_seeds: list[int]
    basis_positions: int
    basis_fractions: list[float]
    basis_top1_margin: float
    basis_js_ratio: float
    n_boot_texts: int
    n_prompts: int
    prompt_length: int
    max_new_tokens: int
    generation_fractions: list[float]
    reference_seed: int
    generation_seed: int
    mauve_pooling: str
    n_examples: int
    generation_batch_size: int
    generation_threads: int | None

    def __post_init__(self) -> None:
        check_choice("fit_corpus", self.fit_corpus, CORPORA)
        if not self.corpora:
            raise ValueError("corpora must name at least one corpus")
        for name in self.corpora:
            check_choice("corpora", name, CORPORA)
        for name in self.criteria:
            check_choice("criteria", name, CRITERIA)
        check_choice("criteria (must include the paper's)", "abs_A", self.criteria)
        for name in POSITIVE_INTS:
            check_positive_int(name, getattr(self, name))
        for name in SEEDS:
            check_int(name, getattr(self, name), minimum=0)
        if self.generation_threads is not None:
            check_positive_int("generation_threads", self.generation_threads)
        grids = self.grids
        if grids["basis_fractions"][0] == 0:
            raise ValueError(f"basis_fractions must be above 0 (each must delete a dimension); got "
                             f"{grids['basis_fractions']}")
        if not self.basis_random_seeds:
            raise ValueError("basis_random_seeds must hold at least one seed; got []")
        for value in self.basis_random_seeds:
            check_int("basis_random_seeds", value, minimum=0)
        check_float("basis_top1_margin", self.basis_top1_margin, low=-1.0, high=1.0)
        check_float("basis_js_ratio", self.basis_js_ratio, low=0.0, low_inclusive=False)
        for name in ("js_threshold", "perplexity_threshold"):
            check_float(name, getattr(self, name), low=0.0, low_inclusive=False)
        for name in ("top1_threshold", "mauve_saturation", "paper_fraction"):
            check_float(name, getattr(self, name), low=0.0, high=1.0)
        check_choice("mauve_pooling", self.mauve_pooling, ("mean", "last"))
        check_int("n_examples", self.n_examples, minimum=0, maximum=self.n_prompts)
        if "random" in self.criteria and not self.random_seeds:
            raise ValueError("random_seeds must hold at least one seed when criteria include 'random'")

    @property
    def grids(self) -> dict[str, list[float]]:
        """The three grids of deletion fractions, sorted and without repeats
        (:func:`utils.pruning.sweep.check_fractions`): {"fractions", "generation_fractions", "basis_fractions"}."""
        return {name: check_fractions(getattr(self, name)) for name in GRIDS}

    def check_model(self, loaded: Any) -> None:
        """Checks against the loaded model (a :class:`utils.models.LoadedModel`): lengths against its context and
        the sample sizes against the windows of each corpus split."""
        window_length, n_tokens, n_tokens_test = self.window_length, self.n_tokens, self.n_tokens_test
        check_int("window_length", window_length, minimum=2, maximum=loaded.n_ctx)
        check_int("prompt_length", self.prompt_length, maximum=window_length)
        check_int("short_max", self.short_max, minimum=1, maximum=window_length - 1)
        check_int("long_min", self.long_min, minimum=self.short_max + 1, maximum=window_length)
        check_int("saliency_positions", self.saliency_positions, maximum=n_tokens // window_length * window_length)
        if self.n_positions is not None:  # the two-halves yardstick draws n_positions from each half of the test text
            check_int("n_positions", self.n_positions, minimum=1,
                      maximum=n_tokens_test // window_length // 2 * window_length)
        check_int("basis_positions", self.basis_positions, maximum=n_tokens_test // window_length * window_length)
        check_int("n_prompts", self.n_prompts, maximum=n_tokens_test // window_length)
        check_int("n_tokens_test", n_tokens_test, minimum=2 * window_length)  # two halves for the JS scale
        check_window_count(loaded.tokenizer, self.fit_corpus, "train", window_length, n_tokens)
        for name in self.corpora:
            check_window_count(loaded.tokenizer, name, "test", window_length, n_tokens_test)
