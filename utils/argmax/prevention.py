"""Two remedies against unargmaxable tokens, this book's choice (the abstract of Grivas et al., 2022 names none).

Both act on the output layer ``E`` (V×d; Grivas et al.'s ``W``): a bias that makes the argmax the nearest row, or rows
scaled to unit norm.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .prepared import check_head


def prevention_bias(E: Any) -> np.ndarray:
    """The bias ``b_j = -½||e_j||²`` (V,): then ``e_j·x + b_j = ½||x||² - ½||x - e_j||²``, so the argmax is the
    row nearest to x and every distinct row wins at x = e_j."""
    E64, _ = check_head(E)
    return -0.5 * np.einsum("ij,ij->i", E64, E64)


def unit_norm_rows(E: Any) -> np.ndarray:
    """E (V, d) with every row scaled to unit length: distinct points on a sphere are all hull vertices, so without
    a bias every distinct row is argmaxable.  Zero rows are an error (they have no direction)."""
    E64, _ = check_head(E)
    norms = np.linalg.norm(E64, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"E has {int((norms == 0).sum())} zero rows; unit_norm_rows needs every row nonzero")
    return E64 / norms
