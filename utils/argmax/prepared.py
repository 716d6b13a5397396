"""Input checks, the head reduced to its distinct rows, and the certified strict-argmax check of a point.

Notation: the output layer is ``E`` (V×d, row ``e_c`` for token c) and the bias ``b`` (V,) or None; the logits at a
point ``x`` (d,) are ``E @ x + b``.  Grivas et al. write ``W`` and ``w_c``.

Rows that are exact copies of another row (with a bias at least as large) can never win strictly: the tests run on
the head reduced to one row per group of identical rows (:class:`PreparedHead`), and :func:`find_twins` names the
copies.  Every "argmaxable" verdict carries a witness whose strict argmax is checked against all rows, with a
certified bound on the rounding error of the check (float32 products, re-checked in float64 when the margin is
close): :func:`certified_margins`.

The float32 products of that check run where the prepared head's float32 copy lives (``device``: the CPU, or a GPU
where :func:`reduce_head` put it); the float64 re-check and the LP stay on the CPU.  On a GPU the products run in true
float32 (TF32 switched off around them), so the rounding bound holds there too.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..validation import check_float

DEFAULT_BOX = 100.0
DEFAULT_PATIENCE = 50
DEFAULT_RADIUS_TOL = 1e-8
#: braid starts: "row" (x = e_c) or "centred" (x = e_c minus the mean row); both this book's choices
STARTS = ("row", "centred")

#: chunk products with at most this many multiply-adds run in numpy on one thread (less overhead, no thread
#: contention), larger ones in torch (multi-threaded)
SMALL_PRODUCT = 1 << 27


# ----------------------------------------------------------------------------------------------------------------
# input checks and the reduced head (one row per group of identical rows)
# ----------------------------------------------------------------------------------------------------------------


def as_numpy(name: str, value: Any) -> np.ndarray:
    """``value`` (a tensor or anything numpy takes) as a real-valued numpy array, unconverted; else ``TypeError``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as error:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be an array; got {type(value).__name__}") from error
    if array.dtype == object or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must be a real-valued array; got dtype {array.dtype}")
    return array


