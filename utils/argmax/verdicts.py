"""Verdicts for a whole head: both tests, cached on disk, and how to read them.

:func:`find_unargmaxable` runs, for the tested tokens of an output layer ``E`` (V×d; the paper's ``W``) and bias
``b``: duplicates first (identical rows), then braid reflect (:mod:`utils.argmax.braid`) on every other token, then
the Chebyshev LP (:mod:`utils.argmax.lp`) on every token braid did not clear.  The :class:`Verdicts` are cached
through :mod:`utils.cache` under ``<cache>/argmax/<key>.npz``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import cache as store  # find_unargmaxable's argument `cache` is the on/off switch
from ..compute import resolve_device, single_threaded_blas
from ..validation import check_choice, check_float, check_int, check_positive_int, check_token_ids
from .braid import braid_batch
from .lp import chebyshev_on_head
from .prepared import (
    DEFAULT_BOX,
    DEFAULT_PATIENCE,
    DEFAULT_RADIUS_TOL,
    STARTS,
    as_numpy,
    check_box,
    check_head,
    find_twins,
    prepare_head,
    reduce_head,
)

#: bump when a change to this package could change a verdict or its file (part of the cache key)
CODE_VERSION = "2"  # 2: witnesses stored as float32 plus the rows float32 does not hold
STATUSES = ("argmaxable", "unargmaxable", "duplicate")
METHODS = ("braid", "lp", "twin")
#: the widths (characters) of the string arrays in memory; on disk each is as wide as its longest value
TEXT_WIDTHS = {"status": 12, "method": 5, "lp_status": 120}


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
        """Write to ``path`` (.npz) atomically (:func:`utils.cache.write`).

        The witnesses are stored losslessly in half the room: as float32, with the float64 rows of those that float32
        does not hold exactly (the braid's witnesses are float32 points, the LP's are not) stored beside them. Each
        string array is stored as wide as its longest value (a head whose LP never ran stores "" in one character,
        not 120: 24 MB less for a 49,152-token head) and read back at its width in memory (:data:`TEXT_WIDTHS`).
        """
        arrays = {k: getattr(self, k) for k in self._ARRAYS if k != "witness"}
        for name in TEXT_WIDTHS:
            arrays[name] = np.asarray(arrays[name].tolist(), dtype=np.str_).reshape(len(arrays[name]))
        witness32 = self.witness.astype(np.float32)
        same = (witness32.astype(np.float64) == self.witness) | (np.isnan(witness32) & np.isnan(self.witness))
        inexact = np.flatnonzero(~same.all(axis=1))

        def save(target: Path) -> None:
            with open(target, "wb") as handle:
                np.savez(handle, meta=np.array(json.dumps(self.meta)), witness32=witness32, witness_rows=inexact,
                         witness64=self.witness[inexact], **arrays)

        store.write(Path(path), save)

    @classmethod
    def load(cls, path: Path) -> Verdicts:
        """Read a file written by :meth:`save` (raises on a corrupt or partial file)."""
        with np.load(Path(path), allow_pickle=False) as data:
            arrays = {k: data[k] for k in cls._ARRAYS if k != "witness"}
            for name, width in TEXT_WIDTHS.items():  # at their width in memory, so values written later fit
                if arrays[name].dtype.kind != "U" or arrays[name].dtype.itemsize > 4 * width:
                    raise ValueError(f"corrupt verdicts file {path}: {name} is {arrays[name].dtype}, expected "
                                     f"text of at most {width} characters")
                arrays[name] = arrays[name].astype(f"<U{width}")
            witness = data["witness32"].astype(np.float64)
            witness[data["witness_rows"]] = data["witness64"]
            arrays["witness"] = witness
            meta = json.loads(str(data["meta"]))
        n = len(arrays["tokens"])
        for name, array in arrays.items():
            if array.shape[0] != n:
                raise ValueError(f"corrupt verdicts file {path}: {name} has {array.shape[0]} rows, expected {n}")
        return cls(meta=meta, **arrays)


def verdict_key(E: np.ndarray, b: np.ndarray | None, tokens: np.ndarray, **settings: Any) -> str:
    """Cache key: fingerprints of E, b and the tested tokens, the settings and the code version.

    The fingerprint of E is stored under the name "W" (the paper's), as before the package used E: renaming it
    would change every key and orphan the verdicts already cached.
    """
    return store.key_of({"W": store.fingerprint(E), "b": None if b is None else store.fingerprint(b),
                         "tokens": store.fingerprint(tokens), **settings, "code_version": CODE_VERSION})


def _read_cached(path: Path, key: str, n_tokens: int, d: int) -> Verdicts | None:
    """The verdicts cached at ``path`` if they are those of ``key`` (``n_tokens`` tokens, witnesses (n_tokens, d)),
    else None."""
    return store.read(path, Verdicts.load, lambda verdicts: verdicts.meta.get("key") == key
                      and len(verdicts) == n_tokens and verdicts.witness.shape[1] == d)


def _blank_verdicts(tokens: np.ndarray, twin: np.ndarray, d: int) -> Verdicts:
    """Verdicts before any test, for ``tokens`` (n,): "duplicate"/"twin" where ``twin`` (n,) names a twin (>= 0),
    else "unargmaxable"/"lp"; witnesses (n, d), margins and radii NaN; no meta yet."""
    n = len(tokens)
    status = np.full(n, "unargmaxable", dtype=f"<U{TEXT_WIDTHS['status']}")
    method = np.full(n, "lp", dtype=f"<U{TEXT_WIDTHS['method']}")
    is_duplicate = twin >= 0
    status[is_duplicate] = "duplicate"
    method[is_duplicate] = "twin"
    return Verdicts(
        tokens, status, method, witness=np.full((n, d), np.nan), margin=np.full(n, np.nan),
        lp_radius=np.full(n, np.nan), lp_status=np.full(n, "", dtype=f"<U{TEXT_WIDTHS['lp_status']}"), twin=twin,
        braid_steps=np.full(n, -1, dtype=np.int64), lp_rounds=np.zeros(n, dtype=np.int64),
    )


def _record_braid(verdicts: Verdicts, tested: np.ndarray, braid) -> None:
    """Write the fast test's result for the rows ``tested`` (m,) of ``verdicts``: its steps, and "argmaxable" with
    the witness (m, d) and margin where it cleared the token."""
    verdicts.braid_steps[tested] = braid.steps
    ok = tested[braid.cleared]
    verdicts.status[ok] = "argmaxable"
    verdicts.method[ok] = "braid"
    verdicts.witness[ok] = braid.witness[braid.cleared]
    verdicts.margin[ok] = braid.margin[braid.cleared]


def _run_lp(verdicts: Verdicts, head, tested: np.ndarray, reduced: np.ndarray, braid, *, box: float,
            radius_tol: float, chunk_size: int, use_lp: bool, progress: bool) -> None:
    """The Chebyshev LP on every tested token braid did not clear (rows ``tested`` (m,) of ``verdicts``, rows
    ``reduced`` (m,) of the reduced head), written into ``verdicts``; lp_status "not run" with ``use_lp=False``."""
    left = np.flatnonzero(~braid.cleared)
    for i in tqdm(left, desc="Chebyshev LP", unit="token", disable=not progress or len(left) == 0):
        where = tested[i]
        if not use_lp:
            verdicts.lp_status[where] = "not run"
            continue
        result = chebyshev_on_head(
            head, int(reduced[i]), [braid.witness[i], braid.start[i], head.E64[reduced[i]]],
            box=box, radius_tol=radius_tol, initial=256, add=256, max_rounds=200, chunk_size=chunk_size,
        )
        verdicts.lp_radius[where] = result.radius
        verdicts.lp_rounds[where] = result.rounds
        verdicts.lp_status[where] = result.status[: TEXT_WIDTHS["lp_status"]]
        if result.argmaxable:
            verdicts.status[where] = "argmaxable"
            verdicts.witness[where] = result.x
            verdicts.margin[where] = result.margin


def _compute_verdicts(E64: np.ndarray, b64: np.ndarray | None, tokens: np.ndarray, key: str, settings: dict,
                      torch_device, block_size: int, chunk_size: int, progress: bool) -> Verdicts:
    """The verdicts of ``tokens`` (n,) for the checked head E64 (V, d), b64 (V,) or None: duplicates, then braid
    reflect, then the LP (``settings``: box, patience, start, radius_tol, use_lp), with their meta and timings."""
    t0 = time.perf_counter()
    representative, twin_of = find_twins(E64, b64)
    head = reduce_head(E64, b64, representative, torch_device)
    verdicts = _blank_verdicts(tokens, twin_of[tokens].copy(), E64.shape[1])
    tested = np.flatnonzero(verdicts.twin < 0)  # every token that is not a duplicate
    reduced = np.searchsorted(head.rows, tokens[tested])
    braid = braid_batch(
        head, reduced, patience=settings["patience"], box=settings["box"], start=settings["start"],
        block_size=block_size, chunk_size=chunk_size, progress=progress,
    )
    t_braid = time.perf_counter() - t0
    _record_braid(verdicts, tested, braid)
    _run_lp(verdicts, head, tested, reduced, braid, box=settings["box"], radius_tol=settings["radius_tol"],
            chunk_size=chunk_size, use_lp=settings["use_lp"], progress=progress)
    t_total = time.perf_counter() - t0
    V, d = E64.shape
    verdicts.meta = dict(
        V=V, d=d, has_bias=b64 is not None, n_distinct_rows=head.U, key=key, code_version=CODE_VERSION,
        seconds=t_total, seconds_braid=t_braid, seconds_lp=t_total - t_braid, **settings,
    )
    return verdicts


@single_threaded_blas
def find_unargmaxable(
    E: Any,
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
    device: str = "cpu",
) -> Verdicts:
    """Verdicts for the tokens ``tokens`` (default: all) of the output layer E (V, d), b (V,) or None.

    Duplicates first (identical rows), then braid reflect on every other tested token (``patience`` reflections
    from ``start``: "row" is x = e_c; "centred" is x = e_c - mean row, which clears more
    tokens at the first step), then the Chebyshev LP on every token braid did not clear (skipped with
    ``use_lp=False``: those tokens are then reported "unargmaxable" with lp_status "not run", an upper bound on the
    count).  Results are cached under ``cache_dir()/argmax`` keyed by E, b, tokens and every setting.

    ``device`` ("cpu", "cuda" or "auto") is where the float32 products of the fast test and of every witness check
    run; the float64 re-checks and the LP run on the CPU.  It is not part of the cache key: each verdict is certified
    whatever the device (margins may differ in the last float32 bits).
    """
    E_in = as_numpy("E", E)
    E64, b64 = check_head(E_in, b)
    V, d = E64.shape
    box = check_box(box)
    patience = check_int("patience", patience, minimum=0)
    check_choice("start", start, STARTS)
    radius_tol = check_float("radius_tol", radius_tol, low=0.0)
    block_size = check_positive_int("block_size", block_size)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    torch_device = resolve_device(device)
    tokens = np.arange(V, dtype=np.int64) if tokens is None else check_token_ids("tokens", tokens, V, distinct=True)
    b_in = None if b is None else as_numpy("b", b)
    settings = dict(box=box, patience=patience, start=start, radius_tol=radius_tol, use_lp=bool(use_lp))
    key = verdict_key(E_in, b_in, tokens, **settings)
    path = store.path_of("argmax", key, ".npz")
    cached = _read_cached(path, key, len(tokens), d) if cache else None
    if cached is not None:
        return cached
    verdicts = _compute_verdicts(E64, b64, tokens, key, settings, torch_device, block_size, chunk_size, progress)
    if cache:
        verdicts.save(path)
    return verdicts


# ----------------------------------------------------------------------------------------------------------------
# reading the verdicts
# ----------------------------------------------------------------------------------------------------------------


def verdict_table(verdicts: Verdicts, tokenizer: Any, statuses: tuple[str, ...] = ("unargmaxable", "duplicate")):
    """A DataFrame of the tested tokens with the given verdicts, decoded: token, text (repr), status, twin,
    twin_text, lp_radius, lp_status."""

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


@single_threaded_blas
def closest_calls(
    E: Any,
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

    k = check_positive_int("k", k)
    head, representative, _ = prepare_head(E, b)
    ok = np.flatnonzero(verdicts.status == "argmaxable")
    relative = verdicts.margin[ok] / np.maximum(np.linalg.norm(verdicts.witness[ok], axis=1), 1e-300)
    by_lp = verdicts.method[ok] == "lp"
    picked = ok[np.lexsort((relative, ~by_lp))[:k]]
    rows = []
    for i in tqdm(picked, desc="closest calls (LP)", disable=not progress):
        token = int(verdicts.tokens[i])
        c = int(np.searchsorted(head.rows, representative[token]))
        hints = [verdicts.witness[i], head.E64[c]]
        if verdicts.method[i] == "lp":
            radius, rounds, centre = float(verdicts.lp_radius[i]), int(verdicts.lp_rounds[i]), verdicts.witness[i]
        else:
            result = chebyshev_on_head(head, c, hints, box=box, radius_tol=radius_tol, initial=256, add=256,
                                       max_rounds=200, chunk_size=8192)
            radius, rounds, centre = result.radius, result.rounds, result.x
        angle = math.nan
        if head.b64 is None and centre is not None:
            angle = math.degrees(math.asin(min(1.0, radius / float(np.linalg.norm(centre)))))
        rows.append(dict(token=token, method=str(verdicts.method[i]),
                         relative_margin=float(verdicts.margin[i] / np.linalg.norm(verdicts.witness[i])),
                         lp_radius=radius, lp_rounds=rounds, cone_half_angle_deg=angle))
    return pd.DataFrame(rows).sort_values("lp_radius", ignore_index=True)
