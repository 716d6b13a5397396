"""Steering a token's averaged probability by editing its row of the output embedding (Cho et al., Section 5).

If ``-log alpha_w ≈ A · E_w + B``, the edit ``E_w' = E_w - log(r) · u`` with any direction ``u`` such that
``A · u = 1`` moves the *predicted* ``-log alpha_w`` by ``-log r``, i.e. multiplies the predicted ``alpha_w`` by
``r``.  The paper's direction is ``u = Ω A^{-1}``: ``u_i = 1 / (k A_i)`` on the ``k`` dimensions of largest ``|A_i|``
and 0 elsewhere ("mask").  Two references sit beside it: the minimal-norm direction ``u = A / ||A||²`` ("min_norm")
and a plain logit bias of ``+log r`` on token ``w`` at every position ("logit_bias"), the edit that the others try to
imitate through the hidden states.

What the edit *achieves* is measured without running the model.  Changing row ``w`` of ``E`` changes only column
``w`` of the logits: at position ``n`` the logit ``l_nw`` moves by ``s_n = -log(r) · (h_n · u)`` (by ``log r`` for the
bias), and every other logit stays put.  With ``p_n = p_n(w)`` the new probability is

    p'_n = p_n e^{s_n} / (1 - p_n + p_n e^{s_n}) = 1 / (1 + (1/p_n - 1) e^{-s_n}),

which needs only the per-position log-normaliser ``lse_n`` (computed once, chunk by chunk over the vocabulary) and
the column ``l_nw``.  The second form is exact in float64 even when ``e^{±s_n}`` overflows.  A whole sweep over
tokens × ratios × edits is then elementwise algebra on (positions × tokens) arrays.

Side effects come in closed form too: within one position the other tokens' renormalised distribution is exactly
unchanged (their ratios are untouched), ``KL(p_n || p'_n) = log Z'_n - p_n s_n`` with
``Z'_n = 1 - p_n + p_n e^{s_n}``, and the argmax changes only where ``w`` becomes or stops being the top token.  The
*averaged* distribution of the other tokens can still move, because the edit reweights the positions
(``alpha'_j = mean_n p_n(j) (1 - p'_n) / (1 - p_n)``); :func:`other_tokens_divergence` measures that with one
streamed pass.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import cache
from .activations import Activations
from .compare import js_divergence
from .encoding import EncodingRefitter, dimensions_by_weight
from .head import OutputHead, iter_logits, with_output_head
from .models import LoadedModel
from .validation import check_choice, check_float, check_int, check_positive_int

#: bump whenever the computation of the cached base statistics changes
CODE_VERSION = "1"
METHODS = ("mask", "min_norm", "logit_bias")
METHOD_LABELS = {"mask": "Ω A⁻¹ mask", "min_norm": "minimal-norm along A", "logit_bias": "logit bias log r"}


# ----------------------------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------------------------


def check_ratio(name: str, r: float) -> float:
    """Return ``r`` as a float if it is a finite number > 0 (a target ratio); otherwise raise."""
    return check_float(name, r, low=0.0, low_inclusive=False)


def check_tokens(name: str, tokens, V: int) -> np.ndarray:
    """Return ``tokens`` as a 1-d int64 array of ids in ``[0, V-1]``; otherwise raise naming the offending id."""
    array = np.atleast_1d(np.asarray(tokens))
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}={tokens!r} must be one token id or a non-empty 1-d list of ids")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name}={tokens!r} must hold integer token ids")
    bad = array[(array < 0) | (array >= V)]
    if bad.size:
        raise ValueError(f"{name} holds {int(bad[0])}, outside the vocabulary; allowed ids are 0..{V - 1}")
    return array.astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# Edits
# ----------------------------------------------------------------------------------------------------------------


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

    @property
    def label(self) -> str:
        return f"mask k={self.k}" if self.method == "mask" else METHOD_LABELS[self.method]

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
    """The paper's ``Ω A^{-1}``: (d,) float64 with ``1 / (k A_i)`` on the k dimensions of largest ``|A_i|``, else 0.

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
    (token,) = check_tokens("token", token, head.V)
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


