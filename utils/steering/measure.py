"""What an edit achieves, measured from cached hidden states without running the model.

Changing row ``w`` of ``E`` changes only column ``w`` of the logits: at position ``n`` the logit ``l_nw`` moves by
``s_n = -log(r) · (h_n · u)`` (by ``log r`` for the bias), and every other logit stays put.  With ``p_n = p_n(w)``

    p'_n = p_n e^{s_n} / (1 - p_n + p_n e^{s_n}) = 1 / (1 + (1/p_n - 1) e^{-s_n}),

which needs only the per-position log-normaliser ``lse_n`` (:func:`base_statistics`, one streamed pass over the
vocabulary, cached on disk by :func:`cached_base_statistics`) and the column ``l_nw``.  The second form is exact in
float64 even when ``e^{±s_n}`` overflows.  A sweep over tokens × ratios × edits (:func:`steering_sweep`) is then
elementwise algebra on (positions × tokens) arrays.

Side effects come in closed form too: within one position the other tokens' renormalised distribution is exactly
unchanged, ``KL(p_n || p'_n) = log Z'_n - p_n s_n`` with ``Z'_n = 1 - p_n + p_n e^{s_n}``, and the argmax changes
only where ``w`` becomes or stops being the top token.  The *averaged* distribution of the other tokens can still
move, because the edit reweights the positions (``alpha'_j = mean_n p_n(j) (1 - p'_n) / (1 - p_n)``);
:func:`other_tokens_divergence` measures that with one streamed pass.  The summaries of a sweep
(:func:`ratio_summary`, :func:`steering_error`, :func:`steerable_range`) close the module.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import cache
from ..activations import Activations
from ..compare import js_divergence
from ..head import OutputHead, iter_logits
from ..thresholds import reach
from ..validation import check_choice, check_float, check_int, check_token_ids
from .edits import Edit, check_ratio

#: bump whenever the computation of the cached base statistics changes
CODE_VERSION = "1"


@dataclass
class BaseStatistics:
    """What a one-column edit needs to know about every position of a held-out set.

    Attributes:
        hidden: (N, d) float32 final hidden states.
        head: the unedited head.
        lse: (N,) float64 log of the softmax normaliser, ``logsumexp_j l_nj``.
        top1_index: (N,) int64 argmax token.
        top1_logit, top2_logit: (N,) float64 largest and second largest logit.
    """

    hidden: torch.Tensor
    head: OutputHead
    lse: torch.Tensor
    top1_index: torch.Tensor
    top1_logit: torch.Tensor
    top2_logit: torch.Tensor

    @property
    def n_positions(self) -> int:
        return int(self.hidden.shape[0])

    def token_logits(self, tokens: np.ndarray) -> torch.Tensor:
        """Logits of ``tokens`` at every position: (N, m) float64."""
        tokens = torch.as_tensor(check_token_ids("tokens", tokens, self.head.V))
        logits = self.hidden @ self.head.E[tokens].T
        if self.head.b is not None:
            logits = logits + self.head.b[tokens]
        return logits.to(torch.float64)

    def token_log_probs(self, tokens: np.ndarray) -> torch.Tensor:
        """log p_n(w) for ``tokens``: (N, m) float64."""
        return self.token_logits(tokens) - self.lse[:, None]

    def log_alpha(self, tokens: np.ndarray) -> torch.Tensor:
        """log of the averaged probability of ``tokens`` over the N positions: (m,) float64."""
        return torch.logsumexp(self.token_log_probs(tokens), dim=0) - math.log(self.n_positions)


@torch.no_grad()
def base_statistics(h: torch.Tensor, head: OutputHead, chunk_size: int = 1024, progress: bool = True) -> BaseStatistics:
    """Stream the unedited head over hidden states h (N, d): log-normaliser and top-2 logits per position."""
    n = h.shape[0]
    if n == 0:
        raise ValueError("h holds no positions")
    lse = torch.empty(n, dtype=torch.float64)
    top1_index = torch.empty(n, dtype=torch.int64)
    top2 = torch.empty((n, 2), dtype=torch.float64)
    chunks = iter_logits(h, head, chunk_size)
    for start, logits in tqdm(chunks, total=math.ceil(n / chunk_size), desc="normalisers", disable=not progress):
        values, indices = logits.topk(min(2, head.V), dim=-1)
        log_probs = torch.log_softmax(logits, dim=-1)  # faster than logsumexp on the CPU
        # lse = l_top1 - log p_top1: the log-probability of the argmax is the best-conditioned one to subtract
        lse[start : start + len(logits)] = (values[:, 0] - log_probs.gather(1, indices[:, :1])[:, 0]).double()
        top1_index[start : start + len(logits)] = indices[:, 0]
        top2[start : start + len(logits), : values.shape[1]] = values.double()
        if values.shape[1] == 1:
            top2[start : start + len(logits), 1] = -math.inf
    return BaseStatistics(h.to(torch.float32), head, lse, top1_index, top2[:, 0].clone(), top2[:, 1].clone())


def _base_key(activations: Activations, n_windows: int, chunk_size: int) -> str:
    return cache.key_of({"activations": activations.meta.get("key"), "n_windows": n_windows,
                         "code_version": CODE_VERSION, "head": cache.fingerprint(activations.head.E)})


def cached_base_statistics(
    activations: Activations, n_windows: int | None = None, *, chunk_size: int = 1024, use_cache: bool = True
) -> BaseStatistics:
    """:func:`base_statistics` of the first ``n_windows`` windows of a cached pass (all when None), cached on disk.

    The cache is keyed by the pass's own key, the number of windows, the head's bytes and the code version, and
    written atomically; a file that does not load or does not fit the pass is recomputed.
    """
    total = activations.token_ids.shape[0]
    n_windows = total if n_windows is None else check_int("n_windows", n_windows, minimum=1, maximum=total)
    hidden = activations.hidden[:n_windows].reshape(-1, activations.head.d)
    if not use_cache or "key" not in activations.meta:
        return base_statistics(hidden, activations.head, chunk_size)
    path = cache.path_of("steering", f"base-{_base_key(activations, n_windows, chunk_size)}", ".pt")
    names = ("lse", "top1_index", "top1_logit", "top2_logit")
    saved = cache.read(path, cache.load_torch, lambda saved: all(saved[name].shape == (hidden.shape[0],)
                                                                 for name in names))
    if saved is not None:
        return BaseStatistics(hidden, activations.head, *(saved[name] for name in names))
    stats = base_statistics(hidden, activations.head, chunk_size)
    cache.write(path, cache.save_torch({name: getattr(stats, name) for name in names}))
    return stats


def steered_probs(inverse_odds: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """New probability of the edited token: ``1 / (1 + (1/p - 1) e^{-s})``.

    Args:
        inverse_odds: (N, m) float64 ``1/p - 1`` of the edited tokens before the edit.
        shift: (N,) or (N, m) float64 logit shift ``s``.

    Returns:
        (N, m) float64 new probabilities (exact when ``e^{±s}`` overflows: they go to 0 or 1).
    """
    if shift.ndim == 1:
        shift = shift[:, None]
    return (inverse_odds * torch.exp(-shift)).add_(1.0).reciprocal_()


def inverse_odds_of(log_p: torch.Tensor) -> torch.Tensor:
    """``1/p - 1 = expm1(-log p)`` from log p (N, m) float64; inf where p underflows float64."""
    return torch.expm1(-log_p).clamp_min_(0.0)  # p <= 1 up to rounding of the normaliser


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - e^x)`` for x <= 0, stable at both ends."""
    x = x.clamp_max(0.0)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