def check_head(E: Any, b: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate an output layer and return ``(E (V, d) float64, b (V,) float64 or None)``.

    Raises ``ValueError`` for ``V < 2``, ``d < 1``, a bias of the wrong shape or non-finite entries.
    """
    E_arr = as_numpy("E", E)
    if E_arr.ndim != 2:
        raise ValueError(f"E must be 2-d (V, d); got shape {E_arr.shape}")
    V, d = E_arr.shape
    if V < 2:
        raise ValueError(f"E must have at least V=2 rows (tokens); got V={V}")
    if d < 1:
        raise ValueError(f"E must have at least d=1 column; got d={d}")
    if not np.all(np.isfinite(E_arr)):
        bad = int(np.argwhere(~np.isfinite(E_arr))[0][0])
        raise ValueError(f"E has non-finite entries (first in row {bad}); all weights must be finite")
    b_arr = None
    if b is not None:
        b_arr = as_numpy("b", b)
        if b_arr.shape != (V,):
            raise ValueError(f"b must have shape (V,)=({V},) to match E {E_arr.shape}; got shape {b_arr.shape}")
        if not np.all(np.isfinite(b_arr)):
            bad = int(np.argwhere(~np.isfinite(b_arr))[0][0])
            raise ValueError(f"b has non-finite entries (first at index {bad}); all biases must be finite")
        b_arr = b_arr.astype(np.float64)
    return E_arr.astype(np.float64), b_arr


def check_box(box: Any) -> float:
    """The half-width of the search box ``[-box, box]^d``: a finite number > 0 (an empty box is an error)."""
    return check_float("box", box, low=0.0, low_inclusive=False)


def find_twins(E: np.ndarray, b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Group identical rows of ``E`` (V, d).

    Returns ``(representative (V,) int64, twin (V,) int64)``.  ``representative[i]`` is the row of i's group with
    the largest bias (lowest index among ties): the only member that can ever be the strict argmax.  ``twin[i]`` is
    ``-1`` when ``i`` can be tested on its own (it is alone, or the unique largest bias of its group); otherwise it
    names a member of i's group with a bias at least as large, so i can never win strictly ("duplicate").
    """
    V = E.shape[0]
    rows = np.ascontiguousarray(E + 0.0)  # + 0.0 turns -0.0 into 0.0, so equal rows have equal bytes
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


@dataclass
class PreparedHead:
    """The head reduced to one row per group of identical rows, in the formats the tests need.

    Attributes:
        E64, b64: reduced rows (U, d) float64 and bias (U,) float64 or None (the originals, exactly).
        E32, b32: the same as float32 torch tensors for the fast products.
        rows: (U,) int64, original row index of each reduced row.
        max_row_norm, max_abs_bias: for the rounding-error bound of a logit.
        sq_norms: (U,) float64, squared row norms.
        mean_row: (d,) float64, the mean reduced row (the "centred" braid start subtracts it).
    """

    E64: np.ndarray
    b64: np.ndarray | None
    E32: torch.Tensor
    b32: torch.Tensor | None
    rows: np.ndarray
    max_row_norm: float
    max_abs_bias: float
    sq_norms: np.ndarray
    mean_row: np.ndarray

    @property
    def U(self) -> int:
        return int(self.E64.shape[0])

    @property
    def d(self) -> int:
        return int(self.E64.shape[1])


def reduce_head(E: np.ndarray, b: np.ndarray | None, representative: np.ndarray,
                device: torch.device | str = "cpu") -> PreparedHead:
    """The head E (V, d) float64, b (V,) or None reduced to the rows ``representative`` names (see find_twins), its
    float32 copy for the fast products on ``device`` (a ``torch.device``; resolve user input with
    :func:`utils.compute.resolve_device`)."""
    rows = np.flatnonzero(representative == np.arange(len(representative)))
    E64 = np.ascontiguousarray(E[rows])
    b64 = None if b is None else np.ascontiguousarray(b[rows])
    return PreparedHead(
        E64=E64,
        b64=b64,
        E32=torch.from_numpy(E64.astype(np.float32)).to(device),
        b32=None if b64 is None else torch.from_numpy(b64.astype(np.float32)).to(device),
        rows=rows,
        max_row_norm=float(np.linalg.norm(E64, axis=1).max()),
        max_abs_bias=0.0 if b64 is None else float(np.abs(b64).max()),
        sq_norms=np.einsum("ij,ij->i", E64, E64),
        mean_row=E64.mean(0),
    )


def prepare_head(E: Any, b: Any = None, device: torch.device | str = "cpu") -> tuple[PreparedHead, np.ndarray,
                                                                                    np.ndarray]:
    """Check a head and prepare it once: ``(reduced head, representative (V,), twin (V,))`` (see find_twins), the
    fast products on ``device``.

    ``np.searchsorted(head.rows, representative[t])`` is token t's class id in the reduced head.
    """
    E64, b64 = check_head(E, b)
    representative, twin = find_twins(E64, b64)
    return reduce_head(E64, b64, representative, device), representative, twin


# ----------------------------------------------------------------------------------------------------------------
# certified strict-argmax checks
# ----------------------------------------------------------------------------------------------------------------


def _error_bound(head: PreparedHead, x_norm: np.ndarray, unit_roundoff: float) -> np.ndarray:
    """A bound on |computed - exact| of one logit ``e_j·x + b_j`` at points of 2-norm ``x_norm`` (n,).

    Rounding the weights and the bias to the working precision, the d products and the d + 1 sums each contribute
    at most ``u`` relative error: |error| <= gamma_{d+4} (||e_j|| ||x|| + |b_j|), gamma_k = k u / (1 - k u),
    whatever order the products are summed in.
    """
    k = head.d + 4
    gamma = k * unit_roundoff / (1.0 - k * unit_roundoff)
    return 1.01 * gamma * (head.max_row_norm * x_norm + head.max_abs_bias)


@contextmanager
def _true_float32(device: torch.device):
    """Float32 products in true float32 on a GPU (no TF32), which the rounding bound assumes; nothing on a CPU."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _competitor_max(
    head: PreparedHead, X: np.ndarray, cls: np.ndarray, chunk_size: int, dtype: type
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Own logit and best competitor of each point: X (n, d), cls (n,) reduced class ids.

    Returns ``(own (n,) float64, best_other (n,) float64, best_index (n,) int64)`` computed in ``dtype``
    (np.float32 or np.float64), the vocabulary taken ``chunk_size`` rows at a time (``best_other = -inf`` when there
    is no other class).  Float32 runs on the head's device (``head.E32.device``), float64 on the CPU.  On the CPU,
    small products run in numpy (less overhead), large ones in torch (multi-threaded max).
    """
    n = X.shape[0]
    if dtype == np.float32:
        E, b = head.E32, head.b32
    else:
        E = torch.from_numpy(head.E64)
        b = None if head.b64 is None else torch.from_numpy(head.b64)
    device = E.device
    small = device.type == "cpu" and n * min(head.U, chunk_size) * head.d <= SMALL_PRODUCT
    if small:  # numpy views of the same weights
        E = E.numpy()
        b = None if b is None else b.numpy()
        X = X.astype(dtype)
        own = np.einsum("ij,ij->i", X, E[cls])
        if b is not None:
            own = own + b[cls]
    else:
        X = torch.from_numpy(np.ascontiguousarray(X, dtype=dtype)).to(device)
        cls_t = torch.from_numpy(cls).to(device)
        own_t = (X * E[cls_t]).sum(1)
        if b is not None:
            own_t = own_t + b[cls_t]
        own = own_t.cpu().numpy()
    best = np.full(n, -np.inf)
    best_index = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    with _true_float32(device):
        for start in range(0, head.U, chunk_size):
            stop = min(start + chunk_size, head.U)
            logits = X @ E[start:stop].T  # (n, chunk)
            if b is not None:
                logits += b[start:stop]
            inside = (cls >= start) & (cls < stop)
            if small:
                logits[rows[inside], cls[inside] - start] = -np.inf  # a class is not its own competitor
                index = logits.argmax(1)
                value = logits[rows, index]
            else:
                logits[torch.from_numpy(rows[inside]).to(device), torch.from_numpy(cls[inside] - start).to(device)] = (
                    -math.inf)
                value, index = logits.max(1)
                value, index = value.cpu().numpy(), index.cpu().numpy()
            better = value > best
            best = np.where(better, value, best)
            best_index = np.where(better, index + start, best_index)
    return own.astype(np.float64), best, best_index


def certified_margins(
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


def argmax_margin(E: Any, b: Any, x: Any, c: int) -> float:
    """``logit_c - max_{j != c} logit_j`` at the point ``x`` (d,), in float64 over all V tokens."""
    E64, b64 = check_head(E, b)
    logits = E64 @ np.asarray(x, dtype=np.float64)
    if b64 is not None:
        logits = logits + b64
    others = np.delete(logits, c)
    return float(logits[c] - others.max())
