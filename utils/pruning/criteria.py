"""Which dimensions to delete: the criteria, each a score per dimension, smallest deleted first.

Criteria (:data:`CRITERIA`):

* ``"abs_A"``: ``|A_i|``, the magnitude of the log-linear encoding's coefficient (our reading of the paper's
  "output-unrelated dimensions"; its abstract does not spell out the rule).
* ``"abs_A_spread"``: ``|A_i| * std_w(E_wi)``, the share of the predicted ``-log alpha`` that varies through
  dimension i (a coefficient on a dimension along which tokens barely differ moves nothing).
* ``"h_spread"``: ``mean_n |h_ni| * std_w(E_wi)``, an output-aware saliency from the hidden states: the typical
  size of the logit change, across the vocabulary, that dimension i makes.
* ``"fisher"``: ``mean_n h_ni² Var_{w~p_n}(E_wi)``, twice the second-order estimate of the per-position
  KL(p_n || p_n without dimension i): deleting i shifts the logits by ``-h_ni E_wi`` and softmax is blind to the
  part of that shift common to all tokens, so what matters is its variance under the model's own distribution.
* ``"random"``: a random order (seeded), the baseline.

``"h_spread"`` and ``"fisher"`` read hidden states (take them from the training split, not from the text the
pruned head is measured on).  :func:`keep_columns` turns an order and a deletion fraction into the kept columns.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..validation import check_choice, check_float, check_int, check_positive_int

CRITERIA: tuple[str, ...] = ("abs_A", "abs_A_spread", "h_spread", "fisher", "random")



#: criteria that need hidden states
HIDDEN_CRITERIA: tuple[str, ...] = ("h_spread", "fisher")



#: criteria that need the encoding coefficients A
ENCODING_CRITERIA: tuple[str, ...] = ("abs_A", "abs_A_spread")



CRITERION_LABELS: dict[str, str] = {
    "abs_A": "smallest |A| (paper, as we read it)",
    "abs_A_spread": "smallest |A|·spread(E)",
    "h_spread": "smallest mean|h|·spread(E)",
    "fisher": "smallest Fisher saliency",
    "random": "random (mean, min-max band)",
}



def as_float_tensor(name: str, value, ndim: int) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    if tensor.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-d; got shape {tuple(tensor.shape)}")
    return tensor.to(torch.float32)



def fisher_saliency(
    E: torch.Tensor,  # the papers' notation
    hidden: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    chunk_size: int = 512,
) -> torch.Tensor:
    """``mean_n h_ni² Var_{w~p_n}(E_wi)`` per dimension, streamed over chunks of positions.

    Args:
        E: (V, d) output embedding.
        hidden: (N, d) hidden states; p_n = softmax(h_n @ E.T + b).
        b: (V,) output bias or None.

    Returns:
        (d,) float64 saliencies (0.5 * saliency_i is the second-order estimate of the mean KL from deleting i alone).
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    E = E.to(torch.float32)
    E_squared = E * E
    total = torch.zeros(E.shape[1], dtype=torch.float64)
    for start in range(0, hidden.shape[0], chunk_size):
        h = hidden[start : start + chunk_size].to(torch.float32)
        logits = h @ E.T
        if b is not None:
            logits = logits + b
        p = torch.softmax(logits, dim=-1)
        mean_E = p @ E  # (n, d) E_p[E_i]
        variance = (p @ E_squared - mean_E * mean_E).clamp_min(0.0)  # (n, d) Var_p(E_i)
        total += (h * h * variance).sum(dim=0, dtype=torch.float64)
    return total / hidden.shape[0]



def dimension_scores(
    criterion: str,
    E,
    A=None,
    hidden=None,
    *,
    b: torch.Tensor | None = None,
    chunk_size: int = 512,
) -> torch.Tensor:
    """Importance of each of the d dimensions under ``criterion`` (not ``"random"``): (d,) float64, larger = keep.

    Args:
        E: (V, d) output embedding (tensor or array).
        A: (d,) encoding coefficients (needed by ``"abs_A"`` and ``"abs_A_spread"``).
        hidden: (N, d) hidden states (needed by ``"h_spread"`` and ``"fisher"``).
        b: (V,) output bias for ``"fisher"``, or None.
    """
    check_choice("criterion", criterion, [c for c in CRITERIA if c != "random"])
    E = as_float_tensor("E", E, 2)
    d = E.shape[1]
    if criterion in ENCODING_CRITERIA:
        if A is None:
            raise ValueError(f"criterion={criterion!r} needs the encoding coefficients A (d,); got A=None")
        A = as_float_tensor("A", A, 1).to(torch.float64)
        if A.shape[0] != d:
            raise ValueError(f"A must have shape ({d},) to match E (V, {d}); got {tuple(A.shape)}")
    if criterion in HIDDEN_CRITERIA:
        if hidden is None:
            raise ValueError(f"criterion={criterion!r} needs hidden states (N, d); got hidden=None")
        hidden = as_float_tensor("hidden", hidden, 2)
        if hidden.shape[1] != d or hidden.shape[0] == 0:
            raise ValueError(f"hidden must have shape (N >= 1, {d}); got {tuple(hidden.shape)}")
    spread = E.to(torch.float64).std(dim=0)  # (d,) std over the vocabulary
    if criterion == "abs_A":
        return A.abs()
    if criterion == "abs_A_spread":
        return A.abs() * spread
    if criterion == "h_spread":
        return hidden.abs().mean(dim=0, dtype=torch.float64) * spread
    return fisher_saliency(E, hidden, b, chunk_size=chunk_size)



