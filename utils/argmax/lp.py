"""The exact argmaxability test: a Chebyshev-centre linear program, this book's implementation, by cutting planes.

Maximise ``r`` over ``(x, r)`` subject to ``(e_j - e_c)·x + ||e_j - e_c|| r <= b_c - b_j`` for every ``j != c``,
``x`` in the box ``[-box, box]^d`` and ``r >= 0`` (Grivas et al. write the rows ``w_j``; the program, the box and its
default half-width 100 are this book's choices).  No upper bound on r is
needed: every competitor row differs from ``e_c`` and x is bounded, so r is; a cap such as ``r <= box`` would be
reached by most tokens of a head without bias, whose regions are cones, and hide how thin a region is.  Token ``c``
is argmaxable iff the optimum has ``r > 0``; the optimal ``x`` (the centre of the largest ball inside c's region) is
the witness, and its strict argmax is checked (:func:`utils.argmax.prepared.certified_margins`).

Solved with HiGHS by cutting planes: start from the competitors that score highest at a few hint points, add the
most violated constraints and re-solve until the solution satisfies the constraints of *all* tokens (then it is the
optimum of the full LP; a relaxation with ``r = 0`` or no feasible point already proves the token unargmaxable).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linprog

from ..compute import single_threaded_blas
from ..validation import check_float, check_int, check_positive_int
from .prepared import (
    DEFAULT_BOX,
    DEFAULT_RADIUS_TOL,
    PreparedHead,
    certified_margins,
    check_box,
    check_head,
    find_twins,
    reduce_head,
)

_LP_STATUS = {0: "optimal", 1: "iteration or time limit", 2: "infeasible", 3: "unbounded", 4: "numerical difficulties"}


@dataclass
class LPResult:
    """Outcome of the Chebyshev-centre LP for one token.

    Attributes:
        argmaxable: a centre with radius > radius_tol was found and its strict argmax verified.
        radius: optimal radius of the largest ball inside the token's region (within the box), 0 when infeasible.
        status: "optimal", "infeasible", ... (HiGHS), with a note when the radius is within tolerance of 0.
        x: (d,) float64 centre, or None.
        margin: own logit minus best other logit at x (nan without x).
        rounds: LP solves; constraints: competitors in the final LP.
    """

    argmaxable: bool
    radius: float
    status: str
    x: np.ndarray | None
    margin: float
    rounds: int
    constraints: int


def solve_lp(
    head: PreparedHead, c: int, active: np.ndarray, box: float, tolerance: float
) -> tuple[int, str, np.ndarray | None, float]:
    """One HiGHS solve of the Chebyshev LP of reduced class c against the competitors ``active`` (k,).

    Returns ``(code, status, centre (d,) or None, radius)``; code 0 is "optimal".
    """
    d = head.d
    A = head.E64[active] - head.E64[c]  # (k, d)
    A_ub = np.hstack([A, np.linalg.norm(A, axis=1, keepdims=True)])
    b_ub = np.zeros(len(active)) if head.b64 is None else head.b64[c] - head.b64[active]
    objective = np.zeros(d + 1)
    objective[-1] = -1.0
    bounds = [(-box, box)] * d + [(0.0, None)]
    res = linprog(
        objective, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs",
        options={"primal_feasibility_tolerance": tolerance, "dual_feasibility_tolerance": tolerance},
    )
    status = _LP_STATUS.get(res.status, f"status {res.status}")
    if res.status != 0 or res.x is None:
        return res.status, status, None, 0.0
    return 0, status, np.asarray(res.x[:d], dtype=np.float64), float(res.x[d])


def chebyshev_on_head(
    head: PreparedHead,
    c: int,
    hints: list[np.ndarray],
    *,
    box: float,
    radius_tol: float,
    initial: int,
    add: int,
    max_rounds: int,
    chunk_size: int,
) -> LPResult:
    """Cutting-plane Chebyshev LP of reduced class c of a prepared head (module docstring); unchecked arguments.

    ``hints`` (points (d,)) choose the first ``initial`` competitors; each round adds at most ``add`` violated
    constraints, for at most ``max_rounds`` rounds (then the full LP decides).
    """
    U = head.U
    others = np.delete(np.arange(U), c)
    if len(others) == 0:  # a single distinct row: it wins everywhere
        x = np.clip(hints[0], -box, box)
        return LPResult(True, box, "optimal (no competitor)", x, math.inf, 0, 0)
    e_c = head.E64[c]
    sq_norms = head.sq_norms
    # ||e_j - e_c|| for every j: the coefficient of r in j's constraint
    dist = np.sqrt(np.maximum(sq_norms - 2 * head.E64 @ e_c + sq_norms[c], 0.0))
    bias = np.zeros(U) if head.b64 is None else head.b64
    chosen: set[int] = set()
    for x in hints:
        score = head.E64 @ x + bias
        score[c] = -np.inf
        k = min(initial, len(others))
        chosen.update(np.argpartition(-score, k - 1)[:k].tolist())
    tolerance = 1e-9
    rounds = 0
    while True:
        rounds += 1
        active = np.fromiter(sorted(chosen), dtype=np.int64)
        code, status, x, r = solve_lp(head, c, active, box, tolerance)
        if x is None:  # a relaxation without a solution: the full LP has none either
            return LPResult(False, 0.0, status, None, math.nan, rounds, len(active))
        if r <= radius_tol:  # the relaxation's optimum bounds the full LP's optimum from above
            return LPResult(False, r, f"{status}, radius <= {radius_tol:g}", None, math.nan, rounds, len(active))
        # violation of every constraint at (x, r)
        violation = (head.E64 @ x + bias) - (e_c @ x + bias[c]) + dist * r
        violation[c] = -np.inf
        worst = np.flatnonzero(violation > 10 * tolerance * (1.0 + np.abs(bias - bias[c])))
        worst = worst[~np.isin(worst, active)]
        if len(worst) == 0 or rounds >= max_rounds:
            break
        if len(worst) > add:
            worst = worst[np.argpartition(-violation[worst], add - 1)[:add]]
        chosen.update(worst.tolist())
    wins, margin, _ = certified_margins(head, x[None, :], np.array([c]), chunk_size)
    converged = len(worst) == 0
    if wins[0]:
        note = status if converged else f"{status} (stopped after {rounds} rounds; radius is an upper bound)"
        return LPResult(True, r, note, x, float(margin[0]), rounds, len(active))
    if not converged:  # fall back to the full LP
        code, status, x, r = solve_lp(head, c, others, box, tolerance)
        rounds += 1
        if x is not None and r > radius_tol:
            wins, margin, _ = certified_margins(head, x[None, :], np.array([c]), chunk_size)
            if wins[0]:
                return LPResult(True, r, f"{status} (full LP)", x, float(margin[0]), rounds, len(others))
        if x is None or r <= radius_tol:
            return LPResult(False, r, f"{status} (full LP), radius <= {radius_tol:g}", None, math.nan, rounds,
                            len(others))
    return LPResult(
        False, r, f"{status}, radius {r:.3g} but the centre failed the argmax check", None, float(margin[0]),
        rounds, len(active),
    )


@single_threaded_blas
def chebyshev_lp(
    E: Any,
    b: Any,
    c: int,
    *,
    box: float = DEFAULT_BOX,
    radius_tol: float = DEFAULT_RADIUS_TOL,
    hints: list[np.ndarray] | None = None,
    initial: int = 256,
    add: int = 256,
    max_rounds: int = 200,
    chunk_size: int = 8192,
) -> LPResult:
    """The exact test alone for token ``c`` of E (V, d), b (V,) or None.

    A token with an identical twin of bias >= its own cannot win strictly and is reported unargmaxable with the
    status "duplicate of row j"; use :func:`utils.argmax.verdicts.find_unargmaxable` for the full verdicts.
    """
    E64, b64 = check_head(E, b)
    box = check_box(box)
    radius_tol = check_float("radius_tol", radius_tol, low=0.0)
    c = check_int("c", c, minimum=0, maximum=E64.shape[0] - 1)
    representative, twin = find_twins(E64, b64)
    if twin[c] >= 0:
        return LPResult(False, 0.0, f"duplicate of row {twin[c]}", None, math.nan, 0, 0)
    head = reduce_head(E64, b64, representative)
    rc = int(np.searchsorted(head.rows, c))
    hints = [head.E64[rc]] if hints is None else [np.asarray(h, dtype=np.float64) for h in hints]
    return chebyshev_on_head(
        head, rc, hints, box=box, radius_tol=radius_tol, initial=check_positive_int("initial", initial),
        add=check_positive_int("add", add), max_rounds=check_positive_int("max_rounds", max_rounds),
        chunk_size=chunk_size,
    )
