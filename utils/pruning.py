"""Deleting output-embedding dimensions (Cho et al., section on sparsity): which to delete, and what it costs.

A head that keeps only the hidden dimensions ``keep`` (k of d) computes ``h[:, keep] @ E[:, keep].T + b``: the
deleted dimensions simply stop contributing to every logit.  A *criterion* orders the d dimensions from least to
most important (first = deleted first); :func:`keep_columns` turns an order and a fraction into the kept columns.

Criteria (:data:`CRITERIA`), each a score per dimension, smallest deleted first:

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
pruned head is measured on).

Choices and checks: :func:`choose_criterion` picks the "best" criterion on training text only;
:func:`headline_checks` gives the scorecard's two checks (JS of alpha and top-1 agreement at the abstract's share
with the ``|A|`` order), each with an interval over held-out documents from per-window sums (:class:`WindowSums`).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .compare import js_divergence, js_divergence_rows
from .validation import check_choice, check_float, check_int, check_positive_int

CRITERIA: tuple[str, ...] = ("abs_A", "abs_A_spread", "h_spread", "fisher", "random")
#: criteria that need hidden states
HIDDEN_CRITERIA: tuple[str, ...] = ("h_spread", "fisher")
#: criteria that need the encoding coefficients A
ENCODING_CRITERIA: tuple[str, ...] = ("abs_A", "abs_A_spread")


def _as_float_tensor(name: str, value, ndim: int) -> torch.Tensor:
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
    E = _as_float_tensor("E", E, 2)
    d = E.shape[1]
    if criterion in ENCODING_CRITERIA:
        if A is None:
            raise ValueError(f"criterion={criterion!r} needs the encoding coefficients A (d,); got A=None")
        A = _as_float_tensor("A", A, 1).to(torch.float64)
        if A.shape[0] != d:
            raise ValueError(f"A must have shape ({d},) to match E (V, {d}); got {tuple(A.shape)}")
    if criterion in HIDDEN_CRITERIA:
        if hidden is None:
            raise ValueError(f"criterion={criterion!r} needs hidden states (N, d); got hidden=None")
        hidden = _as_float_tensor("hidden", hidden, 2)
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
        d = _as_float_tensor("E", E, 2).shape[1]
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(d, generator=generator)
    scores = dimension_scores(criterion, E, A, hidden, b=b, chunk_size=chunk_size)
    return torch.as_tensor(np.argsort(scores.numpy(), kind="stable"), dtype=torch.int64)


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


# ---------------------------------------------------------------------------------------------------------------
# The deletion sweep over cached hidden states
# ---------------------------------------------------------------------------------------------------------------

SWEEP_COLUMNS: tuple[str, ...] = (
    "criterion", "seed", "fraction", "n_deleted", "n_kept", "group", "n_positions", "js_alpha", "mean_kl",
    "top1_agreement", "nll_ref", "nll_new", "perplexity_ref", "perplexity_new", "perplexity_ratio",
)


def _check_order(name: str, order: torch.Tensor, d: int) -> torch.Tensor:
    order = torch.as_tensor(order)
    if order.ndim != 1 or order.numel() != d or order.dtype.is_floating_point:
        raise ValueError(f"order {name!r} must be a permutation of 0..{d - 1}; got shape {tuple(order.shape)}")
    if not torch.equal(torch.sort(order).values, torch.arange(d)):
        raise ValueError(f"order {name!r} must be a permutation of 0..{d - 1}")
    return order.to(torch.int64)


def check_fractions(fractions) -> list[float]:
    """Sorted, distinct deletion fractions, each in [0, 1)."""
    values = [check_float("fractions", f, low=0.0, high=1.0, high_inclusive=False) for f in fractions]
    if not values:
        raise ValueError("fractions must hold at least one value in [0, 1)")
    return sorted(set(values))


class _Totals:
    """Per-group running sums for one pruned head (or the reference)."""

    def __init__(self, n_groups: int, V: int) -> None:
        self.alpha = torch.zeros((n_groups, V), dtype=torch.float64)  # sum over positions of probabilities
        self.kl = torch.zeros(n_groups, dtype=torch.float64)
        self.agree = torch.zeros(n_groups, dtype=torch.float64)
        self.nll = torch.zeros(n_groups, dtype=torch.float64)


@torch.no_grad()
def deletion_sweep(
    hidden: torch.Tensor,
    head,
    orders: dict,
    fractions,
    *,
    targets: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
    group_names=None,
    chunk_size: int = 1024,
    progress: bool = True,
):
    """Compare the full head with every pruned head ``(order, fraction)`` over the same hidden states, streamed.

    For each chunk of positions the reference logits ``z = h @ E.T + b`` are computed once; each order's pruned
    logits are then obtained *incrementally*, ``z_q -= h[:, newly deleted] @ E[:, newly deleted].T``, as the
    fraction grows, so the whole sweep of one order costs one matmul over the largest deleted share of d (not one
    per fraction).  The per-position KL is taken in closed form,
    ``KL(p || q) = sum_w p_w Δ_w + log Z_q - log Z_p`` with ``Δ = z - z_q = h_del @ E_del.T``, whose first term is
    ``h_del · (p @ E)_del`` (one (n, d) product per chunk).  Nothing of size (positions × vocabulary) outlives a
    chunk.  The figures equal :func:`utils.compare.compare_heads` with ``new_columns=keep`` (tested).

    Args:
        hidden: (N, d) final hidden states.
        head: the full :class:`~utils.head.OutputHead` (E (V, d), b (V,) or None).
        orders: {name: (d,) permutation}, first = deleted first; ``name`` is a ``(criterion, seed)`` tuple or a str.
        fractions: deletion fractions in [0, 1); ``floor(fraction * d)`` dimensions are deleted.
        targets: (N,) next-token ids, -1 where none (see :func:`utils.compare.next_token_targets`), or None.
        groups: (N,) int64 group id of each position in 0..G-1 (e.g. context-length bins), or None (one group).
        group_names: G names for the groups (default ``group_0``...); an ``"all"`` row is always added.

    Returns:
        A pandas DataFrame with one row per (order, fraction, group), columns :data:`SWEEP_COLUMNS`:
        ``js_alpha`` (JS divergence of the averaged distributions, nats), ``mean_kl`` (mean per-position
        KL(p_full || p_pruned), nats), ``top1_agreement``, ``nll_*`` (mean next-token loss, nats) and perplexities.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    chunk_size = check_positive_int("chunk_size", chunk_size)
    E = head.E.to(torch.float32)
    V, d = E.shape
    if hidden.ndim != 2 or hidden.shape[1] != d or hidden.shape[0] == 0:
        raise ValueError(f"hidden must have shape (N >= 1, {d}); got {tuple(hidden.shape)}")
    n = hidden.shape[0]
    if not orders:
        raise ValueError("orders must hold at least one order")
    orders = {name: _check_order(str(name), order, d) for name, order in orders.items()}
    fractions = check_fractions(fractions)
    deleted_counts = [n_deleted(d, f) for f in fractions]
    if targets is not None and tuple(targets.shape) != (n,):
        raise ValueError(f"targets must have shape ({n},); got {tuple(targets.shape)}")
    if groups is None:
        groups = torch.zeros(n, dtype=torch.int64)
        group_names = ["all"] if group_names is None else list(group_names)
        if group_names != ["all"]:
            raise ValueError("group_names needs groups")
        single = True
    else:
        groups = torch.as_tensor(groups, dtype=torch.int64)
        if tuple(groups.shape) != (n,) or int(groups.min()) < 0:
            raise ValueError(f"groups must be (N,)=({n},) non-negative ids; got shape {tuple(groups.shape)}")
        n_groups = int(groups.max()) + 1
        group_names = [f"group_{g}" for g in range(n_groups)] if group_names is None else list(group_names)
        if len(group_names) < n_groups or "all" in group_names:
            raise ValueError(f"group_names must name all {n_groups} groups and may not use 'all'; got {group_names}")
        single = False
    n_groups = len(group_names)
    largest = max(deleted_counts)
    # columns of E in each order's deletion order, up to the largest deletion: (V, largest), contiguous
    permuted_E = {name: E[:, order[:largest]].contiguous() for name, order in orders.items()}
    reference = _Totals(n_groups, V)
    nll_ref = torch.zeros(n_groups, dtype=torch.float64)
    count = torch.zeros(n_groups, dtype=torch.float64)
    count_targets = torch.zeros(n_groups, dtype=torch.float64)
    unique_counts = sorted(set(k for k in deleted_counts if k > 0))  # fractions may round to the same count
    pruned = {(name, k): _Totals(n_groups, V) for name in orders for k in unique_counts}

    def group_sum(values: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n_groups, dtype=torch.float64).index_add_(0, g, values.to(torch.float64))

    n_chunks = math.ceil(n / chunk_size)
    bar = tqdm(total=n_chunks * len(orders), desc="deletion sweep", unit="order·chunk", disable=not progress)
    for start in range(0, n, chunk_size):
        h = hidden[start : start + chunk_size].to(torch.float32)
        g = groups[start : start + chunk_size]
        rows = h.shape[0]
        membership = torch.zeros((n_groups, rows), dtype=torch.float32)
        membership[g, torch.arange(rows)] = 1.0
        z = h @ E.T
        if head.b is not None:
            z += head.b.to(torch.float32)
        max_ref, top_ref = z.max(dim=-1)
        p = torch.exp(z - max_ref[:, None])
        sum_ref = p.sum(dim=-1, dtype=torch.float64)
        log_z_ref = max_ref.double() + torch.log(sum_ref)
        p /= sum_ref.float()[:, None]
        expected_E = p @ E  # (rows, d): E_p[E_i] at each position
        reference.alpha += (membership @ p).to(torch.float64)
        del p
        count += group_sum(torch.ones(rows), g)
        if targets is not None:
            t = targets[start : start + chunk_size]
            valid = t >= 0
            target_logits = z.gather(1, t.clamp_min(0)[:, None]).squeeze(1).double()
            nll_ref += group_sum(torch.where(valid, log_z_ref - target_logits, 0.0), g)
            count_targets += group_sum(valid.float(), g)
        q = torch.empty_like(z)  # pruned probabilities, reused
        for name, order in orders.items():
            h_permuted = h[:, order[:largest]]  # (rows, largest)
            # contribution of each deleted dimension to sum_w p_w Δ_w, accumulated in deletion order
            shift_mean = torch.cumsum((h_permuted * expected_E[:, order[:largest]]).double(), dim=1)
            z_new = z.clone()
            done = 0
            for k in unique_counts:
                z_new.addmm_(h_permuted[:, done:k], permuted_E[name][:, done:k].T, alpha=-1.0)
                done = k
                max_new = z_new.amax(dim=-1)
                torch.softmax(z_new, dim=-1, out=q)
                # log Z_q from the largest probability (never underflows): log q_max = max_new - log Z_q
                log_z_new = max_new.double() - torch.log(q.amax(dim=-1).double())
                totals = pruned[(name, k)]
                totals.alpha += (membership @ q).to(torch.float64)
                kl = shift_mean[:, k - 1] + log_z_new - log_z_ref
                totals.kl += group_sum(kl, g)
                # the reference's top token is still on top (the argmax up to exact ties)
                top_new_is_same = z_new.gather(1, top_ref[:, None]).squeeze(1) >= max_new
                totals.agree += group_sum(top_new_is_same.float(), g)
                if targets is not None:
                    new_target_logits = z_new.gather(1, t.clamp_min(0)[:, None]).squeeze(1).double()
                    totals.nll += group_sum(torch.where(valid, log_z_new - new_target_logits, 0.0), g)
            bar.update(1)
        del z, q
    bar.close()

    def summarise(group_index: list[int]) -> tuple[float, torch.Tensor, float | None]:
        positions = float(count[group_index].sum())
        alpha_ref = reference.alpha[group_index].sum(0) / positions
        with_targets = float(count_targets[group_index].sum())
        loss_ref = float(nll_ref[group_index].sum()) / with_targets if targets is not None and with_targets else None
        return positions, alpha_ref, loss_ref

    records = []
    names = list(orders)
    nonzero = unique_counts
    group_sets = [("all", list(range(n_groups)))]
    if not single:
        group_sets += [(group_names[i], [i]) for i in range(n_groups)]
    for group_name, index in group_sets:
        positions, alpha_ref, loss_ref = summarise(index)
        if positions == 0:
            continue
        with_targets = float(count_targets[index].sum())
        # JS divergences of all pruned heads at once: (n_orders * n_fractions,)
        js_all = [[] for _ in names]
        if nonzero:
            alpha_new = torch.stack([pruned[(name, k)].alpha[index].sum(0) for name in names for k in nonzero])
            js_all = js_divergence_rows(alpha_ref, alpha_new / positions).reshape(len(names), len(nonzero)).tolist()
        for i, name in enumerate(names):
            criterion, seed = name if isinstance(name, tuple) else (name, None)
            for fraction, k in zip(fractions, deleted_counts):
                if k == 0:
                    js, kl, agree, loss_new = 0.0, 0.0, 1.0, loss_ref
                else:
                    totals = pruned[(name, k)]
                    js = js_all[i][nonzero.index(k)]
                    kl = float(totals.kl[index].sum()) / positions
                    agree = float(totals.agree[index].sum()) / positions
                    loss_new = float(totals.nll[index].sum()) / with_targets if loss_ref is not None else None
                records.append({
                    "criterion": criterion, "seed": seed, "fraction": fraction, "n_deleted": k, "n_kept": d - k,
                    "group": group_name, "n_positions": int(positions), "js_alpha": js, "mean_kl": kl,
                    "top1_agreement": agree, "nll_ref": loss_ref, "nll_new": loss_new,
                    "perplexity_ref": None if loss_ref is None else math.exp(loss_ref),
                    "perplexity_new": None if loss_new is None else math.exp(loss_new),
                    "perplexity_ratio": None if loss_ref is None else math.exp(loss_new - loss_ref),
                })
    return pd.DataFrame.from_records(records, columns=list(SWEEP_COLUMNS))


