"""Sweeps over many heads: random heads (in theory) and pruned heads of a real model.

Every head is written ``E`` (V×d; the paper's ``W``) with bias ``b`` or None, and tested with
:func:`utils.argmax.verdicts.find_unargmaxable` (cached per head).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..pruning.criteria import n_deleted
from ..validation import check_choice, check_float, check_int, check_positive_int
from .prepared import DEFAULT_BOX, DEFAULT_PATIENCE, check_head
from .verdicts import find_unargmaxable

#: distributions of the random heads' entries: U(-1, 1) or N(0, 1)
INITS = ("uniform", "normal")


def random_head(V: int, d: int, init: str, bias: bool, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A random output layer: E (V, d) and b (V,) (or None) drawn i.i.d. from U(-1, 1) ("uniform") or N(0, 1)
    ("normal"), this book's choice of distributions."""
    V = check_int("V", V, minimum=2)
    d = check_positive_int("d", d)
    check_choice("init", init, INITS)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    if init == "uniform":
        def draw(size):
            return rng.uniform(-1.0, 1.0, size)
    else:
        def draw(size):
            return rng.normal(0.0, 1.0, size)
    E = draw((V, d))
    return E, (draw(V) if bias else None)


def random_model_sweep(
    dims: list[int],
    n_classes: int,
    *,
    inits: tuple[str, ...] = INITS,
    biases: tuple[bool, ...] = (False, True),
    seed: int = 0,
    box: float = DEFAULT_BOX,
    patience: int = DEFAULT_PATIENCE,
    progress: bool = True,
):
    """Share of unargmaxable classes of random heads for every (dimension, init, bias); a pandas DataFrame with
    columns dim, init, bias, n_classes, n_unargmaxable, share, n_lp, seconds.  The head of dimension d is drawn with
    the seed ``seed + 1000 d``; each head's verdicts are cached."""

    if len(dims) == 0:
        raise ValueError("dims must list at least one dimension")
    for init in inits:
        check_choice("inits", init, INITS)
    rows = []
    configs = [(d, init, bias) for d in dims for init in inits for bias in biases]
    for d, init, bias in tqdm(configs, desc="random heads", disable=not progress):
        E, b = random_head(n_classes, d, init, bias, seed + 1000 * int(d))
        verdicts = find_unargmaxable(E, b, box=box, patience=patience, progress=False)
        counts = verdicts.counts()
        rows.append(
            dict(
                dim=int(d), init=init, bias=bool(bias), n_classes=int(n_classes),
                n_unargmaxable=counts["unargmaxable"], share=counts["unargmaxable"] / n_classes,
                n_lp=counts["decided_by_lp"], seconds=verdicts.meta["seconds"],
            )
        )
    return pd.DataFrame(rows)


def pruning_sweep(
    E: Any,
    order: Any,
    fractions: list[float],
    *,
    b: Any = None,
    tokens: Any = None,
    box: float = DEFAULT_BOX,
    patience: int = DEFAULT_PATIENCE,
    progress: bool = True,
):
    """Verdicts on the pruned heads ``E[:, keep]`` as a growing fraction of dimensions is deleted.

    ``order`` (d,) lists the dimensions in the order they are deleted (first = deleted first); for each fraction f
    the first :func:`utils.pruning.criteria.n_deleted` ``(d, f)`` are deleted (``floor(f d)``, at most d - 1: the
    book's one definition of "delete a fraction f").  Returns a pandas DataFrame with columns fraction, n_deleted,
    d_kept, tested, argmaxable, unargmaxable, duplicate, decided_by_lp, smallest_lp_radius, seconds.
    """

    E64, _ = check_head(E, b)
    d = E64.shape[1]
    order = np.asarray(order)
    if order.shape != (d,) or not np.array_equal(np.sort(order), np.arange(d)):
        raise ValueError(f"order must be a permutation of the {d} dimensions; got shape {order.shape}")
    E_in = np.asarray(E.detach().cpu().numpy() if isinstance(E, torch.Tensor) else E)  # (exact bytes)
    rows = []
    for fraction in tqdm(fractions, desc="pruned heads", disable=not progress):
        fraction = check_float("fractions", fraction, low=0.0, high=1.0, high_inclusive=False)
        deleted = n_deleted(d, fraction)
        keep = np.sort(order[deleted:])
        verdicts = find_unargmaxable(
            np.ascontiguousarray(E_in[:, keep]), b, tokens=tokens, box=box, patience=patience, progress=False
        )
        counts = verdicts.counts()
        rows.append(
            dict(
                fraction=fraction, n_deleted=deleted, d_kept=d - deleted, tested=counts["tested"],
                argmaxable=counts["argmaxable"], unargmaxable=counts["unargmaxable"], duplicate=counts["duplicate"],
                decided_by_lp=counts["decided_by_lp"], smallest_lp_radius=verdicts.smallest_lp_radius(),
                seconds=verdicts.meta["seconds"],
            )
        )
    return pd.DataFrame(rows)


def first_unargmaxable_fraction(sweep) -> float:
    """The smallest pruning fraction of a :func:`pruning_sweep` with at least one unargmaxable token (NaN if none)."""
    hit = sweep[sweep["unargmaxable"] > 0]
    return float(hit["fraction"].min()) if len(hit) else math.nan
