"""The brute-force oracle in low dimension: convex hulls (Qhull), against which every verdict is compared.

Without a bias, token c is the strict argmax somewhere iff its row ``e_c`` (its weight row in the softmax layer) is a
vertex of the convex hull of the rows; with a bias, iff the lifted point ``(e_c, b_c)`` is a vertex of an upper facet
of the lifted hull.  Chapter 5 shows the comparison (:func:`hull_agreement`, section 5.2) and the tests use the oracle
directly.  Practical for d from 2 to about 6.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import ConvexHull

from ..validation import check_int, check_positive_int
from .prepared import DEFAULT_BOX, check_box, check_head
from .verdicts import find_unargmaxable


def hull_argmaxable(E: Any, b: Any = None, *, box: float | None = None) -> np.ndarray:
    """Brute-force verdicts (V,) bool for small d (2 to ~6).

    Without a bias, token c is the strict argmax somewhere iff its row is a vertex of the convex hull of the rows
    (its region is a cone, so any box meets it).  With a bias, iff the lifted point ``(e_c, b_c)`` is a vertex of
    an *upper* facet of the hull of the lifted points (outward normal ``(n_e, n_b)`` with ``n_b > 0``), since the
    logits are ``(x, 1)·(e_j, b_j)``; that facet's point ``x = n_e / n_b`` is a vertex of c's region.  With a bias
    and a ``box``, a token counts as argmaxable only when one of its region's vertices lies strictly inside the
    box (then the region meets the box in a full-dimensional set); see :func:`hull_box_undecided` for the tokens
    this cannot decide.  Rows are assumed distinct and in general position, as for random instances.
    """
    argmaxable, _ = _hull_verdicts(E, b, box)
    return argmaxable


def hull_box_undecided(E: Any, b: Any, box: float) -> np.ndarray:
    """Tokens (V,) bool that are argmaxable in the whole space but whose region has no vertex inside the box:
    the brute force cannot tell whether the box cuts their region off (the region may lie entirely outside)."""
    _, undecided = _hull_verdicts(E, b, check_box(box))
    return undecided


def _hull_verdicts(E: Any, b: Any, box: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``(argmaxable (V,) bool, undecided (V,) bool)`` from the (lifted) convex hull; see :func:`hull_argmaxable`."""

    E64, b64 = check_head(E, b)
    V, d = E64.shape
    points = E64 if b64 is None else np.hstack([E64, b64[:, None]])
    if V < points.shape[1] + 1:
        raise ValueError(
            f"hull_argmaxable needs V >= {points.shape[1] + 1} rows for a full-dimensional hull; got V={V}"
        )
    out = np.zeros(V, dtype=bool)
    undecided = np.zeros(V, dtype=bool)
    if d == 1 and b64 is None:
        out[[int(np.argmin(E64[:, 0])), int(np.argmax(E64[:, 0]))]] = True
        return out, undecided
    hull = ConvexHull(points)
    if b64 is None:
        out[hull.vertices] = True
        return out, undecided
    upper = hull.equations[:, d] > 0  # outward normal points up in the bias coordinate
    anywhere = np.zeros(V, dtype=bool)
    anywhere[np.unique(hull.simplices[upper])] = True
    if box is None:
        return anywhere, undecided
    corners = hull.equations[upper, :d] / hull.equations[upper, d : d + 1]  # region vertices x = n_e / n_b
    in_box = np.all(np.abs(corners) < box, axis=1)
    out[np.unique(hull.simplices[upper][in_box])] = True
    return out, anywhere & ~out


def hull_agreement(
    n_instances: int, *, seed: int = 0, max_d: int = 6, max_V: int = 40, box_with_bias: float = 1e4
) -> dict[str, int]:
    """Compare every verdict with the convex-hull brute force on random instances (half with a bias).

    Rows and biases are N(0, 1), d in 2..``max_d``, V in d+2..``max_V``; with a bias the box is ``box_with_bias``.
    Returns a dict: instances, verdicts (tokens compared), agree (tokens with the same verdict), braid_false_clear
    (unargmaxable tokens the fast test cleared; must be 0), unargmaxable (tokens the hull says are inside),
    undecided (tokens with a bias whose region has no vertex inside the box, so the hull cannot decide whether the
    box cuts it off; not compared).
    """
    n_instances = check_positive_int("n_instances", n_instances)
    max_d = check_int("max_d", max_d, minimum=2)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    out = dict(instances=0, verdicts=0, agree=0, braid_false_clear=0, unargmaxable=0, undecided=0)
    for i in range(n_instances):
        d = int(rng.integers(2, max_d + 1))
        V = int(rng.integers(d + 2, max(max_V, d + 3) + 1))
        E = rng.normal(size=(V, d))
        b = rng.normal(size=V) if i % 2 else None
        box = box_with_bias if b is not None else DEFAULT_BOX
        verdicts = find_unargmaxable(E, b, box=box, cache=False, progress=False)
        truth, undecided = _hull_verdicts(E, b, box)
        decided = ~undecided
        out["instances"] += 1
        out["verdicts"] += int(decided.sum())
        out["agree"] += int(np.sum(((verdicts.status == "argmaxable") == truth) & decided))
        out["braid_false_clear"] += int(np.sum((verdicts.method == "braid") & ~truth & decided))
        out["unargmaxable"] += int(np.sum(~truth & decided))
        out["undecided"] += int(undecided.sum())
    return out