@dataclass
class SteeringSweep:
    """Steering of m tokens by each of n_r ratios through each of n_e edits, over N held-out positions.

    Attributes:
        tokens: (m,) int64 steered token ids.
        r_values: (n_r,) float64 target ratios.
        edits: the n_e edits.
        log_alpha_before: (m,) float64 log alpha_w of the unedited head.
        log_alpha_after: (n_e, n_r, m) float64 log alpha_w after editing token w alone.
        top1_agreement: (n_e, n_r, m) share of positions whose argmax is unchanged (None unless asked for).
        mean_kl: (n_e, n_r, m) mean over positions of KL(p || p') in nats (None unless asked for).
    """

    tokens: np.ndarray
    r_values: np.ndarray
    edits: list[Edit]
    log_alpha_before: np.ndarray
    log_alpha_after: np.ndarray
    top1_agreement: np.ndarray | None = None
    mean_kl: np.ndarray | None = None

    @property
    def log_ratio(self) -> np.ndarray:
        """(n_e, n_r, m) log of the achieved ratio alpha_after / alpha_before."""
        return self.log_alpha_after - self.log_alpha_before[None, None, :]

    @property
    def log_error(self) -> np.ndarray:
        """(n_e, n_r, m) ``log(achieved / target)``: 0 is perfect steering, > 0 overshoot."""
        return self.log_ratio - np.log(self.r_values)[None, :, None]

    def edit_index(self, edit: str | int) -> int:
        """Index of an edit given by label (the first with that label) or by index."""
        if isinstance(edit, (int, np.integer)):
            return check_int("edit", edit, minimum=0, maximum=len(self.edits) - 1)
        labels = [e.label for e in self.edits]
        check_choice("edit", edit, labels)
        return labels.index(edit)

    def r_index(self, r: float) -> int:
        matches = np.flatnonzero(np.isclose(self.r_values, r, rtol=1e-9))
        if len(matches) == 0:
            raise ValueError(f"r={r} is not in the sweep's ratios {self.r_values.tolist()}")
        return int(matches[0])


