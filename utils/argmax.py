"""Which tokens can never be predicted? Argmaxability of a softmax layer (Grivas, Bogoychev & Lopez, ACL 2022).

A class ``c`` of a softmax layer with weights ``W`` (V×d) and bias ``b`` (V,) is *argmaxable* when some input
``x`` makes it the strict argmax of ``W @ x + b``; otherwise it is *unargmaxable* and the model can never predict it
by greedy decoding, whatever the context.  Two tests, as in the paper:

* **Braid reflect** (fast, one-sided): start at a point ``x`` (the class's own row), and while the argmax is some
  other class ``j``, reflect ``x`` across the hyperplane where ``c`` and ``j`` tie,
  ``x <- x - 2 ((w_c - w_j)·x + b_c - b_j) / ||w_c - w_j||² (w_c - w_j)``, for at most ``patience`` reflections.
  The signed distance of ``x`` to the tie hyperplane is negative while ``j`` beats ``c``, so the reflection moves
  ``x`` to the side where ``c`` beats ``j``.  Batched here over many classes at once as matrix products; the argmax
  is taken chunk by chunk over the vocabulary, so no V×V matrix is ever held.
* **Chebyshev-centre LP** (exact): maximise ``r`` over ``(x, r)`` subject to
  ``(w_j - w_c)·x + ||w_j - w_c|| r <= b_c - b_j`` for every ``j != c``, ``x`` in the box ``[-box, box]^d`` and
  ``r >= 0`` (no upper bound is needed: every competitor row differs from ``w_c`` and x is bounded, so r is; a cap
  such as ``r <= box`` would be reached by most classes of a head without bias, whose regions are cones, and hide
  how thin a region is).  ``c`` is argmaxable iff the optimum has ``r > 0``; the optimal ``x`` (the centre of the
  largest ball inside c's region) is the witness.  Solved with HiGHS by cutting planes: start from the competitors that
  score highest at a few hint points, add the most violated constraints and re-solve until the solution satisfies
  the constraints of *all* classes (then it is the optimum of the full LP; a relaxation with ``r = 0`` or no
  feasible point already proves the class unargmaxable).

Every "argmaxable" verdict carries a witness whose strict argmax is checked against all classes, with a certified
bound on the rounding error of the check (float32 products, re-checked in float64 when the margin is close).
Rows that are exact copies of another row (with a bias at least as large) can never win strictly: they get the
verdict "duplicate" and name their twin.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import linprog
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from . import cache as store  # find_unargmaxable's argument `cache` is the on/off switch
from .validation import check_choice, check_float, check_int, check_positive_int

#: bump when a change to this module could change a verdict (part of the cache key)
CODE_VERSION = "1"
STATUSES = ("argmaxable", "unargmaxable", "duplicate")
METHODS = ("braid", "lp", "twin")
STARTS = ("row", "centred")
INITS = ("uniform", "normal")
DEFAULT_BOX = 100.0
DEFAULT_PATIENCE = 50
DEFAULT_RADIUS_TOL = 1e-8

#: chunk products with at most this many multiply-adds run in numpy on one thread (less overhead, no thread
#: contention), larger ones in torch (multi-threaded)
SMALL_PRODUCT = 1 << 27
_LP_STATUS = {0: "optimal", 1: "iteration or time limit", 2: "infeasible", 3: "unbounded", 4: "numerical difficulties"}


def _single_threaded_blas(function):
    """Run ``function`` with numpy's BLAS on one thread.

    The numpy products here are small (matrix-vector products of the LP, small blocks); multi-threaded OpenBLAS
    makes them 10-20x slower on a busy two-core machine.  The large products run in torch, whose threads this does
    not touch.
    """
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------------------------------------------
# input checks and the reduced head (one row per group of identical rows)
# ----------------------------------------------------------------------------------------------------------------


def _as_numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as error:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be an array; got {type(value).__name__}") from error
    if array.dtype == object or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must be a real-valued array; got dtype {array.dtype}")
    return array


def check_head(W: Any, b: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate a softmax layer and return ``(W (V, d) float64, b (V,) float64 or None)``.

    Raises ``ValueError`` for ``V < 2``, ``d < 1``, a bias of the wrong shape or non-finite entries.
    """
    W_arr = _as_numpy("W", W)
    if W_arr.ndim != 2:
        raise ValueError(f"W must be 2-d (V, d); got shape {W_arr.shape}")
    V, d = W_arr.shape
    if V < 2:
        raise ValueError(f"W must have at least V=2 rows (classes); got V={V}")
    if d < 1:
        raise ValueError(f"W must have at least d=1 column; got d={d}")
    if not np.all(np.isfinite(W_arr)):
        bad = int(np.argwhere(~np.isfinite(W_arr))[0][0])
        raise ValueError(f"W has non-finite entries (first in row {bad}); all weights must be finite")
    b_arr = None
    if b is not None:
        b_arr = _as_numpy("b", b)
        if b_arr.shape != (V,):
            raise ValueError(f"b must have shape (V,)=({V},) to match W {W_arr.shape}; got shape {b_arr.shape}")
        if not np.all(np.isfinite(b_arr)):
            bad = int(np.argwhere(~np.isfinite(b_arr))[0][0])
            raise ValueError(f"b has non-finite entries (first at index {bad}); all biases must be finite")
        b_arr = b_arr.astype(np.float64)
    return W_arr.astype(np.float64), b_arr


def check_box(box: Any) -> float:
    """The half-width of the search box ``[-box, box]^d``: a finite number > 0 (an empty box is an error)."""
    return check_float("box", box, low=0.0, low_inclusive=False)