# ---------------------------------------------------------------------------------------------------------------
# Positions, orders and tables for a chapter
# ---------------------------------------------------------------------------------------------------------------

CONTEXT_GROUPS: tuple[str, ...] = ("short", "middle", "long")


def subsample_positions(n_windows: int, window_length: int, n_positions: int | None, seed: int = 0) -> torch.Tensor:
    """A seeded uniform sample of flat position indices into (n_windows, window_length): (n,) int64, sorted.

    ``n_positions=None`` takes every position.  The context length of flat index i is ``i % window_length + 1``.
    """
    total = check_positive_int("n_windows", n_windows) * check_positive_int("window_length", window_length)
    if n_positions is None:
        return torch.arange(total)
    n_positions = check_int("n_positions", n_positions, minimum=1, maximum=total)
    seed = check_int("seed", seed, minimum=0)
    generator = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(total, generator=generator)[:n_positions]).values


def context_groups(context_length: torch.Tensor, short_max: int, long_min: int) -> torch.Tensor:
    """Group id of each position by its context length: 0 ``short`` (<= short_max), 1 ``middle``, 2 ``long``
    (>= long_min).  context_length (N,) -> (N,) int64; names in :data:`CONTEXT_GROUPS`."""
    short_max = check_positive_int("short_max", short_max)
    long_min = check_int("long_min", long_min, minimum=short_max + 1)
    groups = torch.ones_like(context_length, dtype=torch.int64)
    groups[context_length <= short_max] = 0
    groups[context_length >= long_min] = 2
    return groups


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