@torch.no_grad()
def steering_sweep(
    base: BaseStatistics,
    tokens: Iterable[int],
    r_values: Sequence[float],
    edits: Sequence[Edit],
    *,
    side_effects: bool = False,
    progress: bool = True,
) -> SteeringSweep:
    """Achieved steering of every token × ratio × edit, from the base statistics alone (no model run).

    Each (token, r, edit) is an independent one-token edit of the unedited head.  With ``side_effects`` the sweep
    also returns the top-1 agreement and the mean per-position KL (about twice the cost).
    """
    tokens = check_token_ids("tokens", list(tokens), base.head.V)
    r_values = np.asarray([check_ratio("r", r) for r in r_values], dtype=np.float64)
    if len(edits) == 0:
        raise ValueError("edits is empty")
    log_p = base.token_log_probs(tokens)  # (N, m)
    inverse_odds = inverse_odds_of(log_p)
    n = base.n_positions
    log_alpha_before = (torch.logsumexp(log_p, dim=0) - math.log(n)).numpy()
    shape = (len(edits), len(r_values), len(tokens))
    log_alpha_after = np.empty(shape)
    agreement = kl = None
    if side_effects:
        logits = base.token_logits(tokens)
        is_top = base.top1_index[:, None] == torch.as_tensor(tokens)[None, :]  # (N, m)
        other_max = torch.where(is_top, base.top2_logit[:, None], base.top1_logit[:, None])
        p, log1m_p = log_p.exp(), log1mexp(log_p)
        agreement, kl = np.empty(shape), np.empty(shape)
    with tqdm(total=len(edits) * len(r_values), desc="steering sweep", disable=not progress) as bar:
        for e, edit in enumerate(edits):
            unit = edit.unit_shift(base.hidden)  # (N,)
            for i, r in enumerate(r_values):
                if r == 1.0 and not side_effects:  # nothing moves
                    log_alpha_after[e, i] = log_alpha_before
                    bar.update()
                    continue
                shift = math.log(r) * unit
                new_p = steered_probs(inverse_odds, shift)
                alpha_after = new_p.mean(0)
                # alpha below float64's smallest normal: fall back to the log domain
                tiny = alpha_after < 1e-300
                log_after = alpha_after.log()
                if bool(tiny.any()):
                    cols = torch.nonzero(tiny).squeeze(1)
                    new_log_p = log_p[:, cols] + shift[:, None] - torch.logaddexp(
                        log1mexp(log_p[:, cols]), log_p[:, cols] + shift[:, None])
                    log_after[cols] = torch.logsumexp(new_log_p, dim=0) - math.log(n)
                log_alpha_after[e, i] = log_after.numpy()
                if side_effects:
                    new_top = (logits + shift[:, None]) > other_max
                    agreement[e, i] = (new_top == is_top).double().mean(0).numpy()
                    log_z = torch.logaddexp(log1m_p, log_p + shift[:, None])
                    kl[e, i] = (log_z - p * shift[:, None]).mean(0).numpy()
                bar.update()
    return SteeringSweep(tokens, r_values, list(edits), log_alpha_before, log_alpha_after, agreement, kl)