def prepare_head(W: Any, b: Any = None) -> tuple[PreparedHead, np.ndarray, np.ndarray]:
    """Check a head and prepare it once: ``(reduced head, representative (V,), twin (V,))`` (see find_twins).

    ``np.searchsorted(head.rows, representative[t])`` is token t's class id in the reduced head.
    """
    W64, b64 = check_head(W, b)
    representative, twin = find_twins(W64, b64)
    return reduce_head(W64, b64, representative), representative, twin


def find_twins(W: np.ndarray, b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Group identical rows of ``W`` (V, d).

    Returns ``(representative (V,) int64, twin (V,) int64)``.  ``representative[i]`` is the row of i's group with
    the largest bias (lowest index among ties): the only member that can ever be the strict argmax.  ``twin[i]`` is
    ``-1`` when ``i`` can be tested on its own (it is alone, or the unique largest bias of its group); otherwise it
    names a member of i's group with a bias at least as large, so i can never win strictly ("duplicate").
    """
    V = W.shape[0]
    rows = np.ascontiguousarray(W + 0.0)  # + 0.0 turns -0.0 into 0.0, so equal rows have equal bytes
    first: dict[bytes, int] = {}
    inverse = np.empty(V, dtype=np.int64)
    for i in range(V):
        inverse[i] = first.setdefault(rows[i].tobytes(), i)
    representative = np.arange(V, dtype=np.int64)
    twin = np.full(V, -1, dtype=np.int64)
    counts = np.bincount(inverse, minlength=V)
    for group in np.flatnonzero(counts > 1):
        members = np.flatnonzero(inverse == group)
        bias = np.zeros(len(members)) if b is None else b[members]
        top = members[bias == bias.max()]
        representative[members] = top[0]
        for i in members:
            others = top[top != i]
            if len(others):  # some member with a bias >= i's (ties at the top, or i is below the top)
                twin[i] = others[0]
    return representative, twin


# ----------------------------------------------------------------------------------------------------------------
# certified strict-argmax checks
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class PreparedHead:
    """The head reduced to one row per group of identical rows, in the formats the tests need.

    Attributes:
        W64, b64: reduced weights (U, d) float64 and bias (U,) float64 or None (the originals, exactly).
        W32, b32: the same as float32 torch tensors for the fast products.
        rows: (U,) int64, original row index of each reduced row.
        max_row_norm, max_abs_bias: for the rounding-error bound of a logit.
        sq_norms: (U,) float64, squared row norms.
        mean_row: (d,) float64, the mean reduced row (the "centred" braid start subtracts it).
    """

    W64: np.ndarray
    b64: np.ndarray | None
    W32: torch.Tensor
    b32: torch.Tensor | None
    rows: np.ndarray
    max_row_norm: float
    max_abs_bias: float
    sq_norms: np.ndarray
    mean_row: np.ndarray

    @property
    def U(self) -> int:
        return int(self.W64.shape[0])

    @property
    def d(self) -> int:
        return int(self.W64.shape[1])


def reduce_head(W: np.ndarray, b: np.ndarray | None, representative: np.ndarray) -> PreparedHead:
    """The head W (V, d) float64, b (V,) or None reduced to the rows ``representative`` names (see find_twins)."""
    rows = np.flatnonzero(representative == np.arange(len(representative)))
    W64 = np.ascontiguousarray(W[rows])
    b64 = None if b is None else np.ascontiguousarray(b[rows])
    return PreparedHead(
        W64=W64,
        b64=b64,
        W32=torch.from_numpy(W64.astype(np.float32)),
        b32=None if b64 is None else torch.from_numpy(b64.astype(np.float32)),
        rows=rows,
        max_row_norm=float(np.linalg.norm(W64, axis=1).max()),
        max_abs_bias=0.0 if b64 is None else float(np.abs(b64).max()),
        sq_norms=np.einsum("ij,ij->i", W64, W64),
        mean_row=W64.mean(0),
    )


def _error_bound(head: PreparedHead, x_norm: np.ndarray, unit_roundoff: float) -> np.ndarray:
    """A bound on |computed - exact| of one logit ``w_j·x + b_j`` at points of 2-norm ``x_norm`` (n,).

    Rounding the weights and the bias to the working precision, the d products and the d + 1 sums each contribute
    at most ``u`` relative error: |error| <= gamma_{d+4} (||w_j|| ||x|| + |b_j|), gamma_k = k u / (1 - k u),
    whatever order the products are summed in.
    """
    k = head.d + 4
    gamma = k * unit_roundoff / (1.0 - k * unit_roundoff)
    return 1.01 * gamma * (head.max_row_norm * x_norm + head.max_abs_bias)


def _competitor_max(
    head: PreparedHead, X: np.ndarray, cls: np.ndarray, chunk_size: int, dtype: type
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Own logit and best competitor of each point: X (n, d), cls (n,) reduced class ids.

    Returns ``(own (n,) float64, best_other (n,) float64, best_index (n,) int64)`` computed in ``dtype``
    (np.float32 or np.float64), the vocabulary taken ``chunk_size`` rows at a time (``best_other = -inf`` when there
    is no other class).  Large products run in torch (multi-threaded max), small ones in numpy (less overhead).
    """
    n = X.shape[0]
    if dtype == np.float32:
        W, b = head.W32, head.b32
    else:
        W = torch.from_numpy(head.W64)
        b = None if head.b64 is None else torch.from_numpy(head.b64)
    small = n * min(head.U, chunk_size) * head.d <= SMALL_PRODUCT
    if small:  # numpy views of the same weights
        W = W.numpy()
        b = None if b is None else b.numpy()
        X = X.astype(dtype)
        own = np.einsum("ij,ij->i", X, W[cls])
        if b is not None:
            own = own + b[cls]
    else:
        X = torch.from_numpy(np.ascontiguousarray(X, dtype=dtype))
        own_t = (X * W[torch.from_numpy(cls)]).sum(1)
        if b is not None:
            own_t = own_t + b[torch.from_numpy(cls)]
        own = own_t.numpy()
    best = np.full(n, -np.inf)
    best_index = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    for start in range(0, head.U, chunk_size):
        stop = min(start + chunk_size, head.U)
        logits = X @ W[start:stop].T  # (n, chunk)
        if b is not None:
            logits += b[start:stop]
        inside = (cls >= start) & (cls < stop)
        if small:
            logits[rows[inside], cls[inside] - start] = -np.inf  # a class is not its own competitor
            index = logits.argmax(1)
            value = logits[rows, index]
        else:
            logits[torch.from_numpy(rows[inside]), torch.from_numpy(cls[inside] - start)] = -math.inf
            value, index = logits.max(1)
            value, index = value.numpy(), index.numpy()
        better = value > best
        best = np.where(better, value, best)
        best_index = np.where(better, index + start, best_index)
    return own.astype(np.float64), best, best_index


def _certified_margins(
    head: PreparedHead, X: np.ndarray, cls: np.ndarray, chunk_size: int, fast: tuple | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strict-argmax check of points X (n, d) float64 for reduced classes cls (n,).

    Returns ``(wins (n,) bool, margin (n,) float64, best_index (n,) int64)``: ``wins`` is True only where the own
    logit exceeds every other logit by more than twice the rounding bound, so the class is the strict argmax at X in
    exact arithmetic.  The check runs in float32 (or takes ``fast``, its precomputed result) and re-runs in float64
    for the points whose float32 margin is too close to call.
    """
    x_norm = np.linalg.norm(X, axis=1)
    if fast is None:
        fast = _competitor_max(head, X, cls, chunk_size, np.float32)
    own, best, best_index = fast
    margin = own - best
    bound32 = _error_bound(head, x_norm, 2.0**-24)
    wins = margin > 2 * bound32
    close = np.flatnonzero(~wins & (margin > -2 * bound32))
    if len(close):
        own64, best64, index64 = _competitor_max(head, X[close], cls[close], chunk_size, np.float64)
        margin = margin.copy()
        best_index = best_index.copy()
        margin[close] = own64 - best64
        best_index[close] = index64
        wins[close] = margin[close] > 2 * _error_bound(head, x_norm[close], 2.0**-53)
    return wins, margin, best_index


def argmax_margin(W: Any, b: Any, x: Any, c: int) -> float:
    """``logit_c - max_{j != c} logit_j`` at the point ``x`` (d,), in float64 over all V classes."""
    W64, b64 = check_head(W, b)
    logits = W64 @ np.asarray(x, dtype=np.float64)
    if b64 is not None:
        logits = logits + b64
    others = np.delete(logits, c)
    return float(logits[c] - others.max())


# ----------------------------------------------------------------------------------------------------------------
# braid reflect (fast test)
# ----------------------------------------------------------------------------------------------------------------


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
    X = head.W64[cls].copy()
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
            wins, m, j = _certified_margins(head, X[a], cls[a], chunk_size)
            inside = np.all(np.abs(X[a]) <= box, axis=1)
            margin[a] = m
            cleared[a] = wins & inside
            stop = wins | (step == patience)  # a winner outside the box (only with a bias) goes to the LP
            lose = a[~stop]
            if len(lose):
                diff = head.W64[cls[lose]] - head.W64[j[~stop]]  # (m, d) normal of the tie hyperplane
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


@_single_threaded_blas
def braid_reflect(
    W: Any,
    b: Any = None,
    tokens: Any = None,
    *,
    patience: int = DEFAULT_PATIENCE,
    box: float = DEFAULT_BOX,
    start: str = "centred",
    block_size: int = 2048,
    chunk_size: int = 8192,
    progress: bool = False,
) -> BraidResult:
    """The fast test alone, for the classes ``tokens`` (default: all) of W (V, d), b (V,) or None.

    Never clears an unargmaxable class: a class is cleared only with a verified witness inside the box.  Classes
    with an identical twin are tested against the other rows only (their twins are merged).
    """
    W64, b64 = check_head(W, b)
    box = check_box(box)
    patience = check_int("patience", patience, minimum=0)
    check_choice("start", start, STARTS)
    representative, _ = find_twins(W64, b64)
    head = reduce_head(W64, b64, representative)
    tokens = _check_tokens(tokens, W64.shape[0])
    reduced_index = np.searchsorted(head.rows, representative[tokens])
    return braid_batch(
        head, reduced_index, patience=patience, box=box, start=start,
        block_size=check_positive_int("block_size", block_size),
        chunk_size=check_positive_int("chunk_size", chunk_size),
        progress=progress,
    )


# ----------------------------------------------------------------------------------------------------------------
# Chebyshev-centre LP (exact test) with cutting planes
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class LPResult:
    """Outcome of the Chebyshev-centre LP for one class.

    Attributes:
        argmaxable: a centre with radius > radius_tol was found and its strict argmax verified.
        radius: optimal radius of the largest ball inside the class's region (within the box), 0 when infeasible.
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


def _solve_lp(
    head: PreparedHead, c: int, active: np.ndarray, box: float, tolerance: float
) -> tuple[int, str, np.ndarray | None, float]:
    """Solve the Chebyshev LP of reduced class c against the competitors ``active`` (k,)."""
    d = head.d
    A = head.W64[active] - head.W64[c]  # (k, d)
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


def _chebyshev(
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
    """Cutting-plane Chebyshev LP of reduced class c (see the module docstring)."""
    U = head.U
    others = np.delete(np.arange(U), c)
    if len(others) == 0:  # a single distinct row: it wins everywhere
        x = np.clip(hints[0], -box, box)
        return LPResult(True, box, "optimal (no competitor)", x, math.inf, 0, 0)
    w_c = head.W64[c]
    sq_norms = head.sq_norms
    # ||w_j - w_c|| for every j: the coefficient of r in j's constraint
    dist = np.sqrt(np.maximum(sq_norms - 2 * head.W64 @ w_c + sq_norms[c], 0.0))
    bias = np.zeros(U) if head.b64 is None else head.b64
    chosen: set[int] = set()
    for x in hints:
        score = head.W64 @ x + bias
        score[c] = -np.inf
        k = min(initial, len(others))
        chosen.update(np.argpartition(-score, k - 1)[:k].tolist())
    tolerance = 1e-9
    rounds = 0
    while True:
        rounds += 1
        active = np.fromiter(sorted(chosen), dtype=np.int64)
        code, status, x, r = _solve_lp(head, c, active, box, tolerance)
        if x is None:  # a relaxation without a solution: the full LP has none either
            return LPResult(False, 0.0, status, None, math.nan, rounds, len(active))
        if r <= radius_tol:  # the relaxation's optimum bounds the full LP's optimum from above
            return LPResult(False, r, f"{status}, radius <= {radius_tol:g}", None, math.nan, rounds, len(active))
        # violation of every constraint at (x, r)
        violation = (head.W64 @ x + bias) - (w_c @ x + bias[c]) + dist * r
        violation[c] = -np.inf
        worst = np.flatnonzero(violation > 10 * tolerance * (1.0 + np.abs(bias - bias[c])))
        worst = worst[~np.isin(worst, active)]
        if len(worst) == 0 or rounds >= max_rounds:
            break
        if len(worst) > add:
            worst = worst[np.argpartition(-violation[worst], add - 1)[:add]]
        chosen.update(worst.tolist())
    wins, margin, _ = _certified_margins(head, x[None, :], np.array([c]), chunk_size)
    converged = len(worst) == 0
    if wins[0]:
        note = status if converged else f"{status} (stopped after {rounds} rounds; radius is an upper bound)"
        return LPResult(True, r, note, x, float(margin[0]), rounds, len(active))
    if not converged:  # fall back to the full LP
        code, status, x, r = _solve_lp(head, c, others, box, tolerance)
        rounds += 1
        if x is not None and r > radius_tol:
            wins, margin, _ = _certified_margins(head, x[None, :], np.array([c]), chunk_size)
            if wins[0]:
                return LPResult(True, r, f"{status} (full LP)", x, float(margin[0]), rounds, len(others))
        if x is None or r <= radius_tol:
            return LPResult(False, r, f"{status} (full LP), radius <= {radius_tol:g}", None, math.nan, rounds,
                            len(others))
    return LPResult(
        False, r, f"{status}, radius {r:.3g} but the centre failed the argmax check", None, float(margin[0]),
        rounds, len(active),
    )


@_single_threaded_blas
def chebyshev_lp(
    W: Any,
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
    """The exact test alone for class ``c`` of W (V, d), b (V,) or None.

    A class with an identical twin of bias >= its own cannot win strictly and is reported unargmaxable with the
    status "duplicate of row j"; use :func:`find_unargmaxable` for the full verdicts.
    """
    W64, b64 = check_head(W, b)
    box = check_box(box)
    radius_tol = check_float("radius_tol", radius_tol, low=0.0)
    c = check_int("c", c, minimum=0, maximum=W64.shape[0] - 1)
    representative, twin = find_twins(W64, b64)
    if twin[c] >= 0:
        return LPResult(False, 0.0, f"duplicate of row {twin[c]}", None, math.nan, 0, 0)
    head = reduce_head(W64, b64, representative)
    rc = int(np.searchsorted(head.rows, c))
    hints = [head.W64[rc]] if hints is None else [np.asarray(h, dtype=np.float64) for h in hints]
    return _chebyshev(
        head, rc, hints, box=box, radius_tol=radius_tol, initial=check_positive_int("initial", initial),
        add=check_positive_int("add", add), max_rounds=check_positive_int("max_rounds", max_rounds),
        chunk_size=chunk_size,
    )


# ----------------------------------------------------------------------------------------------------------------
# verdicts for a whole head, cached on disk
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Verdicts:
    """Per-token verdicts for the tested tokens of one head (all arrays aligned with ``tokens``).

    Attributes:
        tokens: (n,) int64, the tested token ids.
        status: (n,) str, "argmaxable", "unargmaxable" or "duplicate".
        method: (n,) str, "braid" (cleared by the fast test), "lp" (decided by the exact test) or "twin".
        witness: (n, d) float64, a point whose strict argmax is the token (NaN rows where there is none).
        margin: (n,) float64, own logit minus best other logit at the witness (NaN without witness).
        lp_radius: (n,) float64, Chebyshev radius from the LP (NaN where the LP did not run).
        lp_status: (n,) str, HiGHS status ("" where the LP did not run).
        twin: (n,) int64, for duplicates the identical row that is always at least as large (-1 otherwise).
        braid_steps: (n,) int64, reflections made by the fast test (-1 for duplicates).
        lp_rounds: (n,) int64, LP solves of the cutting-plane loop (0 where the LP did not run).
        meta: V, d, box, patience, start, radius_tol, has_bias, seconds (total, braid, lp), code_version, key.
    """

    tokens: np.ndarray
    status: np.ndarray
    method: np.ndarray
    witness: np.ndarray
    margin: np.ndarray
    lp_radius: np.ndarray
    lp_status: np.ndarray
    twin: np.ndarray
    braid_steps: np.ndarray
    lp_rounds: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tokens)

    def count(self, status: str) -> int:
        """How many tested tokens have the verdict ``status``."""
        check_choice("status", status, STATUSES)
        return int((self.status == status).sum())

    def counts(self) -> dict[str, int]:
        """Tokens per verdict, and how many went to the LP."""
        out = {s: self.count(s) for s in STATUSES}
        out["tested"] = len(self)
        out["decided_by_lp"] = int((self.method == "lp").sum())
        return out

    def tokens_with(self, status: str) -> np.ndarray:
        """Token ids (sorted) with the verdict ``status``."""
        check_choice("status", status, STATUSES)
        return np.sort(self.tokens[self.status == status])

    def witness_of(self, token: int) -> np.ndarray | None:
        """The witness point (d,) of ``token``, or None."""
        where = np.flatnonzero(self.tokens == token)
        if len(where) == 0:
            raise ValueError(f"token={token} was not tested")
        x = self.witness[where[0]]
        return None if np.isnan(x).any() else x.copy()

    def smallest_lp_radius(self) -> float:
        """The smallest Chebyshev radius among argmaxable tokens decided by the LP (NaN if none): the closest call."""
        mask = (self.method == "lp") & (self.status == "argmaxable")
        return float(self.lp_radius[mask].min()) if mask.any() else math.nan

    def to_frame(self):
        """A pandas DataFrame with one row per tested token (without the witnesses)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "token": self.tokens, "status": self.status, "method": self.method, "margin": self.margin,
                "lp_radius": self.lp_radius, "lp_status": self.lp_status, "twin": self.twin,
                "braid_steps": self.braid_steps, "lp_rounds": self.lp_rounds,
            }
        )

    _ARRAYS = (
        "tokens", "status", "method", "witness", "margin", "lp_radius", "lp_status", "twin", "braid_steps", "lp_rounds"
    )

    def save(self, path: Path) -> None:
        """Write to ``path`` (.npz) atomically (:func:`utils.cache.write`)."""
        def save(target: Path) -> None:
            with open(target, "wb") as handle:
                np.savez(handle, meta=np.array(json.dumps(self.meta)), **{k: getattr(self, k) for k in self._ARRAYS})

        store.write(Path(path), save)

    @classmethod
    def load(cls, path: Path) -> Verdicts:
        """Read a file written by :meth:`save` (raises on a corrupt or partial file)."""
        with np.load(Path(path), allow_pickle=False) as data:
            arrays = {k: data[k] for k in cls._ARRAYS}
            meta = json.loads(str(data["meta"]))
        n = len(arrays["tokens"])
        for name, array in arrays.items():
            if array.shape[0] != n:
                raise ValueError(f"corrupt verdicts file {path}: {name} has {array.shape[0]} rows, expected {n}")
        return cls(meta=meta, **arrays)


def _check_tokens(tokens: Any, V: int) -> np.ndarray:
    if tokens is None:
        return np.arange(V, dtype=np.int64)
    array = np.asarray(tokens)
    if array.ndim != 1 or len(array) == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"tokens must be a non-empty 1-d array of token ids; got {array!r:.80}")
    if array.min() < 0 or array.max() >= V:
        raise ValueError(f"tokens must lie in [0, {V - 1}]; got values from {array.min()} to {array.max()}")
    if len(np.unique(array)) != len(array):
        raise ValueError("tokens must not repeat a token id")
    return array.astype(np.int64)


def verdict_key(W: np.ndarray, b: np.ndarray | None, tokens: np.ndarray, **settings: Any) -> str:
    """Cache key: fingerprints of W, b and the tested tokens, the settings and the code version."""
    return store.key_of({"W": store.fingerprint(W), "b": None if b is None else store.fingerprint(b),
                         "tokens": store.fingerprint(tokens), **settings, "code_version": CODE_VERSION})


@_single_threaded_blas
def find_unargmaxable(
    W: Any,
    b: Any = None,
    *,
    tokens: Any = None,
    box: float = DEFAULT_BOX,
    patience: int = DEFAULT_PATIENCE,
    start: str = "centred",
    radius_tol: float = DEFAULT_RADIUS_TOL,
    block_size: int = 2048,
    chunk_size: int = 8192,
    use_lp: bool = True,
    cache: bool = True,
    progress: bool = True,
) -> Verdicts:
    """Verdicts for the classes ``tokens`` (default: all) of the softmax layer W (V, d), b (V,) or None.

    Duplicates first (identical rows), then braid reflect on every other tested class (``patience`` reflections
    from ``start``: "row" is the paper's x = w_c, "centred" is x = w_c - mean row, which clears more classes at the
    first step), then the Chebyshev LP on every class braid did not clear (skipped with ``use_lp=False``: those
    classes are then reported "unargmaxable" with lp_status "not run", an upper bound on the count).  Results are
    cached under ``cache_dir()/argmax`` keyed by W, b, tokens and every setting.
    """
    W_in = _as_numpy("W", W)
    W64, b64 = check_head(W_in, b)
    V, d = W64.shape
    box = check_box(box)
    patience = check_int("patience", patience, minimum=0)
    check_choice("start", start, STARTS)
    radius_tol = check_float("radius_tol", radius_tol, low=0.0)
    block_size = check_positive_int("block_size", block_size)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    tokens = _check_tokens(tokens, V)
    b_in = None if b is None else _as_numpy("b", b)
    settings = dict(box=box, patience=patience, start=start, radius_tol=radius_tol, use_lp=bool(use_lp))
    key = verdict_key(W_in, b_in, tokens, **settings)
    path = store.path_of("argmax", key, ".npz")
    cached = store.read(path, Verdicts.load, lambda verdicts: verdicts.meta.get("key") == key
                        and len(verdicts) == len(tokens) and verdicts.witness.shape[1] == d) if cache else None
    if cached is not None:
        return cached

    t0 = time.perf_counter()
    representative, twin_of = find_twins(W64, b64)
    head = reduce_head(W64, b64, representative)
    n = len(tokens)
    status = np.full(n, "unargmaxable", dtype="<U12")
    method = np.full(n, "lp", dtype="<U5")
    witness = np.full((n, d), np.nan)
    margin = np.full(n, np.nan)
    lp_radius = np.full(n, np.nan)
    lp_status = np.full(n, "", dtype="<U120")
    twin = twin_of[tokens].copy()
    braid_steps = np.full(n, -1, dtype=np.int64)
    lp_rounds = np.zeros(n, dtype=np.int64)

    is_duplicate = twin >= 0
    status[is_duplicate] = "duplicate"
    method[is_duplicate] = "twin"
    tested = np.flatnonzero(~is_duplicate)
    reduced = np.searchsorted(head.rows, tokens[tested])
    braid = braid_batch(
        head, reduced, patience=patience, box=box, start=start, block_size=block_size, chunk_size=chunk_size,
        progress=progress,
    )
    t_braid = time.perf_counter() - t0
    braid_steps[tested] = braid.steps
    ok = tested[braid.cleared]
    status[ok] = "argmaxable"
    method[ok] = "braid"
    witness[ok] = braid.witness[braid.cleared]
    margin[ok] = braid.margin[braid.cleared]

    left = np.flatnonzero(~braid.cleared)
    for i in tqdm(left, desc="Chebyshev LP", unit="token", disable=not progress or len(left) == 0):
        where = tested[i]
        if not use_lp:
            lp_status[where] = "not run"
            continue
        result = _chebyshev(
            head, int(reduced[i]), [braid.witness[i], braid.start[i], head.W64[reduced[i]]],
            box=box, radius_tol=radius_tol, initial=256, add=256, max_rounds=200, chunk_size=chunk_size,
        )
        lp_radius[where] = result.radius
        lp_rounds[where] = result.rounds
        lp_status[where] = result.status[:120]
        if result.argmaxable:
            status[where] = "argmaxable"
            witness[where] = result.x
            margin[where] = result.margin
    t_total = time.perf_counter() - t0
    meta = dict(
        V=V, d=d, has_bias=b64 is not None, n_distinct_rows=head.U, key=key, code_version=CODE_VERSION,
        seconds=t_total, seconds_braid=t_braid, seconds_lp=t_total - t_braid, **settings,
    )
    verdicts = Verdicts(
        tokens, status, method, witness, margin, lp_radius, lp_status, twin, braid_steps, lp_rounds, meta
    )
    if cache:
        verdicts.save(path)
    return verdicts


# ----------------------------------------------------------------------------------------------------------------
# brute force in low dimension: convex hulls
# ----------------------------------------------------------------------------------------------------------------


def hull_argmaxable(W: Any, b: Any = None, *, box: float | None = None) -> np.ndarray:
    """Brute-force verdicts (V,) bool for small d (2 to ~6).

    Without a bias, class c is the strict argmax somewhere iff its row is a vertex of the convex hull of the rows
    (its region is a cone, so any box meets it).  With a bias, iff the lifted point ``(w_c, b_c)`` is a vertex of
    an *upper* facet of the hull of the lifted points (outward normal ``(n_w, n_b)`` with ``n_b > 0``), since the
    logits are ``(x, 1)·(w_j, b_j)``; that facet's point ``x = n_w / n_b`` is a vertex of c's region.  With a bias
    and a ``box``, a class counts as argmaxable only when one of its region's vertices lies strictly inside the
    box (then the region meets the box in a full-dimensional set); see :func:`hull_box_undecided` for the classes
    this cannot decide.  Rows are assumed distinct and in general position, as for random instances.
    """
    argmaxable, _ = _hull_verdicts(W, b, box)
    return argmaxable


def hull_box_undecided(W: Any, b: Any, box: float) -> np.ndarray:
    """Classes (V,) bool that are argmaxable in the whole space but whose region has no vertex inside the box:
    the brute force cannot tell whether the box cuts their region off (the region may lie entirely outside)."""
    _, undecided = _hull_verdicts(W, b, check_box(box))
    return undecided


def _hull_verdicts(W: Any, b: Any, box: float | None) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import ConvexHull

    W64, b64 = check_head(W, b)
    V, d = W64.shape
    points = W64 if b64 is None else np.hstack([W64, b64[:, None]])
    if V < points.shape[1] + 1:
        raise ValueError(
            f"hull_argmaxable needs V >= {points.shape[1] + 1} rows for a full-dimensional hull; got V={V}"
        )
    out = np.zeros(V, dtype=bool)
    undecided = np.zeros(V, dtype=bool)
    if d == 1 and b64 is None:
        out[[int(np.argmin(W64[:, 0])), int(np.argmax(W64[:, 0]))]] = True
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
    corners = hull.equations[upper, :d] / hull.equations[upper, d : d + 1]  # region vertices x = n_w / n_b
    in_box = np.all(np.abs(corners) < box, axis=1)
    out[np.unique(hull.simplices[upper][in_box])] = True
    return out, anywhere & ~out


# ----------------------------------------------------------------------------------------------------------------
# prevention
# ----------------------------------------------------------------------------------------------------------------


def prevention_bias(W: Any) -> np.ndarray:
    """The bias ``b_j = -½||w_j||²`` (V,): then ``w_j·x + b_j = ½||x||² - ½||x - w_j||²``, so the argmax is the
    row nearest to x and every distinct row wins at x = w_j (paper, appendix D)."""
    W64, _ = check_head(W)
    return -0.5 * np.einsum("ij,ij->i", W64, W64)


def unit_norm_rows(W: Any) -> np.ndarray:
    """W (V, d) with every row scaled to unit length: distinct points on a sphere are all hull vertices, so without
    a bias every distinct row is argmaxable.  Zero rows are an error (they have no direction)."""
    W64, _ = check_head(W)
    norms = np.linalg.norm(W64, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"W has {int((norms == 0).sum())} zero rows; unit_norm_rows needs every row nonzero")
    return W64 / norms


# ----------------------------------------------------------------------------------------------------------------
# random models (paper, section 5: how often does a random low-rank softmax have unargmaxable classes?)
# ----------------------------------------------------------------------------------------------------------------


def random_head(V: int, d: int, init: str, bias: bool, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A random softmax layer: W (V, d) and b (V,) (or None) drawn i.i.d. from U(-1, 1) ("uniform") or N(0, 1)
    ("normal"), as in the paper's random-model experiment."""
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
    W = draw((V, d))
    return W, (draw(V) if bias else None)


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
    columns dim, init, bias, n_classes, n_unargmaxable, share, n_lp, seconds.  Each head is cached."""
    import pandas as pd

    if len(dims) == 0:
        raise ValueError("dims must list at least one dimension")
    for init in inits:
        check_choice("inits", init, INITS)
    rows = []
    configs = [(d, init, bias) for d in dims for init in inits for bias in biases]
    for d, init, bias in tqdm(configs, desc="random heads", disable=not progress):
        W, b = random_head(n_classes, d, init, bias, seed + 1000 * int(d))
        verdicts = find_unargmaxable(W, b, box=box, patience=patience, progress=False)
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
    the first ``round(f * d)`` are deleted.  Returns a pandas DataFrame with columns fraction, n_deleted, d_kept,
    tested, argmaxable, unargmaxable, duplicate, decided_by_lp, smallest_lp_radius, seconds.
    """
    import pandas as pd

    E64, b64 = check_head(E, b)
    d = E64.shape[1]
    order = np.asarray(order)
    if order.shape != (d,) or not np.array_equal(np.sort(order), np.arange(d)):
        raise ValueError(f"order must be a permutation of the {d} dimensions; got shape {order.shape}")
    E32 = np.asarray(E.detach().cpu().numpy() if isinstance(E, torch.Tensor) else E)  # (exact bytes)
    rows = []
    for fraction in tqdm(fractions, desc="pruned heads", disable=not progress):
        fraction = check_float("fractions", fraction, low=0.0, high=1.0, high_inclusive=False)
        n_deleted = int(round(fraction * d))
        keep = np.sort(order[n_deleted:])
        verdicts = find_unargmaxable(
            np.ascontiguousarray(E32[:, keep]), b, tokens=tokens, box=box, patience=patience, progress=False
        )
        counts = verdicts.counts()
        rows.append(
            dict(
                fraction=fraction, n_deleted=n_deleted, d_kept=d - n_deleted, tested=counts["tested"],
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


# ----------------------------------------------------------------------------------------------------------------
# reading the verdicts: tokens as text, the 2-d picture
# ----------------------------------------------------------------------------------------------------------------


def describe_tokens(verdicts: Verdicts, tokenizer: Any, statuses: tuple[str, ...] = ("unargmaxable", "duplicate")):
    """A DataFrame of the tested tokens with the given verdicts, decoded: token, text (repr), status, twin,
    twin_text, lp_radius, lp_status."""
    import pandas as pd

    for status in statuses:
        check_choice("statuses", status, STATUSES)
    mask = np.isin(verdicts.status, statuses)

    def text(token: int) -> str:
        return repr(tokenizer.decode([int(token)])) if token >= 0 else ""

    return pd.DataFrame(
        {
            "token": verdicts.tokens[mask],
            "text": [text(t) for t in verdicts.tokens[mask]],
            "status": verdicts.status[mask],
            "twin": verdicts.twin[mask],
            "twin_text": [text(t) for t in verdicts.twin[mask]],
            "lp_radius": verdicts.lp_radius[mask],
            "lp_status": verdicts.lp_status[mask],
        }
    ).sort_values("token", ignore_index=True)


def toy_head() -> np.ndarray:
    """Five classes in 2-d: four around the origin and one (class 4) inside their convex hull."""
    return np.array([[2.0, 0.3], [0.2, 2.0], [-2.0, 0.4], [0.1, -2.0], [0.4, 0.5]])


def plot_argmax_regions(
    ax: Any,
    W: Any,
    b: Any = None,
    *,
    extent: float = 4.0,
    resolution: int = 400,
    title: str = "",
) -> Verdicts:
    """Colour the plane by the argmax class of ``W @ x + b`` (W (V, 2)), draw the rows, and mark the classes the
    exact test finds unargmaxable (inside the drawn square, used as the box).  Returns the verdicts."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.colors import ListedColormap

    W64, b64 = check_head(W, b)
    if W64.shape[1] != 2:
        raise ValueError(f"plot_argmax_regions draws 2-d heads; got d={W64.shape[1]}")
    V = W64.shape[0]
    verdicts = find_unargmaxable(W64, b64, box=extent, cache=False, progress=False)
    grid = np.linspace(-extent, extent, check_positive_int("resolution", resolution))
    gx, gy = np.meshgrid(grid, grid)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    logits = points @ W64.T + (0.0 if b64 is None else b64)
    winner = logits.argmax(1).reshape(gx.shape)
    colours = sns.color_palette("pastel", V)
    ax.imshow(winner, origin="lower", extent=(-extent, extent, -extent, extent), cmap=ListedColormap(colours),
              vmin=-0.5, vmax=V - 0.5, interpolation="nearest")
    strong = sns.color_palette("dark", V)
    for c in range(V):
        ok = verdicts.status[c] == "argmaxable"
        ax.scatter(*W64[c], s=60, color=strong[c], marker="o" if ok else "X", edgecolor="black", zorder=3)
        label = f"{c}" + ("" if ok else " (unargmaxable)")
        ax.annotate(label, W64[c], textcoords="offset points", xytext=(6, 6), fontsize=9, zorder=4)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    ax.grid(False)
    plt.setp(ax.spines.values(), visible=True)
    return verdicts


@_single_threaded_blas
def closest_calls(
    W: Any,
    b: Any,
    verdicts: Verdicts,
    k: int,
    *,
    box: float = DEFAULT_BOX,
    radius_tol: float = DEFAULT_RADIUS_TOL,
    progress: bool = True,
):
    """Chebyshev radii of the ``k`` argmaxable tokens whose witness margin is smallest relative to the witness's
    length (the fast test's closest calls), LP-decided tokens first.

    Returns a pandas DataFrame sorted by radius, with columns token, method, relative_margin, lp_radius, lp_rounds
    and cone_half_angle_deg.  The radius is how thick the token's region is inside the box ``[-box, box]^d``.
    Without a bias the regions are cones, so the radius grows with the box; the scale-free measure is then the
    half-angle ``asin(r / ||x||)`` of the circular cone around the centre x that the region contains (NaN with a
    bias)."""
    import pandas as pd

    k = check_positive_int("k", k)
    head, representative, _ = prepare_head(W, b)
    ok = np.flatnonzero(verdicts.status == "argmaxable")
    relative = verdicts.margin[ok] / np.maximum(np.linalg.norm(verdicts.witness[ok], axis=1), 1e-300)
    by_lp = verdicts.method[ok] == "lp"
    picked = ok[np.lexsort((relative, ~by_lp))[:k]]
    rows = []
    for i in tqdm(picked, desc="closest calls (LP)", disable=not progress):
        token = int(verdicts.tokens[i])
        c = int(np.searchsorted(head.rows, representative[token]))
        hints = [verdicts.witness[i], head.W64[c]]
        if verdicts.method[i] == "lp":
            radius, rounds, centre = float(verdicts.lp_radius[i]), int(verdicts.lp_rounds[i]), verdicts.witness[i]
        else:
            result = _chebyshev(head, c, hints, box=box, radius_tol=radius_tol, initial=256, add=256, max_rounds=200,
                                chunk_size=8192)
            radius, rounds, centre = result.radius, result.rounds, result.x
        angle = math.nan
        if head.b64 is None and centre is not None:
            angle = math.degrees(math.asin(min(1.0, radius / float(np.linalg.norm(centre)))))
        rows.append(dict(token=token, method=str(verdicts.method[i]),
                         relative_margin=float(verdicts.margin[i] / np.linalg.norm(verdicts.witness[i])),
                         lp_radius=radius, lp_rounds=rounds, cone_half_angle_deg=angle))
    return pd.DataFrame(rows).sort_values("lp_radius", ignore_index=True)


def hull_agreement(
    n_instances: int, *, seed: int = 0, max_d: int = 6, max_V: int = 40, box_with_bias: float = 1e4
):
    """Compare every verdict with the convex-hull brute force on random instances (half with a bias).

    Returns a dict: instances, verdicts (classes compared), agree (classes with the same verdict), braid_false_clear
    (unargmaxable classes the fast test cleared; must be 0), unargmaxable (classes the hull says are inside),
    undecided (classes with a bias whose region has no vertex inside the box, so the hull cannot decide whether the
    box cuts it off; not compared).
    """
    n_instances = check_positive_int("n_instances", n_instances)
    max_d = check_int("max_d", max_d, minimum=2)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    out = dict(instances=0, verdicts=0, agree=0, braid_false_clear=0, unargmaxable=0, undecided=0)
    for i in range(n_instances):
        d = int(rng.integers(2, max_d + 1))
        V = int(rng.integers(d + 2, max(max_V, d + 3) + 1))
        W = rng.normal(size=(V, d))
        b = rng.normal(size=V) if i % 2 else None
        box = box_with_bias if b is not None else DEFAULT_BOX
        verdicts = find_unargmaxable(W, b, box=box, cache=False, progress=False)
        truth, undecided = _hull_verdicts(W, b, box)
        decided = ~undecided
        out["instances"] += 1
        out["verdicts"] += int(decided.sum())
        out["agree"] += int(np.sum(((verdicts.status == "argmaxable") == truth) & decided))
        out["braid_false_clear"] += int(np.sum((verdicts.method == "braid") & ~truth & decided))
        out["unargmaxable"] += int(np.sum(~truth & decided))
        out["undecided"] += int(undecided.sum())
    return out


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
    of any text, so each check's interval is :func:`utils.uncertainty.exact`: there are no texts to resample.

    Checks (:class:`utils.uncertainty.Check`):

    - in theory: the smallest share of unargmaxable classes among the random heads of the sweep's smallest
      dimension is at least ``theory_share``;
    - rarely in practice: the tested tokens of the real head include at most 0 unargmaxable ones ("duplicate"
      rows, which tie with their twin, are counted apart, as in :meth:`Verdicts.counts`);
    - prevention: after every remedy in ``prevention`` except the first (the head before any remedy), at most 0
      classes are unargmaxable (the largest count over the remedies).

    Args:
        random_sweep: the frame of :func:`random_model_sweep` (columns dim, share).
        verdicts: the verdicts of the real head (:func:`find_unargmaxable`).
        prevention: name -> verdicts, the head before any remedy first, then one entry per remedy.
        theory_share: threshold of the "in theory" check, a share in (0, 1).
    """
    from .uncertainty import Check, exact

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
    return [
        Check(f"in theory: smallest share of unargmaxable classes of the random heads in d={low_dim}", low_share,
              exact(low_share), theory_share, "above", ".1%"),
        Check(f"rarely in practice: unargmaxable tokens among the {len(verdicts):,} tested of the real head",
              float(n_unargmaxable), exact(n_unargmaxable), 0.0, "below", ".0f"),
        Check(f"prevention: unargmaxable classes after the worse of {', '.join(remedies)}", float(after),
              exact(after), 0.0, "below", ".0f"),
    ]