def sweep_activations(
    acts,
    orders: dict,
    fractions,
    *,
    n_positions: int | None = 1024,
    seed: int = 0,
    short_max: int = 32,
    long_min: int = 97,
    chunk_size: int = 1024,
    progress: bool = True,
):
    """:func:`deletion_sweep` over a seeded sample of the cached positions of ``acts`` (an
    :class:`~utils.activations.Activations`), with next-token targets and short / middle / long context groups.

    Returns the sweep DataFrame with a ``corpus`` column (from ``acts.meta``).
    """
    from .compare import next_token_targets

    n_windows, window_length = acts.token_ids.shape
    index = subsample_positions(n_windows, window_length, n_positions, seed)
    hidden = acts.hidden_flat[index]
    targets = next_token_targets(acts.token_ids)[index]
    groups = context_groups(index % window_length + 1, short_max, long_min)
    sweep = deletion_sweep(hidden, acts.head, orders, fractions, targets=targets, groups=groups,
                           group_names=list(CONTEXT_GROUPS), chunk_size=chunk_size, progress=progress)
    sweep.insert(0, "corpus", acts.meta.get("corpus", "?"))
    return sweep


#: default thresholds: metric -> (direction, value); "below" means the metric must stay < value
THRESHOLDS: dict[str, tuple[str, float]] = {
    "js_alpha": ("below", 0.01),
    "top1_agreement": ("above", 0.9),
    "perplexity_ratio": ("below", 1.1),
}


def criterion_curves(sweep, metric: str):
    """Mean of ``metric`` over seeds per (corpus, group, criterion, fraction) (random orders are averaged)."""
    keys = [c for c in ("corpus", "group", "criterion", "fraction") if c in sweep.columns]
    return sweep.groupby(keys, as_index=False, sort=True)[metric].mean()


def largest_safe_fraction(sweep, thresholds: dict[str, tuple[str, float]] | None = None):
    """Per (corpus, group, criterion) and metric, the largest fraction f of the grid such that the metric (averaged
    over random seeds) meets its threshold at every grid fraction <= f (0 when only f = 0 does; NaN if even the
    smallest grid fraction fails, which cannot happen at f = 0).

    Returns:
        A long DataFrame: corpus, group, criterion, metric, threshold (text), largest_fraction.
    """
    import pandas as pd

    thresholds = THRESHOLDS if thresholds is None else thresholds
    rows = []
    for metric, (direction, value) in thresholds.items():
        check_choice("direction", direction, ("below", "above"))
        curves = criterion_curves(sweep, metric)
        keys = [c for c in ("corpus", "group", "criterion") if c in curves.columns]
        for key, curve in curves.groupby(keys, sort=True):
            curve = curve.sort_values("fraction")
            ok = (curve[metric] < value) if direction == "below" else (curve[metric] > value)
            failing = curve.fraction[~ok.to_numpy()]
            passing = curve.fraction[ok.to_numpy()]
            limit = passing[passing < failing.min()].max() if len(failing) else passing.max()
            rows.append({**dict(zip(keys, key)), "metric": metric,
                         "threshold": f"{'<' if direction == 'below' else '>'} {value:g}",
                         "largest_fraction": float(limit) if limit == limit else float("nan")})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# The choice of criterion, made on training text
# ---------------------------------------------------------------------------------------------------------------


