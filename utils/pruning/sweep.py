"""The deletion sweep over cached hidden states, and what a chapter reads off it.

:func:`deletion_sweep` compares the full head with every pruned head ``(order, fraction)`` over the same hidden
states, streamed; :func:`sweep_activations` runs it over a seeded sample of a cached pass with context groups;
:func:`largest_safe_fraction` reads the largest fraction within each threshold; :func:`choose_criterion` picks the
"best" criterion on training text only; :func:`js_between_halves` gives a scale for JS of alpha.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..activations import mean_softmax
from ..compare import js_divergence, js_divergence_rows, next_token_targets
from ..thresholds import reach
from ..validation import check_choice, check_float, check_int, check_positive_int
from .criteria import n_deleted

SWEEP_COLUMNS: tuple[str, ...] = (
    "criterion", "seed", "fraction", "n_deleted", "n_kept", "group", "n_positions", "js_alpha", "mean_kl",
    "top1_agreement", "nll_ref", "nll_new", "perplexity_ref", "perplexity_new", "perplexity_ratio",
)



def check_order(name: str, order: torch.Tensor, d: int) -> torch.Tensor:
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
def reference_chunks(hidden: torch.Tensor, groups: torch.Tensor, E: torch.Tensor, b: torch.Tensor | None,
                     n_groups: int, chunk_size: int):
    """Yield, per chunk of positions, ``(start, h, g, membership, z)``: hidden states h (rows, d) float32, their
    groups g (rows,), the (n_groups, rows) float32 membership matrix and the unpruned logits z = h E^T + b (rows, V)."""
    for start in range(0, hidden.shape[0], chunk_size):
        h = hidden[start : start + chunk_size].to(torch.float32)
        g = groups[start : start + chunk_size]
        membership = torch.zeros((n_groups, h.shape[0]), dtype=torch.float32)
        membership[g, torch.arange(h.shape[0])] = 1.0
        z = h @ E.T
        if b is not None:
            z += b.to(torch.float32)
        yield start, h, g, membership, z


@torch.no_grad()
def deletion_steps(z: torch.Tensor, h_deleted: torch.Tensor, E_deleted: torch.Tensor, expected_deleted: torch.Tensor,
                   counts: list[int], log_z_ref: torch.Tensor, top_ref: torch.Tensor, q: torch.Tensor):
    """The pruned heads of one deletion order over one chunk of positions, one step per deletion count.

    The pruned logits are ``z - h_D E_D^T`` with D the first k deleted directions, obtained incrementally as k
    grows, and the per-position KL in closed form, ``KL(p || q) = h_D · (p @ E)_D + log Z_q - log Z_p``.

    Args:
        z: (rows, V) float32 unpruned logits (left unchanged).
        h_deleted: (rows, K) hidden states in the deleted directions, in deletion order (K >= max(counts)).
        E_deleted: (V, K) the head in the same directions.
        expected_deleted: (rows, K) ``(p @ E)`` in the same directions (p: the unpruned probabilities).
        counts: ascending deletion counts, each >= 1.
        log_z_ref: (rows,) float64 log partition function of the unpruned logits.
        top_ref: (rows,) int64 the unpruned top token.
        q: (rows, V) float32 buffer the pruned probabilities are written into.

    Yields:
        per count, ``(z_new (rows, V), q (rows, V), log_z_new (rows,) float64, kl (rows,) float64,
        same_top (rows,) bool)``; ``z_new`` and ``q`` are overwritten by the next step.
    """
    # contribution of each deleted direction to sum_w p_w Δ_w, accumulated in deletion order
    shift_mean = torch.cumsum((h_deleted * expected_deleted).double(), dim=1)
    z_new = z.clone()
    done = 0
    for k in counts:
        z_new.addmm_(h_deleted[:, done:k], E_deleted[:, done:k].T, alpha=-1.0)
        done = k
        max_new = z_new.amax(dim=-1)
        torch.softmax(z_new, dim=-1, out=q)
        # log Z_q from the largest probability (never underflows): log q_max = max_new - log Z_q
        log_z_new = max_new.double() - torch.log(q.amax(dim=-1).double())
        kl = shift_mean[:, k - 1] + log_z_new - log_z_ref
        # the reference's top token is still on top (the argmax up to exact ties)
        same_top = z_new.gather(1, top_ref[:, None]).squeeze(1) >= max_new
        yield z_new, q, log_z_new, kl, same_top


@dataclass
class _SweepPlan:
    """:func:`deletion_sweep`'s validated inputs: the head's E (V, d) float32, the orders {name: (d,) int64
    permutation}, the sorted fractions with their deletion counts, and each position's group (N,) int64."""

    E: torch.Tensor
    orders: dict
    fractions: list[float]
    deleted_counts: list[int]  # one per fraction
    unique_counts: list[int]  # the distinct non-zero deletion counts, ascending
    largest: int  # the largest deletion count
    groups: torch.Tensor
    group_names: list[str]
    single: bool  # no groups were given: only the "all" rows