# ----------------------------------------------------------------------------------------------------------------
# Per-position statistics of the unedited head
# ----------------------------------------------------------------------------------------------------------------


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
        tokens = torch.as_tensor(check_tokens("tokens", tokens, self.head.V))
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


# ----------------------------------------------------------------------------------------------------------------
# The shortcut: steered probabilities from the base statistics
# ----------------------------------------------------------------------------------------------------------------


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


def _inverse_odds(log_p: torch.Tensor) -> torch.Tensor:
    """``1/p - 1 = expm1(-log p)`` from log p (N, m) float64; inf where p underflows float64."""
    return torch.expm1(-log_p).clamp_min_(0.0)  # p <= 1 up to rounding of the normaliser


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
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
    tokens = check_tokens("tokens", list(tokens), base.head.V)
    r_values = np.asarray([check_ratio("r", r) for r in r_values], dtype=np.float64)
    if len(edits) == 0:
        raise ValueError("edits is empty")
    log_p = base.token_log_probs(tokens)  # (N, m)
    inverse_odds = _inverse_odds(log_p)
    n = base.n_positions
    log_alpha_before = (torch.logsumexp(log_p, dim=0) - math.log(n)).numpy()
    shape = (len(edits), len(r_values), len(tokens))
    log_alpha_after = np.empty(shape)
    agreement = kl = None
    if side_effects:
        logits = base.token_logits(tokens)
        is_top = base.top1_index[:, None] == torch.as_tensor(tokens)[None, :]  # (N, m)
        other_max = torch.where(is_top, base.top2_logit[:, None], base.top1_logit[:, None])
        p, log1m_p = log_p.exp(), _log1mexp(log_p)
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
                        _log1mexp(log_p[:, cols]), log_p[:, cols] + shift[:, None])
                    log_after[cols] = torch.logsumexp(new_log_p, dim=0) - math.log(n)
                log_alpha_after[e, i] = log_after.numpy()
                if side_effects:
                    new_top = (logits + shift[:, None]) > other_max
                    agreement[e, i] = (new_top == is_top).double().mean(0).numpy()
                    log_z = torch.logaddexp(log1m_p, log_p + shift[:, None])
                    kl[e, i] = (log_z - p * shift[:, None]).mean(0).numpy()
                bar.update()
    return SteeringSweep(tokens, r_values, list(edits), log_alpha_before, log_alpha_after, agreement, kl)


# ----------------------------------------------------------------------------------------------------------------
# Side effects on the other tokens' averaged distribution
# ----------------------------------------------------------------------------------------------------------------


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
    tokens = check_tokens("tokens", list(tokens), base.head.V)
    n = base.n_positions
    if tuple(shifts.shape) != (len(tokens), n):
        raise ValueError(f"shifts must have shape ({len(tokens)}, {n}); got {tuple(shifts.shape)}")
    log_p = base.token_log_probs(tokens)  # (N, Q)
    new_p = steered_probs(_inverse_odds(log_p), shifts.T.to(torch.float64))
    weights = torch.exp(torch.log1p(-new_p) - _log1mexp(log_p))  # (N, Q)
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


