"""Sweeps over many heads: random heads (in theory), pruned heads of a real model, and the scorecard's checks.

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
from ..uncertainty import Check, exact
from ..validation import check_choice, check_float, check_int, check_positive_int
from .prepared import DEFAULT_BOX, DEFAULT_PATIENCE, check_head
from .verdicts import Verdicts, find_unargmaxable

#: distributions of the random heads' entries: U(-1, 1) or N(0, 1)
INITS = ("uniform", "normal")


# ----------------------------------------------------------------------------------------------------------------
# random heads (this book's case "in theory": how often does a random low-rank softmax have unargmaxable classes?)
# ----------------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------------
# pruned heads
# ----------------------------------------------------------------------------------------------------------------


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


def first_fraction_text(first: float, fractions: list[float]) -> str:
    """``first`` (a :func:`first_unargmaxable_fraction`) in words: "75%", or "none up to 95%" when it is NaN (no
    deleted fraction of ``fractions`` left a token unargmaxable)."""
    if math.isfinite(first):
        return f"{first:.0%}"
    return f"none up to {max(fractions):.0%}"


def paper_range_sentence(first: float, paper_low: float = 0.3, paper_high: float = 0.4) -> str:
    """Where chapter 3's deletions (the paper's range, ``paper_low`` to ``paper_high``) lie relative to ``first``,
    the smallest deleted fraction with an unargmaxable token (NaN: none on the grid), as a sentence."""
    paper_range = f"{100 * paper_low:.0f}–{paper_high:.0%}"
    if not math.isfinite(first) or first > paper_high:
        return f"The {paper_range} deletions of chapter 3 (the paper's range) stop short of that point."
    return f"The {paper_range} deletions of chapter 3 (the paper's range) already reach that point."


# ----------------------------------------------------------------------------------------------------------------
# the scorecard's checks
# ----------------------------------------------------------------------------------------------------------------


def headline_checks(
    random_sweep: Any,
    verdicts: Verdicts,
    prevention: dict[str, Verdicts],
    *,
    theory_share: float = 0.1,
) -> list:
    """The scorecard's checks of "unargmaxable in theory, rarely in practice, and preventable".

    Every number here is a property of a head (random heads drawn from a seed, the real model's output layer), not
    of any text, so each check's interval is :func:`utils.uncertainty.exact`: there are no texts to resample. Each
    check's name says what it is exact for: the one random head drawn per setting, and all the real head's tokens
    or only the tested sample.

    Checks (:class:`utils.uncertainty.Check`):

    - in theory: the smallest share of unargmaxable classes among the random heads of the sweep's smallest
      dimension is at least ``theory_share``;
    - rarely in practice: the tested tokens of the real head include at most 0 unargmaxable ones ("duplicate"
      rows, which tie with their twin, are counted apart, as in :meth:`Verdicts.counts`);
    - prevention: after every remedy in ``prevention`` except the first (the head before any remedy), at most 0
      classes are unargmaxable (the largest count over the remedies).

    Args:
        random_sweep: the frame of :func:`random_model_sweep` (columns dim, share).
        verdicts: the verdicts of the real head (:func:`utils.argmax.verdicts.find_unargmaxable`).
        prevention: name -> verdicts, the head before any remedy first, then one entry per remedy.
        theory_share: threshold of the "in theory" check, a share in (0, 1).
    """

    theory_share = check_float("theory_share", theory_share, low=0.0, high=1.0, low_inclusive=False,
                               high_inclusive=False)
    if len(random_sweep) == 0:
        raise ValueError("random_sweep holds no random head")
    if len(prevention) < 2:
        raise ValueError(f"prevention must hold the head before any remedy and at least one remedy; got "
                         f"{list(prevention)}")
    low_dim = int(random_sweep["dim"].min())
    low_share = float(random_sweep.loc[random_sweep["dim"] == low_dim, "share"].min())
    n_unargmaxable = verdicts.count("unargmaxable")
    remedies = list(prevention)[1:]
    after = max(prevention[name].count("unargmaxable") for name in remedies)
    V = int(verdicts.meta.get("V", len(verdicts)))
    tested = (f"all {V:,} tokens of the real head (exact: a property of the head)" if len(verdicts) >= V else
              f"the {len(verdicts):,} tested of the real head's {V:,} (exact for that sample only)")
    return [
        Check(f"in theory: smallest share of unargmaxable classes of the random heads in d={low_dim} (exact for the "
              f"one head drawn per setting from the seed; no interval over other draws)", low_share,
              exact(low_share), theory_share, "above", ".1%"),
        Check(f"rarely in practice: unargmaxable tokens among {tested}", float(n_unargmaxable),
              exact(n_unargmaxable), 0.0, "below", ".0f"),
        Check(f"prevention: unargmaxable classes after the worse of {', '.join(remedies)} (exact for the one random "
              f"head drawn from the seed)", float(after), exact(after), 0.0, "below", ".0f"),
    ]
