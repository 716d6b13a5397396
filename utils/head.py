"""The output layer of a causal LM: output embedding ``E`` (V×d), optional bias ``b`` (V,), and the final hidden
states ``h`` (after the final norm) such that ``logits == h @ E.T + b``.

Everything the book computes from a model's output distribution goes through this module, chunk by chunk over
positions, so that no (positions × vocabulary) array is ever held whole.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel

from .compute import CPU_FLOAT32, Compute
from .validation import check_positive_int

# relative tolerance of the identity check: float32 matmuls in a different order differ by ~1e-6 relative
IDENTITY_RTOL = 1e-4


@dataclass
class OutputHead:
    """An output layer.

    Attributes:
        E: output embedding, (V, d) float32; row ``w`` is token ``w``'s output embedding.
        b: output bias, (V,) float32, or ``None`` for heads without one.
    """

    E: torch.Tensor
    b: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.E.ndim != 2:
            raise ValueError(f"E must be 2-d (V, d); got shape {tuple(self.E.shape)}")
        if self.b is not None and tuple(self.b.shape) != (self.E.shape[0],):
            raise ValueError(f"b must have shape ({self.E.shape[0]},); got {tuple(self.b.shape)}")

    @property
    def V(self) -> int:  # the papers' notation
        return int(self.E.shape[0])

    @property
    def d(self) -> int:
        return int(self.E.shape[1])

    def to(self, device: torch.device | str) -> OutputHead:
        """This head on ``device`` (itself where it is there already)."""
        return OutputHead(self.E.to(device), None if self.b is None else self.b.to(device))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """``h @ E.T + b``: (..., d) -> (..., V)."""
        out = h @ self.E.T
        return out if self.b is None else out + self.b


def output_head(model: PreTrainedModel) -> OutputHead:
    """A detached float32 clone of the model's output head, on the CPU wherever the model runs (editing it never
    touches the model)."""
    layer = model.get_output_embeddings()
    if layer is None or not hasattr(layer, "weight"):
        raise ValueError(f"{type(model).__name__} has no output embedding layer")
    E = layer.weight.detach().to("cpu", torch.float32).clone()
    bias = getattr(layer, "bias", None)
    b = None if bias is None else bias.detach().to("cpu", torch.float32).clone()
    return OutputHead(E, b)


@torch.no_grad()
def final_hidden_states(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    compute: Compute = CPU_FLOAT32,
) -> torch.Tensor:
    """Final hidden states after the final norm: input_ids (B, T) -> h (B, T, d) float32 on the model's device,
    with logits == h @ E.T + b.

    The body runs in ``compute``'s precision (bf16 autocast or float32); the inputs move to the model's device.
    """
    if attention_mask is not None:
        attention_mask = attention_mask.to(model.device)
    with compute.autocast():
        outputs = model.base_model(input_ids=input_ids.to(model.device), attention_mask=attention_mask,
                                   use_cache=False)
    return outputs.last_hidden_state.to(torch.float32)


def with_output_head(model: PreTrainedModel, head: OutputHead) -> PreTrainedModel:
    """A deep copy of ``model`` whose output layer is ``head`` (cloned).

    The copy's head is a new, untied ``nn.Linear``: the input embedding of a tied model keeps its weights, in the
    copy and in the original.
    """
    edited = copy.deepcopy(model)
    layer = nn.Linear(head.d, head.V, bias=head.b is not None)
    layer.weight = nn.Parameter(head.E.detach().clone(), requires_grad=False)
    if head.b is not None:
        layer.bias = nn.Parameter(head.b.detach().clone(), requires_grad=False)
    edited.set_output_embeddings(layer)
    edited.config.tie_word_embeddings = False
    return edited.eval()


def iter_logits(h: torch.Tensor, head: OutputHead, chunk_size: int = 1024) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, logits)`` for consecutive chunks of positions: h (N, d) -> logits (n <= chunk_size, V)."""
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if h.ndim != 2 or h.shape[1] != head.d:
        raise ValueError(f"h must have shape (N, {head.d}); got {tuple(h.shape)}")
    for start in range(0, h.shape[0], chunk_size):
        yield start, head.logits(h[start : start + chunk_size].to(torch.float32))


@torch.no_grad()
def check_head_identity(loaded, text: str = "The output layer of a language model encodes probabilities.") -> float:
    """Check ``model(ids).logits == h @ E.T + b`` on a short text; return the largest relative deviation.

    Raises:
        ValueError: the model applies something after its output head (e.g. logit soft-capping or scaling), so
            the book's shortcuts would not reproduce its logits.
    """
    model = loaded.model
    input_ids = loaded.tokenizer(text, return_tensors="pt").input_ids[:, : min(16, loaded.n_ctx)]
    reference = model(input_ids=input_ids.to(model.device), use_cache=False).logits.to("cpu", torch.float32)
    head = output_head(model)
    recomputed = head.logits(final_hidden_states(model, input_ids).cpu())
    scale = reference.abs().max().clamp_min(1e-6)
    deviation = float((reference - recomputed).abs().max() / scale)
    if not deviation <= IDENTITY_RTOL:
        raise ValueError(
            f"model={loaded.name!r}: its logits differ from h @ E.T + b by {deviation:.2e} (relative); "
            f"it transforms logits after the output head, which this book does not support"
        )
    return deviation