def _check_groups(groups, group_names, n: int) -> tuple[torch.Tensor, list[str], bool]:
    """Each position's group id (n,) int64, the names of the groups, and whether no groups were given (one, "all")."""
    if groups is None:
        groups = torch.zeros(n, dtype=torch.int64)
        group_names = ["all"] if group_names is None else list(group_names)
        if group_names != ["all"]:
            raise ValueError("group_names needs groups")
        return groups, group_names, True
    groups = torch.as_tensor(groups, dtype=torch.int64)
    if tuple(groups.shape) != (n,) or int(groups.min()) < 0:
        raise ValueError(f"groups must be (N,)=({n},) non-negative ids; got shape {tuple(groups.shape)}")
    n_groups = int(groups.max()) + 1
    group_names = [f"group_{g}" for g in range(n_groups)] if group_names is None else list(group_names)
    if len(group_names) < n_groups or "all" in group_names:
        raise ValueError(f"group_names must name all {n_groups} groups and may not use 'all'; got {group_names}")
    return groups, group_names, False


def _sweep_plan(hidden: torch.Tensor, head, orders: dict, fractions, targets, groups, group_names) -> _SweepPlan:
    """Check :func:`deletion_sweep`'s inputs (hidden (N, d), targets (N,) or None) into a :class:`_SweepPlan`."""
    E = head.E.to(torch.float32)
    d = E.shape[1]
    if hidden.ndim != 2 or hidden.shape[1] != d or hidden.shape[0] == 0:
        raise ValueError(f"hidden must have shape (N >= 1, {d}); got {tuple(hidden.shape)}")
    n = hidden.shape[0]
    if not orders:
        raise ValueError("orders must hold at least one order")
    orders = {name: check_order(str(name), order, d) for name, order in orders.items()}
    fractions = check_fractions(fractions)
    deleted_counts = [n_deleted(d, f) for f in fractions]
    if targets is not None and tuple(targets.shape) != (n,):
        raise ValueError(f"targets must have shape ({n},); got {tuple(targets.shape)}")
    groups, group_names, single = _check_groups(groups, group_names, n)
    unique_counts = sorted(set(k for k in deleted_counts if k > 0))  # fractions may round to the same count
    return _SweepPlan(E, orders, fractions, deleted_counts, unique_counts, max(deleted_counts), groups, group_names,
                      single)


