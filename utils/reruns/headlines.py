"""What the rerun template (``book/headlines.py``) computes in one run: the two passes of the headline checks, the
argmax counts of the head, and the rows of its checks and choices in its results file.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..activations import compute_activations
from ..argmax.verdicts import find_unargmaxable
from ..undertrained.indicators import sample_tokens
from ..validation import check_int, check_positive_int


def headline_passes(loaded: Any, corpus: str, *, window_length: int, sample_seed: int, n_tokens: int,
                    n_tokens_test: int, batch_size: int, store: bool = True) -> dict[str, Any]:
    """The training and held-out passes of the headlines template (:func:`utils.activations.compute_activations`):
    ``{"train": Activations, "test": Activations}``. ``window_length`` must fit the model's context. A pass already
    in the cache (the chapters' own, at their seed and window) is read from it; a new one is written to it only with
    ``store`` (the rerun pages keep each run's numbers in its results file, not its passes)."""

    check_int("window_length", window_length, minimum=2, maximum=loaded.n_ctx)
    return {split: compute_activations(loaded, corpus, split, window_length=window_length, sample_seed=sample_seed,
                                       n_tokens=n_tokens if split == "train" else n_tokens_test,
                                       batch_size=batch_size, store=store)
            for split in ("train", "test")}


def check_rows(checks: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """One JSON-able row per :class:`utils.uncertainty.Check` of each chapter (``{chapter: [Check, ...]}``), in order:
    chapter, check, value, low, high, threshold, direction, verdict."""
    return [{"chapter": chapter, "check": c.name, "value": c.value, "low": c.interval.low, "high": c.interval.high,
             "threshold": c.threshold, "direction": c.direction, "verdict": c.verdict}
            for chapter, chapter_checks in checks.items() for c in chapter_checks]


def choice_rows(choices: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One JSON-able row per choice a chapter's checks rest on (``{chapter: {choice: value}}``, e.g. chapter 2's k
    chosen on training windows), in order: chapter, choice, value. A choice is kept out of the checks' names, so that
    runs that choose differently still share their checks; the rerun pages show it as a row of its own."""
    return [{"chapter": chapter, "choice": name, "value": value}
            for chapter, chapter_choices in choices.items() for name, value in chapter_choices.items()]


def argmax_counts(E: np.ndarray, b: np.ndarray | None, *, max_tokens: int | None, seed: int,
                  **settings: Any) -> dict[str, Any]:
    """How many tokens of the head ``E`` (V, d), ``b`` (V,) or None can never be the strict argmax, by
    :func:`utils.argmax.verdicts.find_unargmaxable` (cached by the head's fingerprint and ``settings``: box,
    patience, start; at chapter 5's settings and token sample its verdicts are reused).

    Args:
        max_tokens: None tests the whole vocabulary (as chapter 5 at its defaults); else a sample of that many tokens
            drawn with ``seed`` (chapter 5's draw, :func:`utils.undertrained.indicators.sample_tokens`).
    Returns:
        tested, unargmaxable, duplicate (tokens whose row has an identical twin), whole_vocabulary (bool) and the
        seconds the verdicts took when computed (the cached value otherwise).
    """

    if max_tokens is not None:
        check_positive_int("argmax_max_tokens", max_tokens)
    tokens = sample_tokens(E.shape[0], max_tokens, seed)
    verdicts = find_unargmaxable(E, b, tokens=tokens, progress=False, **settings)
    counts = verdicts.counts()
    return {"tested": counts["tested"], "unargmaxable": counts["unargmaxable"], "duplicate": counts["duplicate"],
            "whole_vocabulary": tokens is None, "seconds": float(verdicts.meta.get("seconds", float("nan")))}
