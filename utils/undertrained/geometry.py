"""The head's geometry behind tokens that can hardly or never win (chapter 6): strict wins, duplicated rows, and
whether a head is stored on a GGUF Q8_0 grid (:func:`quantisation_grid`, :func:`nearest_distinct_steps`: how far
a duplicated row is from the nearest row stored differently).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..argmax.verdicts import find_unargmaxable
from ..validation import check_positive_int


def relative_margin(verdicts: Any, V: int) -> np.ndarray:
    """Each tested token's margin at its witness over the witness's length, NaN for untested tokens: -> (V,)
    float64 (small: a thin argmax region). ``verdicts``: :class:`utils.argmax.verdicts.Verdicts` of one head."""
    margin = np.full(check_positive_int("V", V), np.nan)
    margin[verdicts.tokens] = verdicts.margin / np.maximum(np.linalg.norm(verdicts.witness, axis=1), 1e-300)
    return margin


def strict_win_losses(tokens: np.ndarray, verdicts: Any, E: np.ndarray, b: np.ndarray | None = None, *,
                      box: float, patience: int, start: str) -> tuple[int, int]:
    """How many of ``tokens`` cannot win the argmax strictly: -> (unargmaxable, duplicate rows).

    Verdicts come from ``verdicts`` (a :class:`utils.argmax.verdicts.Verdicts` of the head ``E`` (V, d), ``b``)
    where it tested the token, and from :func:`utils.argmax.verdicts.find_unargmaxable` with the same settings for
    the others."""

    tokens = np.asarray(tokens, dtype=np.int64)
    status = dict(zip(verdicts.tokens.tolist(), verdicts.status.tolist()))
    missing = np.array([t for t in tokens if int(t) not in status], dtype=np.int64)  # outside the verdicts' sample
    if len(missing):
        status.update(zip(missing.tolist(), find_unargmaxable(E, b, tokens=missing, box=box, patience=patience,
                                                              start=start, progress=False).status.tolist()))
    token_status = np.array([status[int(t)] for t in tokens], dtype=str)
    return int((token_status == "unargmaxable").sum()), int((token_status == "duplicate").sum())


#: GGUF Q8_0: each block of 32 consecutive values of a row is stored as a step (the block's largest |value| / 127)
#: times integers in [-127, 127]
Q8_0_BLOCK, Q8_0_LEVELS = 32, 127


def quantisation_steps(E: np.ndarray, block: int = Q8_0_BLOCK, levels: int = Q8_0_LEVELS) -> np.ndarray:
    """The step of every block of every row, read as Q8_0 stores it (largest |value| of the block / ``levels``):
    -> (V, d // block) float64. Raises ``ValueError`` when ``d`` is not a multiple of ``block``."""
    E = np.asarray(E, dtype=np.float64)
    V, d = E.shape
    if d % check_positive_int("block", block):
        raise ValueError(f"block={block} must divide the head's dimension d={d}")
    return np.abs(E.reshape(V, d // block, block)).max(axis=2) / check_positive_int("levels", levels)


def quantisation_grid(E: np.ndarray, block: int = Q8_0_BLOCK, levels: int = Q8_0_LEVELS) -> dict[str, float]:
    """Whether the head ``E`` (V, d) lies on a Q8_0 grid: the share of blocks whose every value is an integer
    multiple of the block's step (to 1e-3 of a step), the median step over those blocks (NaN when none is), and d.
    A head stored in Q8_0 and de-quantised has every block on the grid; a float head has almost none."""
    E = np.asarray(E, dtype=np.float64)
    if E.shape[1] % block:
        return {"on_grid": 0.0, "median_step": float("nan"), "d": E.shape[1]}
    steps = quantisation_steps(E, block, levels)
    blocks = E.reshape(E.shape[0], -1, block) / np.where(steps > 0, steps, 1.0)[..., None]
    on = (np.abs(blocks - np.round(blocks)).max(axis=2) < 1e-3) & (steps > 0)
    return {"on_grid": float(on.mean()), "median_step": float(np.median(steps[on])) if on.any() else float("nan"),
            "d": E.shape[1]}


def nearest_distinct_steps(E: np.ndarray, tokens: Any, block: int = Q8_0_BLOCK,
                           levels: int = Q8_0_LEVELS) -> pd.DataFrame:
    """For each of ``tokens``, the nearest row of ``E`` (V, d) stored differently (not an exact twin), measured in
    the token's own Q8_0 steps: a DataFrame with token, twins (other rows identical to it), nearest (that row),
    max_steps (the largest difference over the values, in steps) and n_differ (values that differ). A duplicate
    whose nearest distinct row is one step away in a few values is a rounding tie candidate: the float rows behind
    two such stored rows could have been as close as the stored twins. Empty when ``tokens`` is, or when ``d`` is not
    a multiple of ``block`` (no Q8_0 steps to measure in)."""
    E = np.asarray(E, dtype=np.float64)
    tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
    if tokens.size == 0 or E.shape[1] % block:
        return pd.DataFrame(columns=["token", "twins", "nearest", "max_steps", "n_differ"])
    step_per_value = np.repeat(quantisation_steps(E, block, levels), block, axis=1)  # (V, d)
    rows = []
    for token in tokens:
        diff = np.abs(E - E[token]) / np.where(step_per_value[token] > 0, step_per_value[token], 1.0)  # (V, d)
        worst = diff.max(axis=1)
        identical = worst == 0
        worst[identical] = np.inf
        nearest = int(np.argmin(worst))
        rows.append({"token": int(token), "twins": int(identical.sum()) - 1, "nearest": nearest,
                     "max_steps": float(worst[nearest]), "n_differ": int((diff[nearest] > 1e-9).sum())})
    return pd.DataFrame(rows, columns=["token", "twins", "nearest", "max_steps", "n_differ"])


def duplicate_rows(E: np.ndarray) -> np.ndarray:
    """The tokens whose row of ``E`` (V, d) is identical to another token's: -> (n,) int64 sorted."""
    _, inverse, counts = np.unique(np.asarray(E), axis=0, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse.reshape(-1)] > 1).astype(np.int64)