@dataclass
class _SweepSums:
    """The sweep's running sums per group (G groups), float64: the reference head's :class:`_Totals` (its alpha),
    its next-token loss (G,), the positions (G,) and those with a target (G,), and a :class:`_Totals` per pruned
    head ``(order name, deletion count)``."""

    reference: _Totals
    nll_ref: torch.Tensor
    count: torch.Tensor
    count_targets: torch.Tensor
    pruned: dict

    @classmethod
    def zeros(cls, n_groups: int, V: int, names, counts: list[int]) -> _SweepSums:
        """All sums zero, for the orders ``names`` and the non-zero deletion ``counts``."""
        return cls(_Totals(n_groups, V), torch.zeros(n_groups, dtype=torch.float64),
                   torch.zeros(n_groups, dtype=torch.float64), torch.zeros(n_groups, dtype=torch.float64),
                   {(name, k): _Totals(n_groups, V) for name in names for k in counts})

    def by_group(self, values: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """(G,) float64 sums of per-position ``values`` (rows,) within each group (g: (rows,) group ids)."""
        return torch.zeros(self.count.shape[0], dtype=torch.float64).index_add_(0, g, values.to(torch.float64))


def _add_reference_chunk(sums: _SweepSums, z: torch.Tensor, g: torch.Tensor, membership: torch.Tensor,
                         E: torch.Tensor, target_chunk: torch.Tensor | None):
    """Add the unpruned head over one chunk to ``sums``: z (rows, V) logits, g (rows,) groups, membership (G, rows),
    E (V, d), target_chunk (rows,) or None.

    Returns:
        (log_z_ref (rows,) float64 log partition function, top_ref (rows,) int64 top token,
        expected_E (rows, d) float32 ``p @ E``, the head's rows averaged under the unpruned probabilities p).
    """
    rows = z.shape[0]
    max_ref, top_ref = z.max(dim=-1)
    p = torch.exp(z - max_ref[:, None])
    sum_ref = p.sum(dim=-1, dtype=torch.float64)
    log_z_ref = max_ref.double() + torch.log(sum_ref)
    p /= sum_ref.float()[:, None]
    expected_E = p @ E  # (rows, d): E_p[E_i] at each position
    sums.reference.alpha += (membership @ p).to(torch.float64)
    del p
    sums.count += sums.by_group(torch.ones(rows), g)
    if target_chunk is not None:
        valid = target_chunk >= 0
        target_logits = z.gather(1, target_chunk.clamp_min(0)[:, None]).squeeze(1).double()
        sums.nll_ref += sums.by_group(torch.where(valid, log_z_ref - target_logits, 0.0), g)
        sums.count_targets += sums.by_group(valid.float(), g)
    return log_z_ref, top_ref, expected_E


def _add_pruned_chunk(sums: _SweepSums, name, counts: list[int], steps, g: torch.Tensor, membership: torch.Tensor,
                      target_chunk: torch.Tensor | None) -> None:
    """Add the pruned heads of the order ``name`` over one chunk to ``sums``: ``steps`` are :func:`deletion_steps`'
    per count of ``counts``, g (rows,) groups, membership (G, rows), target_chunk (rows,) or None."""
    for k, (z_new, q, log_z_new, kl, top_new_is_same) in zip(counts, steps):
        totals = sums.pruned[(name, k)]
        totals.alpha += (membership @ q).to(torch.float64)
        totals.kl += sums.by_group(kl, g)
        totals.agree += sums.by_group(top_new_is_same.float(), g)
        if target_chunk is not None:
            valid = target_chunk >= 0
            new_target_logits = z_new.gather(1, target_chunk.clamp_min(0)[:, None]).squeeze(1).double()
            totals.nll += sums.by_group(torch.where(valid, log_z_new - new_target_logits, 0.0), g)


def _stream_sums(hidden: torch.Tensor, b: torch.Tensor | None, targets: torch.Tensor | None, plan: _SweepPlan,
                 chunk_size: int, progress: bool) -> _SweepSums:
    """The sweep's per-group sums over the hidden states (N, d), chunk by chunk: the reference logits once per
    chunk, then each order's pruned heads incrementally (:func:`deletion_steps`)."""
    E, orders, largest = plan.E, plan.orders, plan.largest
    n_groups = len(plan.group_names)
    # columns of E in each order's deletion order, up to the largest deletion: (V, largest), contiguous
    permuted_E = {name: E[:, order[:largest]].contiguous() for name, order in orders.items()}
    sums = _SweepSums.zeros(n_groups, E.shape[0], orders, plan.unique_counts)
    n_chunks = math.ceil(hidden.shape[0] / chunk_size)
    bar = tqdm(total=n_chunks * len(orders), desc="deletion sweep", unit="order·chunk", disable=not progress)
    for start, h, g, membership, z in reference_chunks(hidden, plan.groups, E, b, n_groups, chunk_size):
        target_chunk = None if targets is None else targets[start : start + chunk_size]
        log_z_ref, top_ref, expected_E = _add_reference_chunk(sums, z, g, membership, E, target_chunk)
        q = torch.empty_like(z)  # pruned probabilities, reused
        for name, order in orders.items():
            steps = deletion_steps(z, h[:, order[:largest]], permuted_E[name], expected_E[:, order[:largest]],
                                   plan.unique_counts, log_z_ref, top_ref, q)
            _add_pruned_chunk(sums, name, plan.unique_counts, steps, g, membership, target_chunk)
            bar.update(1)
        del z, q
    bar.close()
    return sums


def _group_records(sums: _SweepSums, plan: _SweepPlan, group_name: str, index: list[int],
                   has_targets: bool) -> list[dict]:
    """The sweep's rows (one per order and fraction) for the positions of the groups ``index``, named
    ``group_name``; none when those groups hold no position."""
    positions = float(sums.count[index].sum())
    alpha_ref = sums.reference.alpha[index].sum(0) / positions  # (V,)
    with_targets = float(sums.count_targets[index].sum())
    loss_ref = float(sums.nll_ref[index].sum()) / with_targets if has_targets and with_targets else None
    if positions == 0:
        return []
    names, nonzero, d = list(plan.orders), plan.unique_counts, plan.E.shape[1]
    # JS divergences of all pruned heads at once: (n_orders, n_nonzero_counts)
    js_all = [[] for _ in names]
    if nonzero:
        alpha_new = torch.stack([sums.pruned[(name, k)].alpha[index].sum(0) for name in names for k in nonzero])
        js_all = js_divergence_rows(alpha_ref, alpha_new / positions).reshape(len(names), len(nonzero)).tolist()
    records = []
    for i, name in enumerate(names):
        criterion, seed = name if isinstance(name, tuple) else (name, None)
        for fraction, k in zip(plan.fractions, plan.deleted_counts):
            if k == 0:
                js, kl, agree, loss_new = 0.0, 0.0, 1.0, loss_ref
            else:
                totals = sums.pruned[(name, k)]
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
    return records


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

    chunk_size = check_positive_int("chunk_size", chunk_size)
    plan = _sweep_plan(hidden, head, orders, fractions, targets, groups, group_names)
    sums = _stream_sums(hidden, head.b, targets, plan, chunk_size, progress)
    group_sets = [("all", list(range(len(plan.group_names))))]
    if not plan.single:
        group_sets += [(name, [i]) for i, name in enumerate(plan.group_names)]
    records = [record for group_name, index in group_sets
               for record in _group_records(sums, plan, group_name, index, targets is not None)]
    return pd.DataFrame.from_records(records, columns=list(SWEEP_COLUMNS))



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

    thresholds = THRESHOLDS if thresholds is None else thresholds
    rows = []
    for metric, (direction, value) in thresholds.items():
        check_choice("direction", direction, ("below", "above"))
        curves = criterion_curves(sweep, metric)
        keys = [c for c in ("corpus", "group", "criterion") if c in curves.columns]
        for key, curve in curves.groupby(keys, sort=True):
            curve = curve.sort_values("fraction")
            ok = (curve[metric] < value) if direction == "below" else (curve[metric] > value)
            limit = reach(curve.fraction.to_numpy(), ok.to_numpy(), default=float("nan"))
            rows.append({**dict(zip(keys, key)), "metric": metric,
                         "threshold": f"{'<' if direction == 'below' else '>'} {value:g}",
                         "largest_fraction": float(limit)})
    return pd.DataFrame(rows)



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

    first, second = halves_positions(*acts.token_ids.shape, n_positions, seed)
    hidden = acts.hidden_flat
    return js_divergence(mean_softmax(hidden[first], acts.head, chunk_size),
                         mean_softmax(hidden[second], acts.head, chunk_size))

