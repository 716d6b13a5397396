"""Argument checks that fail early with a message naming the parameter, the value and what is allowed."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise ``ValueError``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {allowed}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer within [minimum, maximum]; otherwise raise."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name}={value!r} must be an integer")
    value = value.__index__()
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value} must be <= {maximum}")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer >= 1; otherwise raise."""
    return check_int(name, value, minimum=1)


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite float inside the stated interval; otherwise raise ``ValueError``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}={value} must be finite")
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(f"{name}={value} is outside the allowed interval {interval}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise ValueError(f"{name}={value} is outside the allowed interval {interval}")
    return value


def check_token_ids(name: str, tokens: Any, V: int, *, distinct: bool = False) -> np.ndarray:
    """Return ``tokens`` (one id or a non-empty 1-d sequence of ids) as a (n,) int64 array of ids in ``0..V-1``.

    Raises ``TypeError`` for non-integer ids and ``ValueError`` for an empty or nested sequence, an id outside the
    vocabulary, or (with ``distinct``) a repeated id; each message names the parameter, the value and what is allowed.
    """
    V = check_positive_int("V", V)
    array = np.atleast_1d(np.asarray(tokens))
    shown = " ".join(repr(tokens).split())[:80]  # the value on one line, cut short
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}={shown} must be one token id or a non-empty 1-d list of ids in 0..{V - 1}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name}={shown} must hold integer token ids in 0..{V - 1}")
    bad = array[(array < 0) | (array >= V)]
    if bad.size:
        raise ValueError(f"{name} holds {int(bad[0])}, outside the vocabulary; allowed ids are 0..{V - 1}")
    if distinct:
        ids, repeats = np.unique(array, return_counts=True)
        if (repeats > 1).any():
            raise ValueError(f"{name} repeats token id {int(ids[repeats > 1][0])}; each id may appear only once")
    return array.astype(np.int64)
