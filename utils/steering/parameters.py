"""The parameters of chapter 2 (steering by editing the output embedding), checked in one place before any work.

The chapter builds :class:`SteeringParameters` from its ``globals()`` in one call (``from_namespace``), which checks
every knob that needs no model and gives the sorted ratio grids (:attr:`~SteeringParameters.r_grid`,
:attr:`~SteeringParameters.side_r_grid`), then checks the knobs that depend on the model (context, corpus sizes, the
steered word) with :meth:`SteeringParameters.check_model` once it is loaded; :meth:`SteeringParameters.steer_token`
gives the steered word's token id. Invalid values raise ``ValueError`` or ``TypeError`` naming the parameter, the
value and what is allowed. ``model``, ``revision``, ``device`` and ``precision`` are checked by
:func:`utils.models.load_model`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..corpora import CORPORA, check_window_count
from ..parameters import PageParameters
from ..validation import check_choice, check_float, check_int, check_positive_int
from .edits import check_ratio

#: the chapter's knobs that must be positive integers
POSITIVE_INTS = ("n_tokens", "n_tokens_test", "batch_size", "n_buckets", "tokens_per_bucket", "few_shot_repeats",
                 "side_tokens_per_bucket", "check_windows", "max_new_tokens", "n_boot_texts", "null_seeds")


@dataclass(frozen=True)
class SteeringParameters(PageParameters):
    """Chapter 2's knobs (see the chapter's parameters cell for what each one does), checked when built."""

    corpus: str
    ood_corpora: list[str]
    window_length: int
    n_tokens: int
    n_tokens_test: int
    sample_seed: int
    batch_size: int
    test_fraction: float
    r_values: list[float]
    r_headline: float
    n_buckets: int
    tokens_per_bucket: int
    selection_windows: int
    band: float
    n_boot_texts: int
    null_seeds: int
    few_shot_windows: list[int]
    few_shot_repeats: int
    few_shot_tolerance: float
    side_tokens_per_bucket: int
    side_r_values: list[float]
    check_windows: int
    steer_word: str
    max_new_tokens: int

    def __post_init__(self) -> None:
        check_choice("corpus", self.corpus, CORPORA)
        for name in self.ood_corpora:
            check_choice("ood_corpora", name, CORPORA)
        for name in POSITIVE_INTS:
            check_positive_int(name, getattr(self, name))
        check_int("sample_seed", self.sample_seed, minimum=0)
        check_float("test_fraction", self.test_fraction, low=0, high=1, low_inclusive=False, high_inclusive=False)
        check_float("band", self.band, low=1, low_inclusive=False)
        check_float("few_shot_tolerance", self.few_shot_tolerance, low=0)
        r_grid, _ = self.r_grid, self.side_r_grid  # each ratio checked
        r_headline = check_float("r_headline", self.r_headline, low=1, low_inclusive=False)
        if not (np.isclose(r_grid, r_headline).any() and np.isclose(r_grid, 1 / r_headline).any()):
            raise ValueError(f"r_headline={self.r_headline}: both it and 1/r_headline must be in "
                             f"r_values={self.r_values}")

    @property
    def r_grid(self) -> np.ndarray:
        """The sorted distinct ratios of ``r_values`` (float64)."""
        return np.unique([check_ratio("r_values", r) for r in self.r_values])

    @property
    def side_r_grid(self) -> np.ndarray:
        """The sorted distinct ratios of ``side_r_values`` (float64)."""
        return np.unique([check_ratio("side_r_values", r) for r in self.side_r_values])

    def check_model(self, loaded: Any) -> None:
        """Checks against the loaded model (a :class:`utils.models.LoadedModel`): the window fits its context, each
        corpus split holds enough windows, the window counts fit the passes, and ``steer_word`` is one token."""
        window_length, n_tokens, n_tokens_test = self.window_length, self.n_tokens, self.n_tokens_test
        check_int("window_length", window_length, minimum=2, maximum=loaded.n_ctx)
        check_window_count(loaded.tokenizer, self.corpus, "train", window_length, n_tokens)
        for name in [self.corpus, *self.ood_corpora]:
            check_window_count(loaded.tokenizer, name, "test", window_length, n_tokens_test)
        check_int("selection_windows", self.selection_windows, minimum=1, maximum=n_tokens // window_length)
        for n in self.few_shot_windows:
            check_int("few_shot_windows", n, minimum=1, maximum=n_tokens // window_length)
        check_int("check_windows", self.check_windows, maximum=n_tokens_test // window_length)
        self.steer_token(loaded)

    def steer_token(self, loaded: Any) -> int:
        """The token id of ``steer_word`` in the loaded model's tokenizer; raises ``ValueError`` when it is not one
        token."""
        steer_ids = loaded.tokenizer(self.steer_word, add_special_tokens=False)["input_ids"]
        if len(steer_ids) != 1:
            raise ValueError(f"steer_word={self.steer_word!r} is {len(steer_ids)} tokens for this tokenizer; "
                             "give one token")
        return int(steer_ids[0])
