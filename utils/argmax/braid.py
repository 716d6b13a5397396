"""Braid reflect: the fast, one-sided argmaxability test, this book's implementation, batched over many tokens.

Grivas et al. (2022) develop algorithms to detect unargmaxable tokens; the details below (the start, the
reflection, the patience) are this book's, not taken from the paper's text.

Start at a point ``x`` (token c's row ``e_c``, or that row minus the mean row), and while the argmax of
``E @ x + b`` is some other token ``j``, reflect ``x`` across the hyperplane where ``c`` and ``j`` tie,
``x <- x - 2 ((e_c - e_j)·x + b_c - b_j) / ||e_c - e_j||² (e_c - e_j)``, for at most ``patience`` reflections.
The signed distance of ``x`` to the tie hyperplane is negative while ``j`` beats ``c``, so the reflection moves
``x`` to the side where ``c`` beats ``j``.  (Grivas et al. write the rows ``w_c``.)  Batched here over many tokens at
once as matrix products; the argmax is taken chunk by chunk over the vocabulary, so no V×V matrix is ever held.

A token is cleared only with a witness inside the box whose strict argmax is certified
(:func:`utils.argmax.prepared.certified_margins`), so the test never clears an unargmaxable token; the tokens it
does not clear go to the exact test (:mod:`utils.argmax.lp`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..compute import resolve_device, single_threaded_blas
from ..validation import check_choice, check_int, check_positive_int, check_token_ids
from .prepared import (
    DEFAULT_BOX,
    DEFAULT_PATIENCE,
    STARTS,
    PreparedHead,
    certified_margins,
    check_box,
    check_head,
    find_twins,
    reduce_head,
)


@dataclass
class BraidResult:
    """Outcome of the braid-reflect test for ``n`` reduced classes.

    Attributes:
        cleared: (n,) bool, a verified witness was found (the class is argmaxable).
        witness: (n, d) float64, the last point visited (the witness where cleared).
        start: (n, d) float64, the starting points.
        margin: (n,) float64, own logit minus the best other logit at the last point.
        steps: (n,) int64, reflections made.
    """

    cleared: np.ndarray
    witness: np.ndarray
    start: np.ndarray
    margin: np.ndarray
    steps: np.ndarray


def _starting_points(head: PreparedHead, cls: np.ndarray, start: str, box: float) -> np.ndarray:
    """The first point (n, d) float64 of each reduced class ``cls`` (n,): its row, or its row minus the mean row."""
    X = head.E64[cls].copy()
    if start == "centred":
        X -= head.mean_row
    if head.b64 is None:
        # without a bias the argmax is unchanged by positive scaling, and reflections keep the 2-norm: start inside
        # the box so that every point visited stays inside it
        norm = np.linalg.norm(X, axis=1)
        scale = np.minimum(1.0, 0.999 * box / np.maximum(norm, 1e-300))
        X *= scale[:, None]
    return X


def braid_batch(
    head: PreparedHead,
    cls: np.ndarray,
    *,
    patience: int,
    box: float,
    start: str,
    block_size: int,
    chunk_size: int,
    progress: bool,
) -> BraidResult:
    """Braid reflect for the reduced classes ``cls`` (n,) of a prepared head, all at once (module docstring)."""
    n = len(cls)
    X = _starting_points(head, cls, start, box)
    X = X.astype(np.float32).astype(np.float64)  # the points are float32 vectors, checked exactly
    X0 = X.copy()
    cleared = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)
    margin = np.full(n, -np.inf)
    steps = np.zeros(n, dtype=np.int64)
    bar = tqdm(total=n, desc="braid reflect", unit="token", disable=not progress)
    for step in range(patience + 1):
        active = np.flatnonzero(~done)
        if len(active) == 0:
            break
        bar.set_postfix(step=step, active=len(active))
        for lo in range(0, len(active), block_size):
            a = active[lo : lo + block_size]
            wins, m, j = certified_margins(head, X[a], cls[a], chunk_size)
            inside = np.all(np.abs(X[a]) <= box, axis=1)
            margin[a] = m
            cleared[a] = wins & inside
            stop = wins | (step == patience)  # a winner outside the box (only with a bias) goes to the LP
            lose = a[~stop]
            if len(lose):
                diff = head.E64[cls[lose]] - head.E64[j[~stop]]  # (m, d) normal of the tie hyperplane
                norm2 = np.einsum("ij,ij->i", diff, diff)
                gap = np.einsum("ij,ij->i", diff, X[lose])
                if head.b64 is not None:
                    gap += head.b64[cls[lose]] - head.b64[j[~stop]]
                ok = norm2 > 0  # identical rows are merged, so this holds; guard anyway
                step_size = np.where(ok, 2.0 * gap / np.where(ok, norm2, 1.0), 0.0)
                X[lose] = (X[lose] - step_size[:, None] * diff).astype(np.float32).astype(np.float64)
                steps[lose] += 1
            done[a[stop]] = True
            bar.update(int(stop.sum()))
    bar.close()
    return BraidResult(cleared=cleared, witness=X, start=X0, margin=margin, steps=steps)


@single_threaded_blas
def braid_reflect(
    E: Any,
    b: Any = None,
    tokens: Any = None,
    *,
    patience: int = DEFAULT_PATIENCE,
    box: float = DEFAULT_BOX,
    start: str = "centred",
    block_size: int = 2048,
    chunk_size: int = 8192,
    progress: bool = False,
    device: str = "cpu",
) -> BraidResult:
    """The fast test alone, for the tokens ``tokens`` (default: all) of E (V, d), b (V,) or None, its float32
    products on ``device`` ("cpu", "cuda" or "auto").

    Never clears an unargmaxable token: a token is cleared only with a verified witness inside the box.  Tokens
    with an identical twin are tested against the other rows only (their twins are merged).
    """
    E64, b64 = check_head(E, b)
    box = check_box(box)
    patience = check_int("patience", patience, minimum=0)
    check_choice("start", start, STARTS)
    representative, _ = find_twins(E64, b64)
    head = reduce_head(E64, b64, representative, resolve_device(device))
    tokens = (np.arange(E64.shape[0], dtype=np.int64) if tokens is None
              else check_token_ids("tokens", tokens, E64.shape[0], distinct=True))
    reduced_index = np.searchsorted(head.rows, representative[tokens])
    return braid_batch(
        head, reduced_index, patience=patience, box=box, start=start,
        block_size=check_positive_int("block_size", block_size),
        chunk_size=check_positive_int("chunk_size", chunk_size),
        progress=progress,
    )
