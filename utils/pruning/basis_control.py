"""Basis control: deleting coordinates against deleting directions of other bases.

Logits do not change under an orthogonal change of basis Q of the embedding space, (h Q)(E Q)^T = h E^T, so a claim
about deleting *coordinates* is a claim about the model only if its coordinates are privileged. Deleting the
directions ``Q[:, deleted]`` of a basis projects h (and E) onto the kept columns: the pruned logits are
``(h Q_K)(E Q_K)^T + b = z - (h Q_D)(E Q_D)^T + b`` with z the full logits. With Q = I this is the coordinate
deletion of :func:`utils.pruning.sweep.deletion_sweep` (tested).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..basis import principal_basis, random_orthogonal
from ..compare import js_divergence_rows
from ..uncertainty import (
    NOT_REPRODUCED,
    REPRODUCED,
    Check,
    combine,
    percentile_interval,
    resample_counts,
    resampling_groups,
)
from ..validation import check_float, check_int, check_positive_int
from .criteria import as_float_tensor, n_deleted
from .sweep import check_fractions, check_order, deletion_steps, reference_chunks, subsample_positions
from .wording import percent

#: the model's own coordinates, ordered by |A|
MODEL_BASIS = "model coordinates"



#: random orthogonal bases (one per seed), ordered by |Q^T A|, the |A| criterion in that basis
RANDOM_BASIS = "random basis"



#: the principal directions of E, smallest variance deleted first (a spectral filter)
PRINCIPAL_BASIS = "principal directions of E"



@dataclass(frozen=True)
class BasisCondition:
    """One way of deleting directions: a basis (columns = directions) and the order its directions are deleted in.

    Attributes:
        kind: :data:`MODEL_BASIS`, :data:`RANDOM_BASIS` or :data:`PRINCIPAL_BASIS`.
        seed: the random basis's seed (0 for the others).
        basis: (d, d) float64 orthogonal matrix, or None for the model's own coordinates (Q = I, not materialised).
        order: (d,) int64 permutation of the basis's columns, first = deleted first.
    """

    kind: str
    seed: int
    basis: np.ndarray | None
    order: torch.Tensor

    @property
    def name(self) -> str:
        return self.kind if self.kind != RANDOM_BASIS else f"{self.kind} {self.seed}"



def basis_conditions(E, A, *, random_seeds=(0, 1, 2), principal: bool = True) -> list[BasisCondition]:
    """The conditions of the basis control, all from the one fit of ``A`` in the model's coordinates.

    - the model's coordinates, deleted by increasing ``|A_i|`` (the chapter's |A| criterion);
    - per seed, a random orthogonal basis Q (:func:`utils.basis.random_orthogonal`), its directions deleted by
      increasing ``|(Q^T A)_j|``: the OLS fit of the encoding is equivariant (fitting ``-log alpha`` on ``E Q`` gives
      ``Q^T A``), so this is the |A| criterion applied in that basis, without refitting;
    - the principal directions of the centred E (:func:`utils.basis.principal_basis`), smallest variance first.

    Args:
        E: (V, d) output embedding; A: (d,) encoding coefficients in the model's coordinates.
    """

    E = as_float_tensor("E", E, 2)
    d = E.shape[1]
    A = np.asarray(A, dtype=np.float64)
    if A.shape != (d,):
        raise ValueError(f"A must have shape ({d},) to match E (V, {d}); got {A.shape}")
    seeds = [check_int("random_seeds", s, minimum=0) for s in random_seeds]
    if not seeds:
        raise ValueError("random_seeds must hold at least one seed for the random bases")

    def by_magnitude(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.argsort(np.abs(values), kind="stable"), dtype=torch.int64)

    conditions = [BasisCondition(MODEL_BASIS, 0, None, by_magnitude(A))]
    for seed in seeds:
        Q = random_orthogonal(d, seed)
        conditions.append(BasisCondition(RANDOM_BASIS, seed, Q, by_magnitude(Q.T @ A)))
    if principal:
        conditions.append(BasisCondition(PRINCIPAL_BASIS, 0, principal_basis(E.numpy()),
                                         torch.arange(d - 1, -1, -1, dtype=torch.int64)))
    return conditions



@dataclass(frozen=True)
class BasisDeletion:
    """Per-group sums of the full head and of each pruned head of the basis control (:func:`basis_deletion`).

    Groups are the units a bootstrap resamples (documents); C conditions, F fractions, G groups.

    Attributes:
        conditions: the C :class:`BasisCondition` s.
        fractions: the F deletion fractions; n_deleted: the F deleted counts.
        full: (G, V) float64 summed full-head probabilities of each group's positions.
        pruned: (C, F, G, V) float32 the same for each pruned head.
        agree: (C, F, G) float64 positions whose full-head top token is still on top.
        kl: (C, F, G) float64 summed per-position KL(p_full || p_pruned) (nats).
        count: (G,) float64 positions of each group.
    """

    conditions: list
    fractions: list
    n_deleted: list
    full: np.ndarray
    pruned: np.ndarray
    agree: np.ndarray
    kl: np.ndarray
    count: np.ndarray

    def table(self):
        """One row per (condition, fraction) over all positions: kind, seed, fraction, n_deleted, js_alpha,
        mean_kl, top1_agreement (a DataFrame)."""

        n = self.count.sum()
        alpha_full = torch.from_numpy(self.full.sum(axis=0) / n)
        alpha_pruned = torch.from_numpy(self.pruned.sum(axis=2, dtype=np.float64)).reshape(-1, self.full.shape[1])
        js = js_divergence_rows(alpha_full, alpha_pruned).reshape(len(self.conditions), len(self.fractions))
        rows = []
        for c, condition in enumerate(self.conditions):
            for f, fraction in enumerate(self.fractions):
                rows.append({"kind": condition.kind, "seed": condition.seed, "fraction": fraction,
                             "n_deleted": self.n_deleted[f], "js_alpha": float(js[c, f]),
                             "mean_kl": float(self.kl[c, f].sum() / n),
                             "top1_agreement": float(self.agree[c, f].sum() / n)})
        return pd.DataFrame(rows)



@torch.no_grad()
def basis_deletion(
    hidden: torch.Tensor,
    groups: torch.Tensor,
    head,
    conditions: list,
    fractions,
    *,
    chunk_size: int = 1024,
    progress: bool = True,
) -> BasisDeletion:
    """Delete the first ``floor(fraction * d)`` directions of each condition's basis, streamed, summed per group.

    For each chunk the full logits ``z = h @ E.T + b`` are computed once; a condition's pruned logits at growing
    fractions are ``z - (h Q_D)(E Q_D)^T`` with D its deleted directions, obtained incrementally by
    :func:`~utils.pruning.sweep.deletion_steps`, the same step as :func:`deletion_sweep`'s (``Q = I`` for the
    model's coordinates), with the per-position KL in closed form, ``KL = (h Q_D) . ((p @ E) Q_D) + log Z_q -
    log Z_p``.

    Args:
        hidden: (N, d) hidden states.
        groups: (N,) int64 group of each position in 0..G-1 (the documents a bootstrap resamples).
        head: the full :class:`~utils.head.OutputHead` (E (V, d), b (V,) or None).
        conditions: :class:`BasisCondition` s (from :func:`basis_conditions`).
        fractions: deletion fractions in [0, 1), each deleting at least one direction.
    """

    chunk_size = check_positive_int("chunk_size", chunk_size)
    E = head.E.to(torch.float32)
    V, d = E.shape
    n = hidden.shape[0]
    if hidden.ndim != 2 or hidden.shape[1] != d or n == 0:
        raise ValueError(f"hidden must have shape (N >= 1, {d}); got {tuple(hidden.shape)}")
    groups = torch.as_tensor(groups, dtype=torch.int64)
    if tuple(groups.shape) != (n,) or int(groups.min()) < 0:
        raise ValueError(f"groups must be (N,)=({n},) non-negative ids; got shape {tuple(groups.shape)}")
    if not conditions:
        raise ValueError("conditions must hold at least one basis condition")
    fractions = check_fractions(fractions)
    counts = [n_deleted(d, f) for f in fractions]
    if min(counts) == 0:
        raise ValueError(f"fractions must each delete at least one of d={d} directions; got {fractions}")
    largest = max(counts)
    # per condition: the directions in deletion order up to the largest deletion, (d, largest), and E in them
    directions = []
    for condition in conditions:
        order = check_order(condition.name, condition.order, d)[:largest]
        if condition.basis is None:
            directions.append((order, None, E[:, order].contiguous()))
        else:
            basis = np.asarray(condition.basis, dtype=np.float64)
            if basis.shape != (d, d):
                raise ValueError(f"basis of {condition.name!r} must be ({d}, {d}); got {basis.shape}")
            Q = torch.from_numpy(basis[:, order.numpy()]).to(torch.float32)
            directions.append((order, Q, (E @ Q).contiguous()))
    n_groups = int(groups.max()) + 1
    C, F = len(conditions), len(fractions)
    full = torch.zeros((n_groups, V), dtype=torch.float64)
    pruned = torch.zeros((C, F, n_groups, V), dtype=torch.float32)
    agree = torch.zeros((C, F, n_groups), dtype=torch.float64)
    kl = torch.zeros((C, F, n_groups), dtype=torch.float64)
    count = torch.zeros(n_groups, dtype=torch.float64)
    bar = tqdm(total=math.ceil(n / chunk_size) * C, desc="basis control", unit="basis·chunk", disable=not progress)
    for _, h, g, membership, z in reference_chunks(hidden, groups, E, head.b, n_groups, chunk_size):
        rows = h.shape[0]
        max_ref, top_ref = z.max(dim=-1)
        p = torch.softmax(z, dim=-1)
        log_z_ref = max_ref.double() - torch.log(p.amax(dim=-1).double())
        expected_E = p @ E  # (rows, d)
        full += (membership @ p).to(torch.float64)
        del p
        count.index_add_(0, g, torch.ones(rows, dtype=torch.float64))
        q = torch.empty_like(z)
        for c, (order, Q, E_rotated) in enumerate(directions):
            if Q is None:
                h_deleted, expected_deleted = h[:, order], expected_E[:, order]
            else:
                h_deleted, expected_deleted = h @ Q, expected_E @ Q  # (rows, largest) coordinates in the basis
            steps = deletion_steps(z, h_deleted, E_rotated, expected_deleted, counts, log_z_ref, top_ref, q)
            for f, (_, q, _, kl_per_position, same) in enumerate(steps):
                pruned[c, f] += membership @ q
                kl[c, f].index_add_(0, g, kl_per_position)
                agree[c, f].index_add_(0, g, same.to(torch.float64))
            bar.update(1)
        del z, q
    bar.close()
    return BasisDeletion(list(conditions), fractions, counts, full.numpy(), pruned.numpy(), agree.numpy(), kl.numpy(),
                         count.numpy())



def basis_control_positions(acts, n_positions: int | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The sweep's seeded sample of positions of ``acts`` (:func:`subsample_positions` with the same arguments, so
    a smaller ``n_positions`` takes the first ones of the same draw) and the document group of each: (hidden (n, d),
    groups (n,) int64 in 0..G-1)."""

    n_windows, window_length = acts.token_ids.shape
    index = subsample_positions(n_windows, window_length, n_positions, seed)
    groups = torch.from_numpy(resampling_groups(acts.document, "document"))[index // window_length]
    return acts.hidden_flat[index], torch.unique(groups, return_inverse=True)[1]



def basis_checks(
    deletion: BasisDeletion,
    fraction: float,
    *,
    top1_margin: float = 0.02,
    js_ratio: float = 0.5,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
):
    """Is the model's basis privileged for deletion? Two checks at ``fraction``, with intervals that resample both
    the documents (groups of ``deletion``) and the random bases (seeds, with replacement).

    - top-1 agreement of the model's coordinates (deleted by |A|) minus the mean over random bases (deleted by
      |QᵀA|), above ``top1_margin``;
    - JS(alpha) of the model's coordinates over the mean JS of the random bases, below ``js_ratio``;
    - and, not part of the verdict, the model's coordinates against the principal directions (smallest variance
      first): top-1 agreement difference, against 0 (when the deletion holds that condition).

    Returns:
        ([top-1 check, JS check], spectral check or None) as :class:`utils.uncertainty.Check` s.
    """

    fraction = check_float("fraction", fraction, low=0.0, high=1.0, high_inclusive=False)
    if fraction not in deletion.fractions:
        raise ValueError(f"fraction={fraction} is not one of the deletion's fractions {deletion.fractions}")
    check_float("top1_margin", top1_margin, low=-1.0, high=1.0)
    check_float("js_ratio", js_ratio, low=0.0, low_inclusive=False)
    f = deletion.fractions.index(fraction)
    kinds = [c.kind for c in deletion.conditions]
    if MODEL_BASIS not in kinds or RANDOM_BASIS not in kinds:
        raise ValueError("the deletion must hold the model's coordinates and at least one random basis")
    model = kinds.index(MODEL_BASIS)
    randoms = [i for i, kind in enumerate(kinds) if kind == RANDOM_BASIS]
    principal = kinds.index(PRINCIPAL_BASIS) if PRINCIPAL_BASIS in kinds else None
    pruned = deletion.pruned[:, f].astype(np.float64)  # (C, G, V)

    def statistics(weights: np.ndarray, seed_weights: np.ndarray) -> tuple[float, float, float]:
        """(top-1 difference, JS ratio, top-1 difference to the principal directions) for document weights (G,)
        and random-basis weights (R,) summing to 1."""
        positions = weights @ deletion.count
        top1 = (deletion.agree[:, f] @ weights) / positions  # (C,)
        alpha_full = torch.from_numpy(weights @ deletion.full)
        alpha_pruned = torch.from_numpy(np.einsum("g,cgv->cv", weights, pruned[[model, *randoms]]))
        js = js_divergence_rows(alpha_full, alpha_pruned).numpy()  # (1 + R,): the model's, then the random bases'
        random_top1 = float(seed_weights @ top1[randoms])
        random_js = float(seed_weights @ js[1:])
        spectral = float(top1[model] - top1[principal]) if principal is not None else float("nan")
        return float(top1[model] - random_top1), float(js[0] / random_js), spectral

    n_groups, n_random = len(deletion.count), len(randoms)
    estimate = statistics(np.ones(n_groups), np.full(n_random, 1.0 / n_random))
    document_counts = resample_counts(n_groups, n_boot, seed)
    seed_counts = resample_counts(n_random, n_boot, seed + 1) / n_random
    samples = np.array([statistics(w, s) for w, s in zip(document_counts, seed_counts)])
    intervals = [percentile_interval(samples[:, i], estimate=estimate[i], level=level, n_groups=n_groups)
                 if np.all(np.isfinite(samples[:, i])) else None for i in range(3)]
    share = percent(fraction)
    checks = [
        Check(f"top-1 agreement at {share} deleted: model coordinates by |A| minus random bases by |QᵀA| "
              f"(mean of {n_random})", estimate[0], intervals[0], top1_margin, "above"),
        Check(f"JS(α) at {share} deleted: model coordinates by |A| over random bases by |QᵀA| (mean of {n_random})",
              estimate[1], intervals[1], js_ratio, "below", fmt=".2f"),
    ]
    spectral = None if intervals[2] is None else Check(
        f"top-1 agreement at {share} deleted: model coordinates by |A| minus principal directions of E "
        "(smallest variance first)", estimate[2], intervals[2], 0.0, "above")
    return checks, spectral



#: the basis verdict's words for each combined verdict of :func:`basis_checks`
BASIS_VERDICTS: dict[str, str] = {
    "reproduced": "privileged",
    "not reproduced": "not privileged",
    "inconclusive": "inconclusive",
    "partly reproduced": "privileged by one measure only",
}



def basis_verdict(checks) -> str:
    """The verdict on the model's basis from the checks of :func:`basis_checks` (combined with
    :func:`utils.uncertainty.combine`): "privileged", "not privileged", "inconclusive" or
    "privileged by one measure only"."""

    return BASIS_VERDICTS[combine([check.verdict for check in checks])]



def spectral_comparison_text(check) -> str:
    """A clause on the model's coordinates (by |A|) against the spectral filter, from the spectral check of
    :func:`basis_checks` (top-1 difference against 0)."""

    if check is None:
        return "the principal directions were not measured"
    if check.verdict == REPRODUCED:
        return "deleting coordinates by |A| keeps more top tokens than deleting the smallest-variance principal " \
               "directions of E"
    if check.verdict == NOT_REPRODUCED:
        return "deleting the smallest-variance principal directions of E keeps more top tokens than deleting " \
               "coordinates by |A|"
    return "deleting coordinates by |A| and deleting the smallest-variance principal directions of E cannot be " \
           "told apart on top-1 agreement (the interval of the difference contains 0)"

