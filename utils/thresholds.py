"""How far along an ordered grid a condition holds: the one threshold search of the project.

Several chapters ask the same question of a sweep: going out from the safe end of a grid (fraction pruned, steering
ratio, training step counted back from the end), up to where does a check keep passing, with no failure before it?
:func:`leading_passes` answers it on the booleans, :func:`reach` turns the answer into the grid value reached.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def leading_passes(ok: Sequence[bool] | np.ndarray) -> int:
    """The number of leading True values of ``ok``: the length of the run of passes that starts at the first grid
    point and is not broken by a failure.

    Args:
        ok: (n,) bool, one check per grid point, ordered from the safe end outwards (n = 0 allowed).

    Returns:
        An int in ``[0, n]``: ``0`` when the first check fails (or there is none), ``n`` when every check passes.
    """
    array = np.asarray(ok)
    if array.ndim != 1:
        raise ValueError(f"ok must be a 1-d sequence of booleans; got shape {array.shape}")
    if array.size and array.dtype != np.bool_:
        raise TypeError(f"ok must hold booleans; got dtype {array.dtype}")
    failures = np.flatnonzero(~array.astype(bool))
    return int(failures[0]) if failures.size else int(array.size)


def reach(keys: Sequence[Any] | np.ndarray, ok: Sequence[bool] | np.ndarray, default: Any = None) -> Any:
    """The last grid value of the leading run of passes: ``keys[leading_passes(ok) - 1]``, or ``default`` when the
    first check fails (or the grid is empty).

    Args:
        keys: (n,) the grid values, in the order the checks are walked (e.g. fractions ascending; steps descending to
            find the first step of the final run of passes).
        ok: (n,) bool, whether the check passes at each grid value.
    """
    keys = list(keys)
    n_passes = leading_passes(ok)
    if len(keys) != len(np.asarray(ok)):
        raise ValueError(f"keys ({len(keys)}) and ok ({len(np.asarray(ok))}) differ in length")
    return keys[n_passes - 1] if n_passes else default
