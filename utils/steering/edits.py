"""The edits of an output-embedding row that steer one token's averaged probability (Cho et al., Section 5).

If ``-log alpha_w ≈ A · E_w + B``, the edit ``E_w' = E_w - log(r) · u`` with any direction ``u`` such that
``A · u = 1`` moves the *predicted* ``-log alpha_w`` by ``-log r``. The paper's direction ``u = Ω A^{-1}`` is read
here as ``u_i = 1 / (k A_i)`` on the ``k`` dimensions of largest ``|A_i|`` ("mask", :func:`mask_direction`); the
references are the minimal-norm direction ``A / ||A||²`` ("min_norm") and a plain logit bias of ``+log r``
("logit_bias"). :func:`edited_head` applies an edit to a copy of a head; the argument checks shared by the package
(:func:`check_ratio`) live here too; token ids are checked by
:func:`utils.validation.check_token_ids`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..encoding.fit import dimensions_by_weight
from ..head import OutputHead
from ..validation import check_choice, check_float, check_int, check_token_ids

METHODS = ("mask", "min_norm", "logit_bias")
#: the null edits: the same predicted shift as a reference edit, but no reason to work (:func:`nulls.null_edits`)
#: the first two have the reference's norm; "random_dims_omega" (Ω over k dimensions outside the top k of |A|) does
#: not, so its edit is larger by construction and its error confounds the dimensions with the edit's size
NULL_METHODS = ("random_dims", "random_direction", "random_dims_omega")
METHOD_LABELS = {"mask": "Ω A⁻¹ mask", "min_norm": "minimal-norm along A", "logit_bias": "logit bias log r",
                 "random_dims": "random dimensions, same norm", "random_direction": "random direction, same norm",
                 "random_dims_omega": "Ω over random dimensions, norm not matched"}


def check_ratio(name: str, r: float) -> float:
    """Return ``r`` as a float if it is a finite number > 0 (a target ratio); otherwise raise."""
    return check_float(name, r, low=0.0, low_inclusive=False)


@dataclass(frozen=True)
class Edit:
    """One way of steering: ``E_w' = E_w - log(r) · direction`` (or a logit bias of ``log r`` when direction is None).

    Attributes:
        method: one of :data:`METHODS`.
        k: number of masked dimensions (method "mask"), else None.
        direction: (d,) float64 with ``A · direction = 1``, or None for "logit_bias".
    """

    method: str
    k: int | None
    direction: torch.Tensor | None
    seed: int | None = None  # the null edits' random seed

    @property
    def label(self) -> str:
        if self.method == "mask":
            return f"mask k={self.k}"
        if self.method == "random_dims":
            return f"random dims k={self.k}, same norm, seed {self.seed}"
        if self.method == "random_dims_omega":
            return f"Ω over random dims k={self.k}, seed {self.seed}"
        if self.method == "random_direction":
            return f"random direction, seed {self.seed}"
        return METHOD_LABELS[self.method]

    def unit_shift(self, h: torch.Tensor) -> torch.Tensor:
        """Logit shift of the edited token per unit ``log r``: h (N, d) -> (N,) float64.

        ``-(h @ direction)`` for an embedding edit, 1 everywhere for the logit bias.
        """
        if self.direction is None:
            return torch.ones(h.shape[0], dtype=torch.float64)
        return -(h.to(torch.float64) @ self.direction)

    def norm(self) -> float:
        """``||direction||`` (the size of ``ΔE_w`` per unit ``|log r|``); 0 for the logit bias."""
        return 0.0 if self.direction is None else float(self.direction.norm())


def mask_direction(A: np.ndarray, k: int) -> torch.Tensor:
    """The paper's ``Ω A^{-1}`` as we read it: (d,) float64, ``1 / (k A_i)`` on the k dimensions of largest ``|A_i|``.

    Zero elsewhere.

    Raises:
        ValueError: k is outside 1..d, or a chosen ``A_i`` is zero or not finite.
    """
    A = np.asarray(A, dtype=np.float64)
    k = check_int("k", k, minimum=1, maximum=A.shape[0])
    chosen = dimensions_by_weight(A)[:k]
    values = A[chosen]
    if not np.all(np.isfinite(values)) or np.any(values == 0):
        raise ValueError(f"k={k}: the chosen coefficients of A include zero or non-finite values; use a smaller k")
    direction = np.zeros_like(A)
    direction[chosen] = 1.0 / (k * values)
    return torch.from_numpy(direction)


def min_norm_direction(A: np.ndarray) -> torch.Tensor:
    """The smallest edit with ``A · u = 1``: ``u = A / ||A||²``, (d,) float64."""
    A = np.asarray(A, dtype=np.float64)
    norm2 = float(A @ A)
    if not (norm2 > 0 and math.isfinite(norm2)):
        raise ValueError("A must be finite and not all zero")
    return torch.from_numpy(A / norm2)


def make_edit(A: np.ndarray, method: str = "mask", k: int | None = None) -> Edit:
    """An :class:`Edit` of ``method`` ("mask" needs ``k`` in 1..d; the others take no k)."""
    check_choice("method", method, METHODS)
    if method == "mask":
        if k is None:
            raise ValueError("k=None: method='mask' needs the number of dimensions k (1..d)")
        direction = mask_direction(A, k)
        return Edit("mask", int(k), direction)
    if k is not None:
        raise ValueError(f"k={k!r} is only allowed with method='mask'; got method={method!r}")
    return Edit(method, None, min_norm_direction(A) if method == "min_norm" else None)


def edited_head(head: OutputHead, token: int, r: float, edit: Edit) -> OutputHead:
    """A copy of ``head`` with token ``token`` steered by ratio ``r`` through ``edit`` (the original is untouched)."""
    (token,) = check_token_ids("token", token, head.V)
    r = check_ratio("r", r)
    E = head.E.clone()
    b = None if head.b is None else head.b.clone()
    if edit.direction is None:
        b = torch.zeros(head.V, dtype=E.dtype) if b is None else b
        b[token] += math.log(r)
    else:
        if edit.direction.shape != (head.d,):
            raise ValueError(f"the edit's direction has shape {tuple(edit.direction.shape)}; the head has d={head.d}")
        E[token] = (E[token].double() - math.log(r) * edit.direction).to(E.dtype)
    return OutputHead(E, b)