def rank_dimensions(
    criterion: str,
    E,
    A=None,
    hidden=None,
    seed: int = 0,
    *,
    b: torch.Tensor | None = None,
    chunk_size: int = 512,
) -> torch.Tensor:
    """The order in which ``criterion`` deletes the d dimensions: (d,) int64, first = deleted first.

    Dimensions are sorted by increasing score (:func:`dimension_scores`), ties broken by index; ``"random"`` is a
    permutation drawn from ``seed`` (the other criteria ignore the seed).

    Args:
        criterion: one of :data:`CRITERIA`.
        E: (V, d) output embedding.
        A: (d,) encoding coefficients ``A_D`` (for ``"abs_A"``, ``"abs_A_spread"``; may be None otherwise).
        hidden: (N, d) hidden states (for ``"h_spread"``, ``"fisher"``; may be None otherwise).
        seed: seed of the ``"random"`` order.
        b: (V,) output bias, used by ``"fisher"``.

    Raises:
        ValueError: unknown criterion, or a needed input is missing or has the wrong shape.
    """
    check_choice("criterion", criterion, CRITERIA)
    seed = check_int("seed", seed, minimum=0)
    if criterion == "random":
        d = as_float_tensor("E", E, 2).shape[1]
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(d, generator=generator)
    scores = dimension_scores(criterion, E, A, hidden, b=b, chunk_size=chunk_size)
    return torch.as_tensor(np.argsort(scores.numpy(), kind="stable"), dtype=torch.int64)



def criterion_orders(
    criteria,
    E,
    A=None,
    hidden=None,
    *,
    random_seeds=(0, 1, 2, 3, 4),
    b: torch.Tensor | None = None,
    scores: dict[str, torch.Tensor] | None = None,
) -> dict[tuple[str, int], torch.Tensor]:
    """{(criterion, seed): order} for each criterion; ``"random"`` once per seed, the others with seed 0.

    Args:
        scores: precomputed {criterion: (d,) scores} from :func:`dimension_scores` (saves recomputing the Fisher
            saliency); criteria missing from it are scored here.
    """
    scores = {} if scores is None else scores
    orders = {}
    for criterion in criteria:
        check_choice("criteria", criterion, CRITERIA)
        if criterion == "random":
            if not list(random_seeds):
                raise ValueError("random_seeds must hold at least one seed for the 'random' criterion")
            for seed in random_seeds:
                orders[(criterion, int(seed))] = rank_dimensions("random", E, seed=int(seed))
            continue
        score = scores[criterion] if criterion in scores else dimension_scores(criterion, E, A, hidden, b=b)
        orders[(criterion, 0)] = torch.as_tensor(np.argsort(np.asarray(score), kind="stable"), dtype=torch.int64)
    return orders



def n_deleted(d: int, fraction: float) -> int:
    """How many of d dimensions a deletion ``fraction`` in [0, 1) removes: floor(fraction * d), at most d - 1."""
    d = check_positive_int("d", d)
    fraction = check_float("fraction", fraction, low=0.0, high=1.0, high_inclusive=False)
    return min(d - 1, int(math.floor(fraction * d + 1e-9)))



def keep_columns(order: torch.Tensor, fraction: float) -> torch.Tensor:
    """The dimensions kept after deleting the first ``fraction`` of ``order``: (k,) int64, sorted ascending.

    Args:
        order: (d,) a permutation of 0..d-1 (from :func:`rank_dimensions`), first = deleted first.
        fraction: share of dimensions to delete, in [0, 1); ``floor(fraction * d)`` are deleted.

    Raises:
        ValueError: ``fraction`` outside [0, 1), or ``order`` is not a permutation.
    """
    order = torch.as_tensor(order)
    if order.ndim != 1 or order.numel() == 0:
        raise ValueError(f"order must be a non-empty 1-d permutation; got shape {tuple(order.shape)}")
    d = order.numel()
    if order.dtype.is_floating_point or not torch.equal(torch.sort(order).values, torch.arange(d)):
        raise ValueError(f"order must be a permutation of 0..{d - 1}")
    deleted = n_deleted(d, fraction)
    return torch.sort(order[deleted:].to(torch.int64)).values



def deletion_overlap(orders: dict, criteria, n_cut: int, reference: str = "abs_A") -> dict[str, float]:
    """Share of the first ``n_cut`` dimensions ``reference``'s order deletes that each criterion's order also deletes
    among its first ``n_cut``: {criterion: share in [0, 1]} (orders of seed 0; 0 dimensions: share 0).

    Args:
        orders: {(criterion, seed): (d,) order} from :func:`criterion_orders`, holding ``(reference, 0)`` and
            ``(criterion, 0)`` for every criterion asked.
    """
    n_cut = check_int("n_cut", n_cut, minimum=0)
    if (reference, 0) not in orders:
        raise ValueError(f"reference={reference!r} has no order (seed 0) in orders {sorted(orders)}")
    first = set(orders[(reference, 0)][:n_cut].tolist())
    return {c: len(set(orders[(c, 0)][:n_cut].tolist()) & first) / max(n_cut, 1) for c in criteria}
