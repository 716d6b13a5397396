"""The parameters of the rerun pages, each checked into one typed object before any work: :class:`ModelsParameters`
(``book/98_models.py``), :class:`RobustnessParameters` (``book/99_robustness.py``) and :class:`HeadlineParameters`
(the template they rerun, ``book/headlines.py``).

Each page builds its object from its ``globals()`` in one call (``from_namespace``); invalid values raise
``ValueError`` or ``TypeError`` naming the parameter, the value and what is allowed. ``model``, ``revision``,
``device`` and ``precision`` are checked by :func:`utils.models.load_model`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..compute import PRECISIONS
from ..parameters import PageParameters
from ..validation import check_choice, check_int, check_positive_int

#: the run sizes every rerun page and the headlines template check alike (each a positive integer)
RUN_SIZES = ("n_tokens", "n_tokens_test", "batch_size", "n_boot_texts")


def _check_run_sizes(namespace: Mapping[str, Any]) -> None:
    """Each of :data:`RUN_SIZES` in ``namespace`` is a positive integer, and ``sample_seed`` (where present) a
    non-negative one."""
    for name in RUN_SIZES:
        check_positive_int(name, namespace[name])
    if "sample_seed" in namespace:
        check_int("sample_seed", namespace["sample_seed"], minimum=0)


def _check_robustness_grid(sample_seeds: Any, window_lengths: Any, precisions: Any, allowed_precisions: Any) -> None:
    """The robustness page's grid: at least one seed and window length, each a non-negative seed and a window of at
    least 2 tokens; ``precisions`` drawn from ``allowed_precisions`` and including float32 (the reference)."""
    if not sample_seeds or not window_lengths:
        raise ValueError(f"sample_seeds={sample_seeds} and window_lengths={window_lengths} must each name at least one")
    for value in sample_seeds:
        check_int("sample_seeds", value, minimum=0)
    for value in window_lengths:
        check_int("window_lengths", value, minimum=2)
    if "float32" not in precisions:
        raise ValueError(f"precisions={precisions} must include 'float32', the precision the others are compared with")
    for value in precisions:
        check_choice("precisions", value, allowed_precisions)


def _check_model_list(models: Any) -> list[str]:
    """The models page's ``models``: a list of non-empty strings (names, hub ids or folders)."""
    if not isinstance(models, list) or not all(isinstance(name, str) and name for name in models):
        raise ValueError(f"models={models!r} must be a list of model names, hub ids or folders")
    return models


def _check_sample_size(name: str, value: Any) -> None:
    """A token sample of the argmax test: None (the whole vocabulary) or a positive integer."""
    if value is not None:
        check_positive_int(name, value)


@dataclass(frozen=True)
class ModelsParameters(PageParameters):
    """The models page's knobs (see its parameters cell), checked when built."""

    models: list[str]
    sample_seed: int
    window_length: int
    n_tokens: int
    n_tokens_test: int
    batch_size: int
    n_boot_texts: int
    argmax_max_tokens: int | None
    trained_argmax_max_tokens: int | None

    def __post_init__(self) -> None:
        _check_model_list(self.models)
        _check_run_sizes(vars(self))
        check_int("window_length", self.window_length, minimum=2)
        _check_sample_size("argmax_max_tokens", self.argmax_max_tokens)
        _check_sample_size("trained_argmax_max_tokens", self.trained_argmax_max_tokens)


@dataclass(frozen=True)
class RobustnessParameters(PageParameters):
    """The robustness page's knobs (see its parameters cell), checked when built; its precisions are drawn from
    :data:`utils.compute.PRECISIONS`."""

    sample_seeds: list[int]
    window_lengths: list[int]
    precisions: list[str]
    n_tokens: int
    n_tokens_test: int
    batch_size: int
    n_boot_texts: int

    def __post_init__(self) -> None:
        _check_robustness_grid(self.sample_seeds, self.window_lengths, self.precisions, PRECISIONS)
        _check_run_sizes(vars(self))


@dataclass(frozen=True)
class HeadlineParameters(PageParameters):
    """The headlines template's run sizes and sample seed (see its parameters cell), checked when built; its window
    is checked against the model by :func:`utils.reruns.headlines.headline_passes`."""

    n_tokens: int
    n_tokens_test: int
    batch_size: int
    n_boot_texts: int
    sample_seed: int
    argmax_max_tokens: int | None

    def __post_init__(self) -> None:
        _check_run_sizes(vars(self))
        _check_sample_size("argmax_max_tokens", self.argmax_max_tokens)