@torch.no_grad()
def other_tokens_divergence(
    base: BaseStatistics,
    tokens: Sequence[int],
    shifts: torch.Tensor,
    *,
    chunk_size: int = 1024,
    progress: bool = True,
) -> np.ndarray:
    """JS divergence (nats) of the other tokens' renormalised averaged distribution, before and after each edit.

    For configuration q (token ``tokens[q]`` shifted by ``shifts[q]``), the other tokens' averaged distribution
    after the edit is ``alpha'_j ∝ mean_n p_n(j) c_nq`` with ``c_nq = (1 - p'_n(w)) / (1 - p_n(w))``: one streamed
    pass computes all Q of them as ``P.T @ C``.

    Args:
        tokens: (Q,) edited token of each configuration.
        shifts: (Q, N) float64 logit shift of the edited token at every position.

    Returns:
        (Q,) float64 JS divergence between ``alpha_{-w} / (1 - alpha_w)`` before and after.
    """
    tokens = check_token_ids("tokens", list(tokens), base.head.V)
    n = base.n_positions
    if tuple(shifts.shape) != (len(tokens), n):
        raise ValueError(f"shifts must have shape ({len(tokens)}, {n}); got {tuple(shifts.shape)}")
    log_p = base.token_log_probs(tokens)  # (N, Q)
    new_p = steered_probs(inverse_odds_of(log_p), shifts.T.to(torch.float64))
    weights = torch.exp(torch.log1p(-new_p) - log1mexp(log_p))  # (N, Q)
    weights = torch.cat([torch.ones(n, 1, dtype=torch.float64), weights], dim=1).to(torch.float32)
    sums = torch.zeros((base.head.V, len(tokens) + 1), dtype=torch.float64)
    chunks = iter_logits(base.hidden, base.head, chunk_size)
    for start, logits in tqdm(chunks, total=math.ceil(n / chunk_size), desc="side effects", disable=not progress):
        probs = torch.softmax(logits, dim=-1)
        sums += (probs.T @ weights[start : start + len(logits)]).double()
    divergences = np.empty(len(tokens))
    keep = torch.ones(base.head.V, dtype=torch.bool)
    for q, token in enumerate(tokens):
        keep[token] = False
        divergences[q] = js_divergence(sums[keep, 0], sums[keep, q + 1])
        keep[token] = True
    return divergences


def ratio_summary(sweep: SteeringSweep, edit: str | int, token_mask: np.ndarray | None = None) -> pd.DataFrame:
    """Per target ratio: median and quartiles of the achieved ratio, median ``|log(achieved/target)|``.

    Args:
        edit: the edit's label or index in the sweep.
        token_mask: (m,) bool, the tokens to summarise (all when None).
    """
    e = sweep.edit_index(edit)
    ratios = np.exp(sweep.log_ratio[e])
    errors = np.abs(sweep.log_error[e])
    if token_mask is not None:
        ratios, errors = ratios[:, token_mask], errors[:, token_mask]
    return pd.DataFrame({
        "target": sweep.r_values,
        "median": np.median(ratios, axis=1),
        "q25": np.quantile(ratios, 0.25, axis=1),
        "q75": np.quantile(ratios, 0.75, axis=1),
        "median_abs_log_error": np.median(errors, axis=1),
    })


def steering_error(sweep: SteeringSweep, r_max: float, edit_index: int | None = None) -> np.ndarray:
    """Mean over ratios in [1/r_max, r_max] (r != 1) of the median over tokens of ``|log(achieved/target)|``.

    Returns:
        (n_e,) float64 per edit, or a 0-d array for ``edit_index``.
    """
    r_max = check_float("r_max", r_max, low=1.0, low_inclusive=False)
    chosen = (sweep.r_values >= 1 / r_max * (1 - 1e-9)) & (sweep.r_values <= r_max * (1 + 1e-9)) & (sweep.r_values != 1)
    if not chosen.any():
        raise ValueError(f"r_max={r_max}: the sweep has no ratio other than 1 within [1/r_max, r_max]")
    medians = np.median(np.abs(sweep.log_error[:, chosen, :]), axis=2)  # (n_e, n_chosen)
    per_edit = medians.mean(axis=1)
    return per_edit if edit_index is None else per_edit[edit_index]


def steerable_range(
    sweep: SteeringSweep, edit: str | int, band: float, token_mask: np.ndarray | None = None
) -> tuple[float, float]:
    """The largest ratio up and the smallest ratio down reached with median error within a factor ``band``.

    A ratio counts when the median ``|log(achieved/target)|`` over the tokens is at most ``log(band)`` for it and for
    every ratio of the sweep between it and 1.

    Returns:
        (r_up >= 1, r_down <= 1); 1.0 when not even the first step is within the band.
    """
    band = check_float("band", band, low=1.0, low_inclusive=False)
    summary = ratio_summary(sweep, edit, token_mask)
    ok = summary["median_abs_log_error"].to_numpy() <= math.log(band)
    targets = summary["target"].to_numpy()
    upwards = np.argsort(targets)  # walked away from ratio 1: ascending above it, descending below it
    up, down = upwards[targets[upwards] > 1], upwards[::-1][targets[upwards[::-1]] < 1]
    return float(reach(targets[up], ok[up], default=1.0)), float(reach(targets[down], ok[down], default=1.0))
