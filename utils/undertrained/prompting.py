"""Verifying under-trained tokens by prompting (chapter 6): :func:`copy_probabilities` gives the probability the
model gives a token when asked to repeat it, in each of several prompt templates (batched; the prompts are built
from token ids, so the token itself is never re-encoded); a token is under-trained when the largest of them is
below a threshold, as Magikarp verifies.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..head import output_head
from ..validation import check_positive_int
from .indicators import CLOSENESS, precision_lift_interval


@dataclass(frozen=True)
class CopyTemplate:
    """A copy prompt: ``prefix`` text, then ``tail`` text whose ``{token}`` slots receive the candidate as an id
    (never re-encoded); after the tail the model should say the token."""

    name: str
    prefix: str
    tail: str


REPEAT_EXAMPLES = (("hello", "hello"), ("2023", "2023"), (" river", " river"))


#: this book's copy prompts (three, as Magikarp uses three; the wording is this book's): a token is under-trained
#: when the largest of its probabilities over the templates is below the threshold
TEMPLATES = (
    CopyTemplate("input-output", "Repeat each input exactly.\n"
                 + "".join(f"Input:{a}\nOutput:{b}\n" for a, b in REPEAT_EXAMPLES) + "Input:", "{token}\nOutput:"),
    CopyTemplate("quoted", 'Each answer repeats the quoted word.\nSay "apple".\n"apple"\nSay "42".\n"42"\nSay "',
                 '{token}".\n"'),
    CopyTemplate("repeated", "The same piece of text, over and over:\n", "{token}" * 8),
)


def template_ids(tokenizer: Any, template: CopyTemplate = TEMPLATES[0]) -> tuple[list[int], list[list[int]]]:
    """Token ids of a copy prompt: (the prefix, the tail's pieces between its ``{token}`` slots). The pieces are
    encoded text; the candidate goes between them as an id."""
    prefix = list(tokenizer(template.prefix, add_special_tokens=False)["input_ids"])
    pieces = [list(tokenizer(piece, add_special_tokens=False)["input_ids"]) if piece else []
              for piece in template.tail.split("{token}")]
    if not prefix or len(pieces) < 2:
        raise ValueError(f"template {template.name!r} needs a non-empty prefix and at least one {{token}} slot")
    return prefix, pieces


def copy_prompts(tokens: np.ndarray, prefix: Sequence[int], pieces: Sequence[Sequence[int]]) -> torch.Tensor:
    """(n, len(prefix) + tail) int64 prompts, one per token: prefix, then the pieces with the token between each
    two (all the same length: no padding)."""
    tokens = torch.as_tensor(np.asarray(tokens, dtype=np.int64))[:, None]
    n = len(tokens)
    parts = [torch.tensor(list(prefix) + list(pieces[0]), dtype=torch.int64).expand(n, -1)]
    for piece in pieces[1:]:
        parts += [tokens, torch.tensor(list(piece), dtype=torch.int64).expand(n, -1)]
    return torch.cat(parts, dim=1)


@torch.no_grad()
def repetition_probabilities(loaded: Any, tokens: Any, template: CopyTemplate = TEMPLATES[0], *,
                             batch_size: int = 32) -> np.ndarray:
    """The probability the model gives each token after the tail of its copy prompt in one ``template``: -> (n,)
    float64.

    The shared prefix runs once and its key/value cache is repeated over each batch, so only the tail runs per
    prompt (the result equals a full forward pass of the prompt; a test checks it). Logits are ``h @ E.T + b`` at
    the last position only, one (batch, V) block at a time."""
    tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
    batch_size = check_positive_int("batch_size", batch_size)
    head = output_head(loaded.model)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= head.V):
        raise ValueError(f"tokens must lie in [0, {head.V}); got ids from {tokens.min()} to {tokens.max()}")
    prefix, pieces = template_ids(loaded.tokenizer, template)
    tails = copy_prompts(tokens, [], pieces)  # (n, tail length)
    body, device = loaded.model.base_model, loaded.model.device
    with loaded.compute.autocast():
        shared = body(input_ids=torch.tensor([prefix], device=device), use_cache=True).past_key_values
    out = np.empty(len(tokens), dtype=np.float64)
    for start in range(0, len(tokens), batch_size):
        block, ids = tails[start:start + batch_size], torch.as_tensor(tokens[start:start + batch_size])
        cache = copy.deepcopy(shared)
        cache.batch_repeat_interleave(len(block))
        with loaded.compute.autocast():
            h = body(input_ids=block.to(device), past_key_values=cache, use_cache=True).last_hidden_state
        log_p = torch.log_softmax(head.logits(h[:, -1].to("cpu", torch.float32)).double(), dim=-1)  # (B, V)
        out[start:start + batch_size] = log_p.gather(1, ids[:, None]).squeeze(1).exp().numpy()
    return out


def copy_probabilities(loaded: Any, tokens: Any, templates: Sequence[CopyTemplate] = TEMPLATES, *,
                       batch_size: int = 32) -> np.ndarray:
    """:func:`repetition_probabilities` of every token in every template: -> (n, len(templates)) float64."""
    if not templates:
        raise ValueError("templates must hold at least one copy template")
    return np.stack([repetition_probabilities(loaded, tokens, t, batch_size=batch_size) for t in templates], axis=1)


@dataclass
class Prompting:
    """The tokens chapter 6 prompts and what the copy prompt said of each.

    Attributes:
        tops: indicator -> (k,) int64, its top tokens (the reference left out).
        control: (n_control,) int64, random tokens outside the reference (the base rate).
        reference: (n_reference,) int64, the unused reference tokens.
        probability: token id -> the largest probability at the answer position over the copy templates, for
            every prompted token.
        threshold: under-trained means a probability below this.
        templates: the names of the copy templates (empty when only the largest probability is known).
        per_template: token id -> (len(templates),) its probability in each template.
    """

    tops: dict[str, np.ndarray]
    control: np.ndarray
    reference: np.ndarray
    probability: dict[int, float]
    threshold: float
    templates: tuple[str, ...] = ()
    per_template: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def prompted(self) -> np.ndarray:
        """(n,) int64 sorted distinct tokens: every top list, the control and the reference."""
        return prompted_tokens(self.tops, self.control, self.reference)

    @property
    def verified(self) -> dict[int, bool]:
        """Token id -> under-trained (probability below the threshold), in the order of :attr:`prompted`."""
        return {token: p < self.threshold for token, p in self.probability.items()}

    @property
    def candidates(self) -> np.ndarray:
        """(n,) int64 sorted distinct tokens of the top lists."""
        return np.unique(np.concatenate(list(self.tops.values())))

    @property
    def under(self) -> np.ndarray:
        """(n,) int64 the candidates verified as under-trained, sorted."""
        return np.array([t for t in self.candidates if self.probability[int(t)] < self.threshold], dtype=np.int64)

    def hits(self, tokens: Any) -> np.ndarray:
        """(n,) bool: whether each of ``tokens`` was verified as under-trained (each must have been prompted)."""
        missing = [int(t) for t in tokens if int(t) not in self.probability]
        if missing:
            raise ValueError(f"tokens {missing[:5]} were not prompted")
        return np.array([self.probability[int(t)] < self.threshold for t in tokens], dtype=bool)

    def lift(self, *, seed: int = 0, indicator: str = CLOSENESS):
        """Precision of an ``indicator``'s top list (by default the closeness one) minus the control's verified
        share, with its interval over tokens (:func:`precision_lift_interval`): -> (lift, Interval)."""
        return precision_lift_interval(self.hits(self.tops[indicator]), self.hits(self.control), seed=seed)


def prompted_tokens(tops: Mapping[str, np.ndarray], control: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The tokens to prompt: every top list, the control and the reference, sorted and distinct: -> (n,) int64."""
    return np.unique(np.concatenate([*tops.values(), control, reference])).astype(np.int64)


def verify_by_prompting(loaded: Any, tops: Mapping[str, np.ndarray], control: np.ndarray, reference: np.ndarray,
                        threshold: float, *, templates: Sequence[CopyTemplate] = TEMPLATES,
                        batch_size: int = 32) -> Prompting:
    """Prompt every top token, control token and reference token once in each template (:func:`copy_probabilities`)
    and keep the largest probability of each (Magikarp's verification): -> :class:`Prompting`."""
    prompted = prompted_tokens(tops, control, reference)
    matrix = copy_probabilities(loaded, prompted, templates, batch_size=batch_size)  # (n, len(templates))
    return Prompting(dict(tops), np.asarray(control), np.asarray(reference),
                     dict(zip(prompted.tolist(), matrix.max(axis=1).tolist())), threshold,
                     tuple(t.name for t in templates), dict(zip(prompted.tolist(), matrix)))
