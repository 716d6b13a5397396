"""Pruned heads as :class:`~utils.head.OutputHead` s: the full-width head with deleted columns zeroed (what a real
pruned model runs), and the head that replaces deleted coordinates by their means."""
from __future__ import annotations

import torch

from ..head import OutputHead


def mean_compensated_head(head, keep: torch.Tensor, mean_hidden: torch.Tensor):
    """A pruned head that replaces each deleted coordinate of h by its mean instead of zero: (V, k) with bias
    ``b + E[:, deleted] @ mean_hidden[deleted]`` (V extra numbers when the head had no bias).

    Args:
        head: the full :class:`~utils.head.OutputHead`; keep: (k,) kept dimensions; mean_hidden: (d,) mean of h.
    """

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

    keep = torch.as_tensor(keep, dtype=torch.int64)
    if keep.ndim != 1 or keep.numel() == 0 or int(keep.min()) < 0 or int(keep.max()) >= head.d:
        raise ValueError(f"keep must be a non-empty 1-d set of indices in 0..{head.d - 1}")
    mask = torch.zeros(head.d, dtype=torch.bool)
    mask[keep] = True
    E = head.E.clone()
    E[:, ~mask] = 0.0
    return OutputHead(E, None if head.b is None else head.b.clone())