def selection_positions(
    n_windows: int, window_length: int, n_positions: int | None, seed: int = 0, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """A seeded uniform sample of flat position indices into (n_windows, window_length) that avoids ``exclude``:
    (n,) int64, sorted, n = min(n_positions, positions left) (``n_positions=None``: every position left).

    Used to pick the training positions a criterion is chosen on apart from those the hidden-state criteria were
    scored on (``exclude``: the saliency sample), so that no criterion is judged on the positions it was fitted to.
    """
    total = check_positive_int("n_windows", n_windows) * check_positive_int("window_length", window_length)
    n_positions = total if n_positions is None else check_positive_int("n_positions", n_positions)
    seed = check_int("seed", seed, minimum=0)
    available = torch.ones(total, dtype=torch.bool)
    if exclude is not None:
        available[torch.as_tensor(exclude, dtype=torch.int64)] = False
    candidates = torch.nonzero(available).squeeze(1)
    if candidates.numel() == 0:
        raise ValueError(f"no position is left once the {total} excluded ones are taken out")
    generator = torch.Generator().manual_seed(seed)
    chosen = candidates[torch.randperm(candidates.numel(), generator=generator)[:n_positions]]
    return torch.sort(chosen).values


def choose_criterion(
    train_acts,
    orders: dict,
    fractions,
    *,
    n_positions: int | None = 1024,
    seed: int = 0,
    exclude: torch.Tensor | None = None,
    chunk_size: int = 1024,
    progress: bool = True,
):
    """The "best" criterion, chosen on training text: the highest mean top-1 agreement over the grid of ``fractions``.

    Runs :func:`deletion_sweep` over a seeded sample of positions of the *training* pass (its cached hidden states;
    :func:`selection_positions`, avoiding ``exclude``) for every non-random order, and picks the criterion whose
    top-1 agreement, averaged over the grid, is highest (ties: the first in ``orders``). Held-out text plays no part,
    so the held-out sweep only scores the choice.

    Args:
        train_acts: the training :class:`~utils.activations.Activations` pass.
        orders: {(criterion, seed): (d,) order} (from :func:`criterion_orders`); ``"random"`` orders are ignored.
        fractions: the grid of deletion fractions.
        n_positions: training positions the choice is made on (fewer when fewer are left after ``exclude``).
        exclude: (m,) flat position indices to leave out (e.g. the positions the hidden-state criteria read).

    Returns:
        (criterion, table): the chosen criterion and a DataFrame indexed by criterion with ``top1_agreement`` (mean
        over the grid), ``js_alpha`` (mean over the grid) and ``n_positions``, sorted by decreasing agreement.

    Raises:
        ValueError: ``orders`` holds no non-random order.
    """
    candidates = {name: order for name, order in orders.items()
                  if (name[0] if isinstance(name, tuple) else name) != "random"}
    if not candidates:
        raise ValueError("orders must hold at least one non-random criterion to choose from")
    n_windows, window_length = train_acts.token_ids.shape
    index = selection_positions(n_windows, window_length, n_positions, seed, exclude)
    sweep = deletion_sweep(train_acts.hidden_flat[index], train_acts.head, candidates, fractions,
                           chunk_size=chunk_size, progress=progress)
    table = sweep.groupby("criterion", sort=False)[["top1_agreement", "js_alpha"]].mean()
    table["n_positions"] = len(index)
    best = str(table.top1_agreement.idxmax())
    return best, table.sort_values("top1_agreement", ascending=False, kind="stable")


def compare_criteria_text(best: str, best_top1: float, abs_A_top1: float) -> str:
    """A clause comparing the criterion chosen on training text with the paper's on held-out top-1 agreement."""
    if best == "abs_A":
        return "the choice made on training text is the paper's own criterion"
    if best_top1 > abs_A_top1:
        return "on held-out text the choice made on training text keeps more top tokens than the paper's criterion"
    if best_top1 < abs_A_top1:
        return ("on held-out text the choice made on training text keeps fewer top tokens than the paper's criterion, "
                "although it kept more on training text")
    return "on held-out text the choice made on training text keeps as many top tokens as the paper's criterion"


# ---------------------------------------------------------------------------------------------------------------
# The scorecard's checks, with intervals over held-out documents
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowSums:
    """Per-window sums of a full head and one pruned head over the sampled positions of a pass.

    Only windows with at least one sampled position are kept (W of them).

    Attributes:
        full_log: (W, V) float64, log of the window's summed full-head softmax over its sampled positions.
        pruned_log: (W, V) float64, the same for the pruned head.
        agree: (W,) float64, sampled positions whose full-head top token is still the pruned head's top token.
        count: (W,) float64, sampled positions of each window.
        document: (W,) int64, the document of each window.
    """

    full_log: np.ndarray
    pruned_log: np.ndarray
    agree: np.ndarray
    count: np.ndarray
    document: np.ndarray

    def js(self) -> float:
        """JS divergence (nats) between the averaged full and pruned distributions of all sampled positions."""
        full = torch.logsumexp(torch.from_numpy(self.full_log), dim=0)
        pruned = torch.logsumexp(torch.from_numpy(self.pruned_log), dim=0)
        return js_divergence((full - full.max()).exp(), (pruned - pruned.max()).exp())

    def agreement(self) -> float:
        """Share of all sampled positions whose top token is unchanged."""
        return float(self.agree.sum() / self.count.sum())


@torch.no_grad()
def window_sums(
    hidden: torch.Tensor,
    window: torch.Tensor,
    head,
    keep: torch.Tensor,
    *,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stream the full head and the pruned head ``keep`` over hidden states and sum per window.

    The pruned logits are the full ones less the deleted dimensions' part, ``z - h_del @ E_del.T`` (as in
    :func:`deletion_sweep`); top-1 agreement is counted as there (the full head's top token still on top).

    Args:
        hidden: (N, d) hidden states of the sampled positions.
        window: (N,) int64 window of each position, non-decreasing.
        head: the full :class:`~utils.head.OutputHead`.
        keep: (k,) kept dimensions.

    Returns:
        (windows (W,) int64 the distinct windows, full_log (W, V) float64, pruned_log (W, V) float64,
        agree (W,) float64, count (W,) float64).
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    window = torch.as_tensor(window, dtype=torch.int64)
    if hidden.ndim != 2 or hidden.shape[1] != head.d or tuple(window.shape) != (hidden.shape[0],):
        raise ValueError(f"hidden must be (N, {head.d}) and window (N,); got {tuple(hidden.shape)}, "
                         f"{tuple(window.shape)}")
    if hidden.shape[0] == 0 or bool((window[1:] < window[:-1]).any()):
        raise ValueError("window must be non-empty and non-decreasing (positions sorted by window)")
    deleted = torch.ones(head.d, dtype=torch.bool)
    deleted[torch.as_tensor(keep, dtype=torch.int64)] = False
    E = head.E.to(torch.float32)
    E_deleted = E[:, deleted].contiguous()
    windows, slot = torch.unique_consecutive(window, return_inverse=True)
    n_windows = len(windows)
    full_log = torch.full((n_windows, head.V), -math.inf, dtype=torch.float64)
    pruned_log = torch.full((n_windows, head.V), -math.inf, dtype=torch.float64)
    agree = torch.zeros(n_windows, dtype=torch.float64)
    count = torch.zeros(n_windows, dtype=torch.float64)
    for start in range(0, hidden.shape[0], chunk_size):
        h = hidden[start : start + chunk_size].to(torch.float32)
        s = slot[start : start + chunk_size]
        z = h @ E.T
        if head.b is not None:
            z += head.b.to(torch.float32)
        top_ref = z.argmax(dim=-1)
        z_new = z.addmm(h[:, deleted], E_deleted.T, alpha=-1.0)
        same = z_new.gather(1, top_ref[:, None]).squeeze(1) >= z_new.amax(dim=-1)
        agree.index_add_(0, s, same.to(torch.float64))
        count.index_add_(0, s, torch.ones_like(s, dtype=torch.float64))
        for logits, target in ((z, full_log), (z_new, pruned_log)):
            log_probs = torch.log_softmax(logits, dim=-1)
            slots, sizes = torch.unique_consecutive(s, return_counts=True)
            for j, piece in zip(slots.tolist(), torch.split(log_probs, sizes.tolist())):
                target[j] = torch.logaddexp(target[j], torch.logsumexp(piece, dim=0).to(torch.float64))
        del z, z_new
    return windows.numpy(), full_log.numpy(), pruned_log.numpy(), agree.numpy(), count.numpy()


def held_out_window_sums(
    acts, keep: torch.Tensor, *, n_positions: int | None = 1024, seed: int = 0, chunk_size: int = 1024
) -> WindowSums:
    """:func:`window_sums` over the seeded sample of positions of ``acts`` that :func:`sweep_activations` reads with
    the same ``n_positions`` and ``seed`` (so its JS and agreement equal the sweep's at the same deletion)."""
    n_windows, window_length = acts.token_ids.shape
    index = subsample_positions(n_windows, window_length, n_positions, seed)
    windows, full_log, pruned_log, agree, count = window_sums(acts.hidden_flat[index], index // window_length,
                                                              acts.head, keep, chunk_size=chunk_size)
    document = np.asarray(acts.document, dtype=np.int64)[windows]
    return WindowSums(full_log, pruned_log, agree, count, document)


def bootstrap_window_sums(
    sums: WindowSums, *, n_boot: int = 200, seed: int = 0, level: float = 0.95, unit: str = "document"
):
    """Intervals over texts of JS(alpha_full, alpha_pruned) and top-1 agreement from per-window sums.

    Each bootstrap sample draws the documents (or windows) with replacement, each with all its windows, re-averages
    both distributions over the drawn positions (:func:`utils.uncertainty.resampled_log_means`) and recomputes the
    JS divergence, and divides the drawn agreement counts by the drawn positions.

    Returns:
        (js_interval, agreement_interval, js_samples (n_boot,), agreement_samples (n_boot,)).
    """
    from .uncertainty import (
        group_log_sums,
        percentile_interval,
        resample_counts,
        resampled_log_means,
        resampling_groups,
    )

    groups = resampling_groups(sums.document, unit)
    V = sums.full_log.shape[1]
    both = group_log_sums(np.concatenate([sums.full_log, sums.pruned_log], axis=1), groups)  # (G, 2V)
    sizes = np.bincount(groups, weights=sums.count)
    agree = np.bincount(groups, weights=sums.agree)
    counts = resample_counts(len(sizes), n_boot, seed)
    js_samples = np.empty(len(counts))
    for i, log_means in enumerate(resampled_log_means(both, sizes, counts)):
        full, pruned = torch.from_numpy(log_means[:V]), torch.from_numpy(log_means[V:])
        js_samples[i] = js_divergence((full - full.max()).exp(), (pruned - pruned.max()).exp())
    agreement_samples = (counts @ agree) / (counts @ sizes)
    return (percentile_interval(js_samples, estimate=sums.js(), level=level, unit=unit),
            percentile_interval(agreement_samples, estimate=sums.agreement(), level=level, unit=unit), js_samples,
            agreement_samples)


def headline_checks(
    train_acts,
    held_out_acts,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    fraction: float = 0.3,
    js_threshold: float = 0.01,
    top1_threshold: float = 0.9,
    n_positions: int | None = 1024,
    n_boot: int = 200,
    boot_seed: int = 0,
    chunk_size: int = 1024,
    A=None,
) -> list:
    """The scorecard's checks of "deleting the dimensions of smallest |A| barely moves the output", with intervals
    over held-out documents.

    The deletion order is our reading of the paper's: ``A`` is fitted on the *whole* training pass
    (:func:`utils.encoding.fit_encoding` with ``test_fraction`` and ``seed``), and the ``fraction`` of dimensions
    with the smallest ``|A_i|`` is deleted.
    Over a seeded sample of ``n_positions`` held-out positions (the positions :func:`sweep_activations` reads with the
    same ``seed``), one full and one pruned head evaluation give per-window sums (:func:`held_out_window_sums`); a
    bootstrap over the held-out documents (each with all its windows) recomputes both numbers
    (:func:`bootstrap_window_sums`). The order stays fixed across resamples: the intervals cover the held-out text,
    not the fit of A.

    Checks (:class:`utils.uncertainty.Check`):

    - averaged distribution: JS(alpha_full, alpha_pruned) in nats at ``fraction`` deleted, below ``js_threshold``;
    - per position: top-1 agreement at ``fraction`` deleted, above ``top1_threshold``.

    Args:
        train_acts, held_out_acts: :class:`utils.activations.Activations` passes (training and held-out).
        fraction: the share of d deleted (the chapter passes the paper's share snapped to its grid).
        n_positions: held-out positions sampled (None: all).
        n_boot, boot_seed: document resamples and their seed.
        A: (d,) the coefficients of that same fit when the caller already has them (saves refitting, a few seconds
            at V = 49k); None fits them here. Passing another fit's A changes the order the checks score.

    Returns:
        [JS check, top-1 check]; deterministic given the seeds.
    """
    from .encoding import fit_encoding
    from .uncertainty import Check

    fraction = check_float("fraction", fraction, low=0.0, high=1.0, high_inclusive=False)
    check_float("js_threshold", js_threshold, low=0.0, low_inclusive=False)
    check_float("top1_threshold", top1_threshold, low=0.0, high=1.0)
    head = train_acts.head
    if A is None:
        fit = fit_encoding(head.E.numpy(), train_acts.alpha.numpy(), test_fraction=test_fraction, seed=seed)
        A = fit.A
    order = rank_dimensions("abs_A", head.E, A)
    keep = keep_columns(order, fraction)
    sums = held_out_window_sums(held_out_acts, keep, n_positions=n_positions, seed=seed, chunk_size=chunk_size)
    js_interval, agreement_interval, _, _ = bootstrap_window_sums(sums, n_boot=n_boot, seed=boot_seed)
    share = format(fraction, ".0%" if abs(100 * fraction - round(100 * fraction)) < 1e-9 else ".1%")
    return [
        Check(f"averaged distribution: JS(α) in nats with the {share} of dimensions of smallest |A| deleted",
              sums.js(), js_interval, js_threshold, "below", fmt=".2g"),
        Check(f"per position: top-1 agreement with the {share} of dimensions of smallest |A| deleted",
              sums.agreement(), agreement_interval, top1_threshold, "above"),
    ]


# ---------------------------------------------------------------------------------------------------------------
# Generation with a real pruned model
# ---------------------------------------------------------------------------------------------------------------

#: bump when generation or its cache format changes
GENERATION_VERSION = "1"


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run a block with ``num_threads`` intra-op threads (None: leave the setting alone), then restore it.

    Token-by-token generation is a long series of small products. On an idle 2-core machine two threads sample 1.65x
    faster than one (32 prompts x 24 tokens of smollm2-135m: 4.4 s against 7.4 s); when the cores are shared with
    other work, every parallel region waits for a descheduled thread and one thread was about 5x faster than two.
    """
    if num_threads is None:
        yield
        return
    num_threads = check_positive_int("num_threads", num_threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def mean_compensated_head(head, keep: torch.Tensor, mean_hidden: torch.Tensor):
    """A pruned head that replaces each deleted coordinate of h by its mean instead of zero: (V, k) with bias
    ``b + E[:, deleted] @ mean_hidden[deleted]`` (V extra numbers when the head had no bias).

    Args:
        head: the full :class:`~utils.head.OutputHead`; keep: (k,) kept dimensions; mean_hidden: (d,) mean of h.
    """
    from .head import OutputHead

    keep = torch.as_tensor(keep, dtype=torch.int64)
    if tuple(mean_hidden.shape) != (head.d,):
        raise ValueError(f"mean_hidden must have shape ({head.d},); got {tuple(mean_hidden.shape)}")
    deleted = torch.ones(head.d, dtype=torch.bool)
    deleted[keep] = False
    bias = head.E[:, deleted] @ mean_hidden[deleted].to(torch.float32)
    return OutputHead(head.E[:, keep].clone(), bias if head.b is None else head.b + bias)


def pruned_output_head(head, keep: torch.Tensor):
    """The full-width head with every column of E outside ``keep`` zeroed: logits equal ``h[:, keep] @ E[:, keep].T
    + b`` exactly, so a model given this head (:func:`utils.head.with_output_head`) is the pruned model.

    Args:
        head: :class:`~utils.head.OutputHead` with E (V, d).
        keep: (k,) kept dimension indices.
    """
    from .head import OutputHead

    keep = torch.as_tensor(keep, dtype=torch.int64)
    if keep.ndim != 1 or keep.numel() == 0 or int(keep.min()) < 0 or int(keep.max()) >= head.d:
        raise ValueError(f"keep must be a non-empty 1-d set of indices in 0..{head.d - 1}")
    mask = torch.zeros(head.d, dtype=torch.bool)
    mask[keep] = True
    E = head.E.clone()
    E[:, ~mask] = 0.0
    return OutputHead(E, None if head.b is None else head.b.clone())


def _generation_key(loaded, keep: torch.Tensor | None, prompt_ids: torch.Tensor, settings: dict) -> str:
    from . import cache

    return cache.key_of({"model": loaded.identity, "revision": loaded.revision, "version": GENERATION_VERSION,
                         "prompts": cache.fingerprint(prompt_ids.to(torch.int64)),
                         "keep": "full" if keep is None else cache.fingerprint(torch.as_tensor(keep,
                                                                                               dtype=torch.int64)),
                         **settings})


@torch.no_grad()
def sample_continuations(
    loaded,
    prompt_ids: torch.Tensor,
    keep: torch.Tensor | None = None,
    *,
    max_new_tokens: int = 32,
    seed: int = 0,
    top_p: float = 1.0,
    temperature: float = 1.0,
    batch_size: int = 16,
    num_threads: int | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """Sample continuations of each prompt from the full model (``keep=None``) or from a real pruned copy.

    The pruned copy is :func:`utils.head.with_output_head` with :func:`pruned_output_head` (head cloned, input
    embedding untouched).  Sampling is seeded per batch (``seed + batch index``), so two heads sampled with the same
    seed share their random numbers: their texts stay identical until the distributions differ enough to change a
    draw.  Exactly ``max_new_tokens`` tokens are drawn (end-of-sequence is not allowed to stop a row early).
    Results are cached on disk under a key of the model, prompts, kept dimensions and sampling settings.
    ``num_threads`` intra-op threads are used while sampling (see :func:`torch_threads`).

    Args:
        prompt_ids: (B, P) int64 prompts of equal length.
        keep: (k,) kept dimensions, or None for the full head.

    Returns:
        (B, max_new_tokens) int64 sampled token ids.
    """
    from tqdm.auto import tqdm

    from . import cache
    from .head import output_head, with_output_head

    max_new_tokens = check_positive_int("max_new_tokens", max_new_tokens)
    seed = check_int("seed", seed, minimum=0)
    check_float("top_p", top_p, low=0.0, high=1.0, low_inclusive=False)
    check_float("temperature", temperature, low=0.0, low_inclusive=False)
    batch_size = check_positive_int("batch_size", batch_size)
    if prompt_ids.ndim != 2 or prompt_ids.shape[1] == 0:
        raise ValueError(f"prompt_ids must be (B, P) with P >= 1; got {tuple(prompt_ids.shape)}")
    if prompt_ids.shape[1] + max_new_tokens > loaded.n_ctx:
        raise ValueError(f"prompt length {prompt_ids.shape[1]} + max_new_tokens={max_new_tokens} exceeds the "
                         f"model's context of {loaded.n_ctx}")
    settings = {"max_new_tokens": max_new_tokens, "seed": seed, "top_p": top_p, "temperature": temperature,
                "batch_size": batch_size, "num_threads": num_threads}
    key = _generation_key(loaded, keep, prompt_ids, settings)
    path = cache.path_of("pruning", f"generation-{key}", ".pt")
    saved = cache.read(path, cache.load_torch, lambda saved: saved["key"] == key and tuple(saved["tokens"].shape)
                       == (prompt_ids.shape[0], max_new_tokens)) if use_cache else None
    if saved is not None:
        return saved["tokens"]
    model = loaded.model if keep is None else with_output_head(loaded.model, pruned_output_head(
        output_head(loaded.model), keep))
    eos = loaded.tokenizer.eos_token_id
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else eos
    pieces = []
    batches = range(0, prompt_ids.shape[0], batch_size)
    with torch_threads(num_threads):
        for index, start in enumerate(tqdm(batches, desc="sampling", unit="batch", disable=not progress)):
            batch = prompt_ids[start : start + batch_size]
            torch.manual_seed(seed + index)
            output = model.generate(
                input_ids=batch, attention_mask=torch.ones_like(batch), do_sample=True, top_k=0, top_p=top_p,
                temperature=temperature, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                pad_token_id=pad, eos_token_id=eos,
            )
            pieces.append(output[:, batch.shape[1] :].to(torch.int64))
    tokens = torch.cat(pieces)
    if model is not loaded.model:
        del model
    cache.write(path, cache.save_torch({"key": key, "tokens": tokens}))
    return tokens


@torch.no_grad()
def continuation_features(
    loaded,
    prompt_ids: torch.Tensor,
    continuations: torch.Tensor,
    *,
    pooling: str = "mean",
    batch_size: int = 16,
    num_threads: int | None = None,
) -> np.ndarray:
    """Features for MAUVE from the model's own final hidden states over prompt + continuation.

    The body of a pruned model is the full model's, so the features of every head's text come from one featuriser.

    Args:
        prompt_ids: (B, P); continuations: (B, T).
        pooling: ``"mean"`` over the continuation's positions, or ``"last"`` (its last token).

    Returns:
        (B, d) float32 array.
    """
    from .head import final_hidden_states

    check_choice("pooling", pooling, ("mean", "last"))
    batch_size = check_positive_int("batch_size", batch_size)
    if prompt_ids.shape[0] != continuations.shape[0]:
        raise ValueError(f"{prompt_ids.shape[0]} prompts but {continuations.shape[0]} continuations")
    ids = torch.cat([prompt_ids, continuations], dim=1)
    start = prompt_ids.shape[1]
    features = []
    with torch_threads(num_threads):
        for first in range(0, ids.shape[0], batch_size):
            hidden = final_hidden_states(loaded.model, ids[first : first + batch_size])[:, start:]
            features.append(hidden.mean(dim=1) if pooling == "mean" else hidden[:, -1])
    return torch.cat(features).numpy()


def text_statistics(continuations: torch.Tensor, *, n_values=(1, 2, 3), repetition_n: int = 4) -> dict[str, float]:
    """Diversity and repetition of sampled token sequences (B, T).

    ``distinct-n``: distinct n-grams over all n-grams of all sequences (higher = more diverse).
    ``rep-n``: mean over sequences of 1 - distinct n-grams / n-grams within the sequence (seq-rep-n of Welleck et
    al.; 0 = no n-gram repeats inside a sequence, near 1 = a loop).
    """
    sequences = [row.tolist() for row in continuations]
    stats = {}
    for n in n_values:
        grams = [tuple(s[i : i + n]) for s in sequences for i in range(len(s) - n + 1)]
        stats[f"distinct-{n}"] = len(set(grams)) / len(grams) if grams else float("nan")
    repetition = []
    for s in sequences:
        grams = [tuple(s[i : i + repetition_n]) for i in range(len(s) - repetition_n + 1)]
        if grams:
            repetition.append(1.0 - len(set(grams)) / len(grams))
    stats[f"rep-{repetition_n}"] = float(np.mean(repetition)) if repetition else float("nan")
    return stats


def mauve_score(p_features: np.ndarray, q_features: np.ndarray, *, seed: int = 0, num_buckets="auto") -> float:
    """MAUVE (Pillutla et al.) between two sets of feature vectors (n, d), quantised by k-means (``mauve-text``)."""
    import mauve

    if len(p_features) < 2 or len(q_features) < 2:
        raise ValueError("MAUVE needs at least 2 samples on each side")
    result = mauve.compute_mauve(p_features=np.asarray(p_features, dtype=np.float32),
                                 q_features=np.asarray(q_features, dtype=np.float32),
                                 num_buckets=num_buckets, seed=seed, verbose=False)
    return float(result.mauve)


def generation_study(
    loaded,
    prompt_ids: torch.Tensor,
    conditions: dict,
    *,
    reference_seed: int = 0,
    sample_seed: int = 1,
    max_new_tokens: int = 32,
    top_p: float = 1.0,
    temperature: float = 1.0,
    pooling: str = "mean",
    mauve_seeds=(0, 1, 2),
    batch_size: int = 16,
    num_threads: int | None = None,
    progress: bool = True,
):
    """Sample from the full model and from pruned copies, score the texts with MAUVE and repetition statistics.

    The reference set is the full model sampled with ``reference_seed``; every condition (including the full model
    itself, which gives MAUVE's noise floor at this sample size) is sampled with ``sample_seed`` and compared with
    it.  MAUVE is averaged over k-means seeds ``mauve_seeds`` (its spread is reported).

    Args:
        prompt_ids: (B, P) int64 prompts.
        conditions: {label: dict(criterion=..., fraction=..., keep=(k,) tensor or None for the full head)}.

    Returns:
        (table, continuations): a DataFrame with one row per condition plus ``"reference"`` (criterion, fraction,
        mauve, mauve_spread, distinct-n, rep-4) and {label: (B, T) token ids}.
    """
    import pandas as pd

    if not conditions:
        raise ValueError("conditions must hold at least one condition")
    if not list(mauve_seeds):
        raise ValueError("mauve_seeds must hold at least one seed")
    sampling = {"max_new_tokens": max_new_tokens, "top_p": top_p, "temperature": temperature,
                "batch_size": batch_size, "num_threads": num_threads, "progress": progress}
    continuations = {"reference": sample_continuations(loaded, prompt_ids, None, seed=reference_seed, **sampling)}
    featurise = {"pooling": pooling, "batch_size": batch_size, "num_threads": num_threads}
    reference_features = continuation_features(loaded, prompt_ids, continuations["reference"], **featurise)
    rows = [{"condition": "reference", "criterion": "full", "fraction": 0.0, "mauve": float("nan"),
             "mauve_spread": float("nan"), **text_statistics(continuations["reference"])}]
    for label, condition in conditions.items():
        tokens = sample_continuations(loaded, prompt_ids, condition.get("keep"), seed=sample_seed, **sampling)
        continuations[label] = tokens
        features = continuation_features(loaded, prompt_ids, tokens, **featurise)
        scores = [mauve_score(reference_features, features, seed=s) for s in mauve_seeds]
        rows.append({"condition": label, "criterion": condition.get("criterion", "full"),
                     "fraction": float(condition.get("fraction", 0.0)), "mauve": float(np.mean(scores)),
                     "mauve_spread": float(np.max(scores) - np.min(scores)), **text_statistics(tokens)})
    return pd.DataFrame(rows), continuations


# ---------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------

METRIC_LABELS: dict[str, str] = {
    "js_alpha": "JS divergence of α (nats)",
    "mean_kl": "mean per-position KL (nats)",
    "top1_agreement": "top-1 agreement",
    "perplexity_new": "perplexity",
    "perplexity_ratio": "perplexity / full-head perplexity",
}
CRITERION_LABELS: dict[str, str] = {
    "abs_A": "smallest |A| (paper, as we read it)",
    "abs_A_spread": "smallest |A|·spread(E)",
    "h_spread": "smallest mean|h|·spread(E)",
    "fisher": "smallest Fisher saliency",
    "random": "random (mean, min-max band)",
}


def plot_curves(ax, sweep, metric: str, *, threshold: tuple[str, float] | None = None, log: bool = False) -> None:
    """Draw ``metric`` against the deleted share of d (%) on ``ax``, one line per criterion (random: mean over seeds
    with a min-max band).  ``sweep`` must already be restricted to one corpus and group."""
    import seaborn as sns

    palette = dict(zip(CRITERIA, sns.color_palette("colorblind", len(CRITERIA))))
    if log:  # fraction 0 has no movement at all: nothing to draw on a log scale
        sweep = sweep[sweep.fraction > 0]
    for criterion, rows in sweep.groupby("criterion", sort=False):
        by_fraction = rows.groupby("fraction")[metric]
        x = 100 * np.asarray(sorted(rows.fraction.unique()))
        mean = by_fraction.mean().to_numpy()
        style = {"color": palette.get(criterion), "label": CRITERION_LABELS.get(criterion, criterion)}
        if criterion == "random":
            ax.fill_between(x, by_fraction.min().to_numpy(), by_fraction.max().to_numpy(), alpha=0.25,
                            color=style["color"], lw=0)
            ax.plot(x, mean, ls="--", **style)
        else:
            ax.plot(x, mean, marker="o", ms=3, **style)
    if threshold is not None:
        ax.axhline(threshold[1], color="black", lw=0.8, ls=":")
    if log:
        ax.set_yscale("log")  # the zero at fraction 0 is left out
    ax.set(xlabel="dimensions deleted (% of d)", ylabel=METRIC_LABELS.get(metric, metric))


def curves_figure(sweep, metrics, *, panels: str | None = None, group: str = "all", thresholds=None,
                  log_metrics=("js_alpha", "mean_kl"), width: float = 4.2, height: float = 3.4):
    """A grid of :func:`plot_curves`: one row per metric, one column per value of ``panels`` (e.g. ``"corpus"``
    or ``"group"``); rows of ``sweep`` are first restricted to ``group`` unless ``panels == "group"``."""
    import matplotlib.pyplot as plt

    thresholds = THRESHOLDS if thresholds is None else thresholds
    data = sweep if panels == "group" else sweep[sweep.group == group]
    columns = [None] if panels is None else list(dict.fromkeys(data[panels]))
    fig, axes = plt.subplots(len(metrics), len(columns), figsize=(width * len(columns), height * len(metrics)),
                             squeeze=False, sharex=True)
    for i, metric in enumerate(metrics):
        for j, column in enumerate(columns):
            rows = data if column is None else data[data[panels] == column]
            plot_curves(axes[i, j], rows, metric, threshold=thresholds.get(metric), log=metric in log_metrics)
            if i == 0 and column is not None:
                axes[i, j].set_title(f"{panels}: {column}")
            if i < len(metrics) - 1:
                axes[i, j].set_xlabel("")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 3), bbox_to_anchor=(0.5, 1.0 + 0.02))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.08 / len(metrics)))
    return fig


def percent_format(value: float) -> str:
    """The format spec that prints a fraction as a percentage without spurious decimals (0.3 -> 30%, 0.025 -> 2.5%)."""
    return ".0%" if abs(100 * value - round(100 * value)) < 1e-9 else ".1%"


def percent(value: float) -> str:
    """``value`` (a fraction) as a percentage: 0.3 -> "30%", 0.025 -> "2.5%"; NaN -> ""."""
    return "" if value != value else format(value, percent_format(value))


def largest_tested_fraction(results, metric: str, direction: str, value: float) -> dict[str, str]:
    """For measurements taken at a few fractions only (e.g. MAUVE of generated text): per criterion, the largest
    tested fraction at which ``metric`` meets the threshold there and at every smaller tested fraction, as text
    (``"< f"`` when it fails at the smallest tested fraction f).

    Args:
        results: a DataFrame with columns ``criterion``, ``fraction`` and ``metric``.
    """
    check_choice("direction", direction, ("below", "above"))
    verdicts = {}
    for criterion, rows in results.groupby("criterion", sort=True):
        rows = rows.sort_values("fraction")
        ok = (rows[metric] < value) if direction == "below" else (rows[metric] > value)
        passed = None
        for fraction, good in zip(rows.fraction, ok):
            if not good:
                break
            passed = fraction
        verdicts[criterion] = f"< {percent(rows.fraction.iloc[0])}" if passed is None else percent(passed)
    return verdicts


def halves_positions(
    n_windows: int, window_length: int, n_positions: int | None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two paired samples of flat position indices into (n_windows, window_length), one per half of the windows.

    The first half's sample is :func:`subsample_positions` over its ``n_windows // 2`` windows (seeded, as the sweep
    samples); the second half's is the same (window within the half, offset in the window) moved ``n_windows // 2``
    windows on. Both hold ``n_positions`` positions (``None``: every position of a half), at the same context
    lengths, and never share a window (with an odd count the last window is unused).

    Returns:
        (first (n,), second (n,)) int64 flat indices, sorted.
    """
    n_windows = check_positive_int("n_windows", n_windows)
    if n_windows < 2:
        raise ValueError(f"n_windows={n_windows}: two halves need at least 2 windows")
    half = n_windows // 2
    window_length = check_positive_int("window_length", window_length)
    if n_positions is not None:
        check_int("n_positions", n_positions, minimum=1, maximum=half * window_length)
    first = subsample_positions(half, window_length, n_positions, seed)
    return first, first + half * window_length


def js_between_halves(acts, *, n_positions: int | None = None, seed: int = 0, chunk_size: int = 1024) -> float:
    """A scale for JS of alpha at the sweep's sample size: the JS divergence (nats) between the averaged full-head
    distributions of two paired samples of ``n_positions`` positions, one from each half of the windows of ``acts``
    (an :class:`~utils.activations.Activations`; :func:`halves_positions`).

    With the sweep's ``n_positions`` each alpha averages as many positions as the sweep's, at the same context
    lengths in both halves, so the number says how far alpha moves between two texts of the size the sweep reads.
    ``n_positions=None`` compares the two halves whole.
    """
    from .activations import mean_softmax

    first, second = halves_positions(*acts.token_ids.shape, n_positions, seed)
    hidden = acts.hidden_flat
    return js_divergence(mean_softmax(hidden[first], acts.head, chunk_size),
                         mean_softmax(hidden[second], acts.head, chunk_size))


def mauve_buckets(n_texts: int) -> int:
    """The number of k-means clusters ``mauve-text`` quantises features into with ``num_buckets="auto"``:
    ``max(2, round(n_texts / 10))`` (n_texts: the smaller side)."""
    return max(2, int(round(check_positive_int("n_texts", n_texts) / 10)))


def mauve_is_saturated(scores: dict, saturation: float = 0.95) -> bool:
    """Whether every MAUVE score in ``scores`` ({head label: MAUVE}, NaNs ignored; the full model against itself
    included) is at least ``saturation``: then the measure cannot separate the heads at this sample size."""
    saturation = check_float("saturation", saturation, low=0.0, high=1.0)
    values = [float(v) for v in scores.values() if v == v]
    if not values:
        raise ValueError("scores must hold at least one MAUVE value")
    return min(values) >= saturation


def mauve_saturation_text(scores: dict, n_texts: int, saturation: float = 0.95) -> str:
    """Whether MAUVE is saturated, in words, from the scores of every compared head (the full model against itself
    included): saturated when every score is at least ``saturation``.

    Args:
        scores: {head label: MAUVE}; n_texts: texts per side.
    """
    saturation = check_float("saturation", saturation, low=0.0, high=1.0)
    values = {label: float(v) for label, v in scores.items() if v == v}
    if not values:
        raise ValueError("scores must hold at least one MAUVE value")
    low_label = min(values, key=values.get)
    low, high = values[low_label], max(values.values())
    buckets = mauve_buckets(n_texts)
    if mauve_is_saturated(values, saturation):
        return (f"saturated: every head, the full model against itself included, scores between {low:.3f} and "
                f"{high:.3f} (at least {saturation:g}); with {n_texts} texts per side quantised into {buckets} "
                "k-means clusters MAUVE cannot tell these heads apart, so its values are not a finding")
    return (f"not saturated: the scores range from {low:.3f} ({low_label}) to {high:.3f}, below {saturation:g} for "
            f"at least one head; with {n_texts} texts per side ({buckets} k-means clusters) and no interval over "
            "texts, the differences are still exploratory")


def generation_figure(generation, mauve_threshold: float | None = None):
    """MAUVE (left) and diversity / repetition (right) per condition of :func:`generation_study`, one row each."""
    import matplotlib.pyplot as plt

    conditions = list(generation.condition)
    y = np.arange(len(conditions))
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(conditions) + 1.6), sharey=True)
    mauve = generation.mauve.to_numpy()
    shown = ~np.isnan(mauve)
    axes[0].barh(y[shown], mauve[shown], xerr=generation.mauve_spread.to_numpy()[shown] / 2, color="tab:blue",
                 height=0.6)
    if mauve_threshold is not None:
        axes[0].axvline(mauve_threshold, color="black", ls=":", lw=0.8)
    axes[0].set(xlabel="MAUVE against the reference texts", xlim=(0, 1.05), yticks=y, yticklabels=conditions)
    statistics = [c for c in ("distinct-1", "distinct-2", "rep-4") if c in generation.columns]
    height = 0.8 / len(statistics)
    for i, column in enumerate(statistics):
        axes[1].barh(y - 0.4 + (i + 0.5) * height, generation[column], height=height, label=column)
    axes[1].set(xlabel="share", xlim=(0, 1.05))
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Basis control: deleting coordinates against deleting directions of other bases
# ---------------------------------------------------------------------------------------------------------------
#
# Logits do not change under an orthogonal change of basis Q of the embedding space, (h Q)(E Q)^T = h E^T, so a claim
# about deleting *coordinates* is a claim about the model only if its coordinates are privileged. Deleting the
# directions ``Q[:, deleted]`` of a basis projects h (and E) onto the kept columns: the pruned logits are
# ``(h Q_K)(E Q_K)^T + b = z - (h Q_D)(E Q_D)^T + b`` with z the full logits. With Q = I this is the coordinate
# deletion of the rest of the module (tested).

#: the model's own coordinates, ordered by |A|
MODEL_BASIS = "model coordinates"
#: random orthogonal bases (one per seed), ordered by |Q^T A|, the |A| criterion in that basis
RANDOM_BASIS = "random basis"
#: the principal directions of E, smallest variance deleted first (a spectral filter)
PRINCIPAL_BASIS = "principal directions of E"
BASIS_LABELS: dict[str, str] = {
    MODEL_BASIS: "model coordinates, smallest |A| first",
    RANDOM_BASIS: "random bases, smallest |QᵀA| first (mean, min-max band)",
    PRINCIPAL_BASIS: "principal directions of E, smallest variance first",
}


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
    from .basis import principal_basis, random_orthogonal

    E = _as_float_tensor("E", E, 2)
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
        import pandas as pd

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
    fractions are ``z - (h Q_D)(E Q_D)^T`` with D its deleted directions, obtained incrementally as in
    :func:`deletion_sweep` (``Q = I`` for the model's coordinates). The per-position KL is taken in closed form,
    ``KL = (h Q_D) . ((p @ E) Q_D) + log Z_q - log Z_p``.

    Args:
        hidden: (N, d) hidden states.
        groups: (N,) int64 group of each position in 0..G-1 (the documents a bootstrap resamples).
        head: the full :class:`~utils.head.OutputHead` (E (V, d), b (V,) or None).
        conditions: :class:`BasisCondition` s (from :func:`basis_conditions`).
        fractions: deletion fractions in [0, 1), each deleting at least one direction.
    """
    from tqdm.auto import tqdm

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
        order = _check_order(condition.name, condition.order, d)[:largest]
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
    for start in range(0, n, chunk_size):
        h = hidden[start : start + chunk_size].to(torch.float32)
        g = groups[start : start + chunk_size]
        rows = h.shape[0]
        membership = torch.zeros((n_groups, rows), dtype=torch.float32)
        membership[g, torch.arange(rows)] = 1.0
        z = h @ E.T
        if head.b is not None:
            z += head.b.to(torch.float32)
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
            shift_mean = torch.cumsum((h_deleted * expected_deleted).double(), dim=1)
            z_new = z.clone()
            done = 0
            for f, k in enumerate(counts):
                z_new.addmm_(h_deleted[:, done:k], E_rotated[:, done:k].T, alpha=-1.0)
                done = k
                max_new = z_new.amax(dim=-1)
                torch.softmax(z_new, dim=-1, out=q)
                log_z_new = max_new.double() - torch.log(q.amax(dim=-1).double())
                pruned[c, f] += membership @ q
                kl[c, f].index_add_(0, g, shift_mean[:, k - 1] + log_z_new - log_z_ref)
                same = z_new.gather(1, top_ref[:, None]).squeeze(1) >= max_new
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
    from .uncertainty import resampling_groups

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
    from .uncertainty import Check, percentile_interval, resample_counts

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
    intervals = [percentile_interval(samples[:, i], estimate=estimate[i], level=level) if np.all(np.isfinite(
        samples[:, i])) else None for i in range(3)]
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
    from .uncertainty import combine

    return BASIS_VERDICTS[combine([check.verdict for check in checks])]


def spectral_comparison_text(check) -> str:
    """A clause on the model's coordinates (by |A|) against the spectral filter, from the spectral check of
    :func:`basis_checks` (top-1 difference against 0)."""
    from .uncertainty import NOT_REPRODUCED, REPRODUCED

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
