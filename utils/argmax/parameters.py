"""The parameters of chapter 5 (argmaxability), checked in one place before any work.

The chapter's first cells validate every knob through :meth:`ArgmaxParameters.from_namespace`, then the knobs that
depend on the model (``window_length`` against its context, enough windows in the corpus split) through
:meth:`ArgmaxParameters.check_model` once it is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..corpora import CORPORA, check_window_count
from ..parameters import PageParameters
from ..validation import check_choice, check_float, check_int, check_positive_int
from .prepared import STARTS, check_box


@dataclass(frozen=True)
class ArgmaxParameters(PageParameters):
    """Chapter 5's knobs (see the chapter's parameters cell for what each one does); invalid values raise
    ``ValueError`` or ``TypeError`` naming the parameter, the value and what is allowed."""

    seed: int
    box: float
    patience: int
    start: str
    n_closest: int
    n_hull_instances: int
    random_dims: list[int]
    random_classes: int
    corpus: str
    window_length: int
    n_tokens: int
    sample_seed: int
    batch_size: int
    prune_fractions: list[float]
    prevention_dim: int
    second_model_max_tokens: int
    n_table: int
    theory_share: float
    max_tokens: int | None = None
    prune_max_tokens: int | None = None

    def __post_init__(self) -> None:
        check_int("seed", self.seed, minimum=0)
        check_box(self.box)
        check_int("patience", self.patience, minimum=0)
        check_choice("start", self.start, STARTS)
        check_choice("corpus", self.corpus, CORPORA)
        for name in ("n_closest", "n_hull_instances", "random_classes", "prevention_dim", "n_table",
                     "second_model_max_tokens", "n_tokens", "batch_size"):
            check_positive_int(name, getattr(self, name))
        for name in ("max_tokens", "prune_max_tokens"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        if len(self.random_dims) == 0:
            raise ValueError("random_dims must list at least one dimension")
        for value in self.random_dims:
            check_positive_int("random_dims", value)
        check_int("window_length", self.window_length, minimum=2)
        check_int("sample_seed", self.sample_seed, minimum=0)
        check_float("theory_share", self.theory_share, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        for value in self.prune_fractions:
            check_float("prune_fractions", value, low=0.0, high=1.0, high_inclusive=False)

    def check_model(self, loaded: Any) -> None:
        """Checks against the loaded model (:class:`utils.models.LoadedModel`): ``window_length`` fits its context
        and the corpus's training split holds enough windows of its tokens for ``n_tokens``."""
        check_int("window_length", self.window_length, minimum=2, maximum=loaded.n_ctx)
        check_window_count(loaded.tokenizer, self.corpus, "train", self.window_length, self.n_tokens)