# ----------------------------------------------------------------------------------------------------------------
# Cross-checks and generation with the real model
# ----------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def forward_log_alpha(
    loaded: LoadedModel, head: OutputHead, token_ids: torch.Tensor, tokens: Sequence[int]
) -> np.ndarray:
    """log alpha of ``tokens`` from the model's own logits with its head replaced by ``head``.

    Args:
        token_ids: (n_windows, T) int64 windows.

    Returns:
        (m,) float64 log of the mean over all positions of the model's softmax probabilities of ``tokens``.
    """
    tokens = check_tokens("tokens", list(tokens), head.V)
    model = with_output_head(loaded.model, head)
    log_total = torch.full((len(tokens),), -math.inf, dtype=torch.float64)
    for window in token_ids:
        logits = model(input_ids=window[None, :], use_cache=False).logits[0].to(torch.float64)
        log_probs = torch.log_softmax(logits, dim=-1)[:, torch.as_tensor(tokens)]
        log_total = torch.logaddexp(log_total, torch.logsumexp(log_probs, dim=0))
    del model
    return (log_total - math.log(token_ids.numel())).numpy()


def shortcut_log_alpha(base: BaseStatistics, token: int, r: float, edit: Edit) -> float:
    """log alpha of ``token`` after the edit, by the shortcut (the quantity :func:`forward_log_alpha` checks)."""
    sweep = steering_sweep(base, [token], [r], [edit], progress=False)
    return float(sweep.log_alpha_after[0, 0, 0])


