"""Compare the output distributions of two heads over the same cached hidden states, chunk by chunk.

Used wherever a chapter edits or prunes a head: the averaged distribution ``alpha`` (the papers' sense) and the
per-position distributions (KL, top-1 agreement, next-token loss) are measured in one streamed pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .head import OutputHead
from .validation import check_positive_int


@dataclass
class HeadComparison:
    """Reference head against a new head over N positions.

    Attributes:
        log_alpha_ref, log_alpha_new: (V,) float64 log of the averaged distributions.
        mean_kl: mean over positions of KL(p_ref || p_new), nats.
        top1_agreement: share of positions whose argmax token is the same under both heads.
        nll_ref, nll_new: mean next-token negative log-likelihood (nats) over positions with a target, or None.
    """

    log_alpha_ref: torch.Tensor
    log_alpha_new: torch.Tensor
    mean_kl: float
    top1_agreement: float
    nll_ref: float | None
    nll_new: float | None

    @property
    def js_alpha(self) -> float:
        """Jensen-Shannon divergence (nats, at most ln 2) between the averaged distributions."""
        return js_divergence(self.log_alpha_ref.exp(), self.log_alpha_new.exp())

    @property
    def perplexity_ref(self) -> float | None:
        return None if self.nll_ref is None else math.exp(self.nll_ref)

    @property
    def perplexity_new(self) -> float | None:
        return None if self.nll_new is None else math.exp(self.nll_new)


def js_divergence_rows(p: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in nats of p (V,) with each row of Q (S, V), in float64: (S,).

    p and each row of Q are renormalised to sum 1; zero entries contribute nothing (0 log 0 = 0).
    """
    p = p.to(torch.float64)
    p = p / p.sum()
    Q = Q.to(torch.float64)
    Q = Q / Q.sum(dim=1, keepdim=True)
    M = 0.5 * (p + Q)
    kl_p = torch.xlogy(p, p).sum() - torch.xlogy(p, M).sum(dim=1)
    kl_q = torch.xlogy(Q, Q).sum(dim=1) - torch.xlogy(Q, M).sum(dim=1)
    return 0.5 * kl_p + 0.5 * kl_q


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen-Shannon divergence in nats between two distributions (V,), computed in float64."""
    return float(js_divergence_rows(p, q[None])[0])


def next_token_targets(token_ids: torch.Tensor) -> torch.Tensor:
    """Targets for next-token loss: token_ids (n_windows, T) -> (n_windows * T,), -1 at each window's last position."""
    targets = torch.full_like(token_ids, -1)
    targets[:, :-1] = token_ids[:, 1:]
    return targets.reshape(-1)


@torch.no_grad()
def compare_heads(
    h: torch.Tensor,
    reference: OutputHead,
    new: OutputHead,
    targets: torch.Tensor | None = None,
    chunk_size: int = 1024,
    new_columns: torch.Tensor | None = None,
) -> HeadComparison:
    """Stream both heads over hidden states h (N, d) and compare their distributions.

    Args:
        targets: (N,) next-token ids, -1 where a position has none (see :func:`next_token_targets`).
        new_columns: (k,) indices of the hidden dimensions the new head reads, for a pruned head whose ``E`` is
            (V, k): its logits are ``h[:, new_columns] @ E.T + b``. None: the new head reads all d dimensions.
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if reference.V != new.V:
        raise ValueError(f"the heads have different vocabularies: {reference.V} and {new.V}")
    if h.ndim != 2 or h.shape[1] != reference.d:
        raise ValueError(f"h must have shape (N, {reference.d}); got {tuple(h.shape)}")
    new_width = reference.d if new_columns is None else len(new_columns)
    if new.d != new_width:
        raise ValueError(f"the new head reads {new.d} dimensions but new_columns selects {new_width}")
    n = h.shape[0]
    if targets is not None and tuple(targets.shape) != (n,):
        raise ValueError(f"targets must have shape ({n},); got {tuple(targets.shape)}")
    log_alpha_ref = torch.full((reference.V,), -math.inf, dtype=torch.float64)
    log_alpha_new = torch.full((new.V,), -math.inf, dtype=torch.float64)
    kl_sum = agree = nll_ref_sum = nll_new_sum = 0.0
    n_targets = 0
    for start in range(0, n, chunk_size):
        h_chunk = h[start : start + chunk_size].to(torch.float32)
        log_p = torch.log_softmax(reference.logits(h_chunk), dim=-1)
        h_new = h_chunk if new_columns is None else h_chunk[:, new_columns]
        log_q = torch.log_softmax(new.logits(h_new), dim=-1)
        log_alpha_ref = torch.logaddexp(log_alpha_ref, torch.logsumexp(log_p, dim=0).double())
        log_alpha_new = torch.logaddexp(log_alpha_new, torch.logsumexp(log_q, dim=0).double())
        kl_sum += float(torch.sum(log_p.exp() * (log_p - log_q), dtype=torch.float64))
        agree += float((log_p.argmax(-1) == log_q.argmax(-1)).sum())
        if targets is not None:
            chunk_targets = targets[start : start + chunk_size]
            valid = chunk_targets >= 0
            rows = torch.nonzero(valid).squeeze(1)
            nll_ref_sum -= float(log_p[rows, chunk_targets[rows]].double().sum())
            nll_new_sum -= float(log_q[rows, chunk_targets[rows]].double().sum())
            n_targets += int(valid.sum())
    has_nll = targets is not None and n_targets > 0
    return HeadComparison(
        log_alpha_ref=log_alpha_ref - math.log(n),
        log_alpha_new=log_alpha_new - math.log(n),
        mean_kl=kl_sum / n,
        top1_agreement=agree / n,
        nll_ref=nll_ref_sum / n_targets if has_nll else None,
        nll_new=nll_new_sum / n_targets if has_nll else None,
    )