@torch.no_grad()
def generate_steered(
    loaded: LoadedModel,
    prompts: Sequence[str],
    heads: dict[str, OutputHead],
    token: int,
    *,
    max_new_tokens: int = 24,
    do_sample: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Continue each prompt with the model under each head; count how often ``token`` is generated.

    Returns:
        one row per (prompt, head label): ``prompt``, ``head``, ``continuation`` (text), ``n_steered`` (count of
        ``token`` among the generated tokens), ``n_generated``.
    """
    max_new_tokens = check_positive_int("max_new_tokens", max_new_tokens)
    rows = []
    for label, head in heads.items():
        model = with_output_head(loaded.model, head)
        for prompt in prompts:
            torch.manual_seed(seed)
            encoded = loaded.tokenizer(prompt, return_tensors="pt")
            output = model.generate(
                **encoded, max_new_tokens=max_new_tokens, do_sample=do_sample, top_k=0 if do_sample else None,
                top_p=None, temperature=1.0 if do_sample else None, pad_token_id=loaded.tokenizer.pad_token_id,
            )
            generated = output[0, encoded["input_ids"].shape[1]:]
            rows.append({
                "prompt": prompt,
                "head": label,
                "continuation": loaded.tokenizer.decode(generated, skip_special_tokens=True),
                "n_steered": int((generated == token).sum()),
                "n_generated": int(generated.numel()),
            })
        del model
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# Token samples and summaries
# ----------------------------------------------------------------------------------------------------------------


def frequency_sample(
    log_alpha: np.ndarray, n_buckets: int = 5, per_bucket: int = 50, seed: int = 0
) -> pd.DataFrame:
    """Tokens sampled across frequency: ``n_buckets`` equal-width bins of log alpha, ``per_bucket`` tokens each.

    The bins span log alpha from its 0.1% quantile to its maximum (the rarest 0.1% fall into the lowest bin), so the
    few very frequent tokens get a bucket of their own instead of vanishing in a quantile split.

    Returns:
        one row per sampled token: ``token``, ``bucket`` (0 = rarest), ``bucket_label``, ``log_alpha``.
    """
    n_buckets = check_positive_int("n_buckets", n_buckets)
    per_bucket = check_positive_int("per_bucket", per_bucket)
    log_alpha = np.asarray(log_alpha, dtype=np.float64)
    low, high = np.quantile(log_alpha, 0.001), log_alpha.max()
    edges = np.linspace(low, high, n_buckets + 1)
    bucket = np.clip(np.searchsorted(edges, log_alpha, side="right") - 1, 0, n_buckets - 1)
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_buckets):
        members = np.flatnonzero(bucket == b)
        chosen = np.sort(rng.choice(members, size=min(per_bucket, len(members)), replace=False))
        label = f"α {np.exp(edges[b]):.0e}–{np.exp(edges[b + 1]):.0e}"
        rows += [{"token": int(t), "bucket": b, "bucket_label": label, "log_alpha": log_alpha[t]} for t in chosen]
    return pd.DataFrame(rows)


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
    r_up = r_down = 1.0
    for index in np.argsort(targets):
        if targets[index] > 1:
            if not ok[index]:
                break
            r_up = float(targets[index])
    for index in np.argsort(targets)[::-1]:
        if targets[index] < 1:
            if not ok[index]:
                break
            r_down = float(targets[index])
    return r_up, r_down


def choose_mask(sweep: SteeringSweep, r_max: float) -> Edit:
    """The mask edit of ``sweep`` with the smallest :func:`steering_error` over ratios in [1/r_max, r_max].

    Ties go to the first mask in the sweep's order (the smaller k when the masks are listed by k). Only "mask" edits
    compete; the sweep should be measured on training text, so that the choice is not made on the text it is then
    scored on.

    Raises:
        ValueError: the sweep holds no mask edit.
    """
    masks = [i for i, edit in enumerate(sweep.edits) if edit.method == "mask"]
    if not masks:
        raise ValueError("the sweep holds no mask edit to choose from")
    errors = steering_error(sweep, r_max)
    return sweep.edits[min(masks, key=lambda i: errors[i])]


# ----------------------------------------------------------------------------------------------------------------
# Per-window sums of the steered probability, and the scorecard's checks with intervals over documents
# ----------------------------------------------------------------------------------------------------------------


def window_sums(values: torch.Tensor | np.ndarray, window_length: int) -> np.ndarray:
    """Sum per-position values within each window: (N, m) -> (N / window_length, m) float64.

    Positions must be in window order (window 0's positions first), as in ``Activations.hidden_flat``.
    """
    values = torch.as_tensor(values, dtype=torch.float64)
    window_length = check_positive_int("window_length", window_length)
    if values.ndim != 2 or values.shape[0] % window_length:
        raise ValueError(f"values must be (N, m) with N a multiple of window_length={window_length}; "
                         f"got shape {tuple(values.shape)}")
    return values.reshape(-1, window_length, values.shape[1]).sum(dim=1).numpy()


def document_sums(window_values: np.ndarray, groups: np.ndarray, n_groups: int | None = None) -> np.ndarray:
    """Sum per-window rows within each group (document): (n_windows, m), groups (n_windows,) -> (n_groups, m)."""
    window_values = np.asarray(window_values, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    out = np.zeros(((int(groups.max()) + 1) if n_groups is None else n_groups, window_values.shape[1]))
    np.add.at(out, groups, window_values)
    return out


class SteeringText:
    """One measured text for one-token edits: the sampled tokens' probabilities at every position, kept per window.

    The steered probability at each position comes from the shortcut (:func:`steered_probs` with the base
    statistics' log-normalisers); it is summed within each window and then within each document, so that a
    bootstrap over documents re-averages the achieved ratio as a weighted sum of document rows.

    Attributes:
        tokens: (m,) int64 steered token ids.
        window_length: positions per window (T).
        groups: (n_windows,) int64 document group of each window (0..n_groups-1), or any grouping to resample.
        n_groups: number of groups (at least ``groups.max() + 1``; more when the groups are a larger pass's, so
            that one draw of that pass's documents weights this text too).
        before: (n_groups, m) float64 summed probability of each token before the edit, per group.
    """

    def __init__(self, base: BaseStatistics, tokens, window_length: int, groups, n_groups: int | None = None) -> None:
        self.tokens = check_tokens("tokens", tokens, base.head.V)
        self.window_length = check_positive_int("window_length", window_length)
        self.groups = np.asarray(groups, dtype=np.int64)
        if self.groups.shape != (base.n_positions // self.window_length,) or base.n_positions % self.window_length:
            raise ValueError(f"groups must give one group per window ({base.n_positions} positions / "
                             f"{self.window_length}); got shape {self.groups.shape}")
        self.n_groups = int(self.groups.max()) + 1 if n_groups is None else check_int(
            "n_groups", n_groups, minimum=int(self.groups.max()) + 1)
        self._hidden = base.hidden.to(torch.float64)  # (N, d), so each edit's shift is one float64 product
        log_p = base.token_log_probs(self.tokens)  # (N, m)
        self._inverse_odds = _inverse_odds(log_p)
        self.before = document_sums(window_sums(log_p.exp(), self.window_length), self.groups, self.n_groups)
        if not np.all(self.before.sum(axis=0) > 0):
            raise FloatingPointError("a steered token's probability underflows float64 at every position")

    def window_sums_after(self, edit: Edit, r: float) -> np.ndarray:
        """(n_windows, m) float64 summed probability of each token within each window after steering it by ``r``."""
        shift = math.log(check_ratio("r", r)) * edit.unit_shift(self._hidden)  # (N,)
        return window_sums(steered_probs(self._inverse_odds, shift), self.window_length)

    def after(self, edit: Edit, r: float) -> np.ndarray:
        """(n_groups, m) float64 summed probability of each token within each group after steering it by ``r``."""
        return document_sums(self.window_sums_after(edit, r), self.groups, self.n_groups)

    def log_ratio(self, after: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        """log of the achieved ratio ``alpha'_w / alpha_w`` of each token, over the groups weighted by ``counts``.

        Args:
            after: (n_groups, m) from :meth:`after`.
            counts: (n_groups,) or (n_boot, n_groups) how often each group is drawn (all once when None).

        Returns:
            (m,) or (n_boot, m) float64 (the positions' count cancels: both alphas average the same positions).
        """
        counts = np.ones(self.n_groups) if counts is None else np.asarray(counts, dtype=np.float64)
        return np.log(counts @ after) - np.log(counts @ self.before)


def _median_abs_log_error(log_ratio: np.ndarray, r: float) -> np.ndarray:
    """Median over tokens (last axis) of ``|log(achieved / r)|``."""
    return np.median(np.abs(log_ratio - math.log(r)), axis=-1)


def headline_checks(
    train_acts: Activations,
    held_out_acts: Activations,
    *,
    tokens,
    r_values: Sequence[float],
    k_values: Sequence[int],
    r_headline: float = 20.0,
    band: float = 2.0,
    selection_windows: int = 16,
    test_fraction: float = 0.2,
    seed: int = 0,
    n_boot: int = 200,
    boot_seed: int = 0,
    chunk_size: int = 1024,
) -> list:
    """The scorecard's checks of "editing E_w along A multiplies alpha_w by r", each with an interval over texts.

    A is fitted on the training pass's alpha (held-out tokens ``test_fraction``, split ``seed``). The number of
    masked dimensions k is chosen among ``k_values`` (and all d) on the first ``selection_windows`` windows of the
    *training* pass (a spread sample of it: the windows are in seeded random order) by :func:`choose_mask` over the
    ratios of ``r_values`` within [1/r_headline, r_headline]; the held-out pass plays no part in the choice.

    Checks (:class:`utils.uncertainty.Check`), for the chosen mask edit: the median over ``tokens`` of
    ``|log(achieved / target)|`` at r = ``r_headline`` and at r = 1/``r_headline``, at most ``log(band)``, in two
    settings:

    - training text (the paper's setting, the edit measured on the text D that fitted A): the selection windows,
      the part of the training pass whose per-position normalisers the chapter computes anyway (a pass over every
      training window would cost several times the held-out one), and where k was chosen;
    - held-out text: every window of ``held_out_acts``.

    Intervals: a document bootstrap, training and held-out documents resampled jointly in each of ``n_boot``
    samples. The training documents are drawn with replacement, stratified into those that hold selection windows
    and the rest (so that the measured text never vanishes); alpha is re-averaged from the pass's per-window sums,
    A refitted (:class:`utils.encoding.EncodingRefitter`, one factorisation), and the mask rebuilt with the same k
    from the refitted A. The achieved ratio on the training text is re-averaged with the same document draws, and
    on the held-out text with a draw of the held-out documents: both from per-window sums of the steered
    probability (:class:`SteeringText`), never a new model pass. Only the chosen edit and the two headline ratios
    are recomputed per sample.

    Args:
        train_acts: the training pass (fits A; its first ``selection_windows`` windows choose k and measure the
            paper's setting).
        held_out_acts: the held-out pass (same head).
        tokens: (m,) steered token ids (chosen without the held-out text, e.g. :func:`frequency_sample` of the
            training alpha).
        r_values: the sweep's target ratios; those within [1/r_headline, r_headline] other than 1 choose k.
        k_values: candidate mask sizes (values above d are dropped; d is always added).

    Returns:
        four checks: training r_headline, training 1/r_headline, held-out r_headline, held-out 1/r_headline.
    """
    from .uncertainty import (
        Check,
        group_log_sums,
        percentile_interval,
        resample_counts,
        resampled_log_means,
        resampling_groups,
    )

    r_headline = check_float("r_headline", r_headline, low=1.0, low_inclusive=False)
    band = check_float("band", band, low=1.0, low_inclusive=False)
    n_train_windows = train_acts.token_ids.shape[0]
    selection_windows = check_int("selection_windows", selection_windows, minimum=1, maximum=n_train_windows)
    tokens = check_tokens("tokens", tokens, train_acts.head.V)
    d = train_acts.head.d
    E = train_acts.head.E.numpy().astype(np.float64)
    refitter = EncodingRefitter(E, test_fraction=test_fraction, seed=seed)
    fit = refitter.fit(train_acts.alpha.numpy())

    masks = [make_edit(fit.A, "mask", k) for k in sorted({int(k) for k in k_values if 1 <= int(k) <= d} | {d})]
    selection_base = cached_base_statistics(train_acts, selection_windows, chunk_size=chunk_size)
    best = choose_mask(steering_sweep(selection_base, tokens, r_values, masks, progress=False), r_headline)

    train_groups = resampling_groups(train_acts.document)  # (n_train_windows,)
    n_train_groups = int(train_groups.max()) + 1
    held_out_groups = resampling_groups(held_out_acts.document)
    texts = {  # the training text's groups are the training pass's documents, so one draw weights fit and text
        "training": SteeringText(selection_base, tokens, train_acts.token_ids.shape[1],
                                 train_groups[:selection_windows], n_groups=n_train_groups),
        "held-out": SteeringText(cached_base_statistics(held_out_acts, chunk_size=chunk_size), tokens,
                                 held_out_acts.token_ids.shape[1], held_out_groups),
    }
    ratios = (r_headline, 1.0 / r_headline)

    def errors(edit: Edit, train_counts, held_out_counts) -> np.ndarray:
        """(4,) the four checked numbers for one edit and one draw of documents."""
        out = []
        for text, counts in ((texts["training"], train_counts), (texts["held-out"], held_out_counts)):
            for r in ratios:
                out.append(float(_median_abs_log_error(text.log_ratio(text.after(edit, r), counts), r)))
        return np.asarray(out)

    values = errors(best, None, None)

    # joint document draws: training documents stratified by whether they hold selection windows
    selected = np.zeros(n_train_groups, dtype=bool)
    selected[train_groups[:selection_windows]] = True
    train_counts = np.zeros((n_boot, n_train_groups))
    train_counts[:, selected] = resample_counts(int(selected.sum()), n_boot, boot_seed)
    if (~selected).any():
        train_counts[:, ~selected] = resample_counts(int((~selected).sum()), n_boot, boot_seed + 1)
    held_out_counts = resample_counts(int(held_out_groups.max()) + 1, n_boot, boot_seed + 2)
    sums = group_log_sums(train_acts.window_log_sums, train_groups)
    sizes = np.bincount(train_groups).astype(np.float64) * train_acts.token_ids.shape[1]
    samples = np.empty((n_boot, len(values)))
    for b, log_alpha in enumerate(resampled_log_means(sums, sizes, train_counts)):
        edit = make_edit(refitter.fit(np.exp(log_alpha)).A, "mask", best.k)
        samples[b] = errors(edit, train_counts[b], held_out_counts[b])

    threshold = math.log(band)
    names = [f"{text}: median |log(achieved/target)| at r = {r}, mask k={best.k}"
             for text in ("training text (the paper's setting)", "held-out text")
             for r in (f"{r_headline:g}", f"1/{r_headline:g}")]
    return [Check(name, float(value), percentile_interval(samples[:, i], estimate=float(value)), threshold, "below")
            for i, (name, value) in enumerate(zip(names, values))]


def prefix_log_alphas(
    hidden: torch.Tensor, head: OutputHead, sizes: Sequence[int], seed: int = 0, chunk_size: int = 1024
) -> dict[int, torch.Tensor]:
    """log alpha from the first n windows of a random order of windows, for each n in ``sizes`` (nested samples).

    Args:
        hidden: (n_windows, T, d) hidden states.

    Returns:
        {n: (V,) float64 log alpha over those n windows' positions}.
    """
    from .activations import log_mean_softmax

    n_windows = hidden.shape[0]
    sizes = sorted({check_int("sizes", n, minimum=1, maximum=n_windows) for n in sizes})
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n_windows))
    window_length = hidden.shape[1]
    log_total = torch.full((head.V,), -math.inf, dtype=torch.float64)
    done = 0
    result = {}
    for n in sizes:
        segment = hidden[order[done:n]].reshape(-1, head.d)
        segment_log_alpha = log_mean_softmax(segment, head, chunk_size) + math.log(segment.shape[0])
        log_total = torch.logaddexp(log_total, segment_log_alpha)
        done = n
        result[n] = log_total - math.log(n * window_length)
    return result


# ----------------------------------------------------------------------------------------------------------------
# Chapter helpers: forward-pass check, few-shot fits, side-effect table, figures
# ----------------------------------------------------------------------------------------------------------------


def forward_check(
    loaded: LoadedModel,
    token_ids: torch.Tensor,
    hidden: torch.Tensor,
    head: OutputHead,
    cases: Sequence[tuple[int, float, Edit]],
) -> pd.DataFrame:
    """The shortcut against a real forward pass of the edited model, for each (token, r, edit) case.

    Args:
        token_ids: (n_windows, T) windows whose cached hidden states are ``hidden`` (n_windows, T, d).

    Returns:
        one row per case: token, r, edit, log alpha before, after by the shortcut and by the model, and the
        absolute difference of the two (nats).
    """
    base = base_statistics(hidden.reshape(-1, head.d), head, progress=False)
    rows = []
    for token, r, edit in tqdm(cases, desc="forward checks"):
        shortcut = steering_sweep(base, [token], [r], [edit], progress=False)
        forward = forward_log_alpha(loaded, edited_head(head, token, r, edit), token_ids, [token])[0]
        after = float(shortcut.log_alpha_after[0, 0, 0])
        rows.append({
            "token": token, "text": loaded.tokenizer.decode([token]), "r": r, "edit": edit.label,
            "log α before": float(shortcut.log_alpha_before[0]), "log α after (cache)": after,
            "log α after (model)": float(forward), "|difference| (nats)": abs(after - float(forward)),
        })
    return pd.DataFrame(rows)


def few_shot_errors(
    activations: Activations,
    base: BaseStatistics,
    tokens: np.ndarray,
    r_values: Sequence[float],
    sizes: Sequence[int],
    *,
    k: int,
    r_max: float,
    repeats: int = 1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """Steering error on held-out text when A is fitted from alpha over only n random training windows.

    For each repeat, windows are drawn in a random order (seed + repeat) and alpha is taken over the first n of them
    (nested samples); A is refitted and the mask edit (top-k of the new A) and the minimal-norm edit are evaluated
    on ``base``.  The error is :func:`steering_error` over ratios in [1/r_max, r_max].

    Returns:
        one row per (windows, repeat, edit): ``windows``, ``positions``, ``repeat``, ``edit``, ``error``, ``fit_r2``.
    """
    repeats = check_positive_int("repeats", repeats)
    refitter = EncodingRefitter(activations.head.E.numpy(), test_fraction=test_fraction, seed=seed)
    window_length = activations.token_ids.shape[1]
    rows = []
    for repeat in range(repeats):
        log_alphas = prefix_log_alphas(activations.hidden, activations.head, sizes, seed=seed + repeat)
        for n, log_alpha in log_alphas.items():
            fit = refitter.fit(log_alpha.exp().numpy())
            edits = [make_edit(fit.A, "mask", k), make_edit(fit.A, "min_norm")]
            sweep = steering_sweep(base, tokens, r_values, edits, progress=False)
            errors = steering_error(sweep, r_max)
            for edit, error in zip(edits, errors):
                rows.append({"windows": n, "positions": n * window_length, "repeat": repeat,
                             "edit": "mask (top-k of this A)" if edit.method == "mask" else edit.label,
                             "error": float(error), "fit_r2": fit.r2})
    return pd.DataFrame(rows)


def side_effects(
    base: BaseStatistics, sample: pd.DataFrame, r_values: Sequence[float], edit: Edit, *, progress: bool = True
) -> pd.DataFrame:
    """Side effects of steering each sampled token by each ratio through ``edit``.

    Args:
        sample: rows with ``token``, ``bucket``, ``bucket_label`` (from :func:`frequency_sample`).

    Returns:
        one row per (token, r): the achieved ratio, the JS divergence (nats) of the other tokens' renormalised
        averaged distribution, the share of positions whose top-1 token changed, and the mean per-position
        KL(p || p') (nats).
    """
    tokens = sample["token"].to_numpy()
    sweep = steering_sweep(base, tokens, r_values, [edit], side_effects=True, progress=progress)
    unit = edit.unit_shift(base.hidden)
    config_tokens = np.repeat(tokens[None, :], len(r_values), axis=0).ravel()
    shifts = torch.stack([math.log(r) * unit for r in r_values for _ in tokens])
    js = other_tokens_divergence(base, config_tokens, shifts, progress=progress).reshape(len(r_values), len(tokens))
    rows = []
    for i, r in enumerate(sweep.r_values):
        for j, (_, token_row) in enumerate(sample.iterrows()):
            rows.append({
                "token": int(token_row["token"]), "bucket": int(token_row["bucket"]),
                "bucket_label": token_row["bucket_label"], "r": r,
                "achieved": float(np.exp(sweep.log_ratio[0, i, j])),
                "js_others": float(js[i, j]), "top1_changed": float(1 - sweep.top1_agreement[0, i, j]),
                "mean_kl": float(sweep.mean_kl[0, i, j]),
            })
    return pd.DataFrame(rows)


def plot_ratio_band(ax, summary: pd.DataFrame, label: str, color=None, band: bool = True) -> None:
    """Median achieved ratio against target (log-log) with the interquartile band."""
    (line,) = ax.plot(summary["target"], summary["median"], marker="o", ms=3, label=label, color=color)
    if band:
        ax.fill_between(summary["target"], summary["q25"], summary["q75"], color=line.get_color(), alpha=0.2, lw=0)
    ax.set(xscale="log", yscale="log")


def plot_identity(ax, r_values: Sequence[float]) -> None:
    """The identity line achieved = target over the range of ``r_values``."""
    span = [min(r_values), max(r_values)]
    ax.plot(span, span, color="black", lw=1, ls="--", label="achieved = target")
