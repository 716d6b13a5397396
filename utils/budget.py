"""The book's compute budget: what the model passes and the trainings of a build cost in FLOPs, against the time the
build took.

Work that runs a model charges its FLOPs here with :func:`charge`; when the environment variable
``LOGLINEAR_BUDGET`` names a ledger file (``bookbuild`` sets it for a build, and every kernel it starts, the rerun
pages' nested ones included, inherits it), each charge is appended to it as one JSON line; otherwise a charge does
nothing. :func:`summarize` adds the ledger up and divides by the machine's fp32 matrix-multiply rate: the *compute
floor*, the seconds the build's arithmetic needs at that rate. Chapter time over the floor is the build's overhead.

What is counted (dense products only, attention scores and element-wise work left out, a few % of a pass):

- a **model pass** of ``n`` tokens: ``2 * (weights of every linear map of the body + V * d of the head) * n``, whether
  the head's product is taken by the model or by the book's chunked softmax (:func:`forward_flops_per_token`); a
  pass that stops at the final hidden states (the features MAUVE scores) counts the body only
  (:func:`body_flops_per_token`);
- a **generation**: the body over every position it runs (with the KV cache each runs once; the last token drawn
  never runs) and the head where a token is drawn (:func:`generation_flops`);
- a **training step**: three times the forward FLOPs of its positions (forward, and the two products of the
  backward pass), the output layer's included (:func:`training_flops_per_step`).
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from transformers.pytorch_utils import Conv1D

BUDGET_ENV = "LOGLINEAR_BUDGET"
KINDS = ("pass", "generation", "training")


def linear_weights(model: torch.nn.Module, *, exclude: torch.nn.Module | None = None) -> int:
    """Weights of every linear map of ``model``: ``nn.Linear`` and GPT-2's ``Conv1D`` (those of ``exclude`` and its
    children left out)."""
    excluded = set() if exclude is None else {id(m) for m in exclude.modules()}
    return sum(m.weight.numel() for m in model.modules()
               if isinstance(m, (torch.nn.Linear, Conv1D)) and id(m) not in excluded)


def body_flops_per_token(model: Any) -> float:
    """FLOPs of one token through a causal LM's body, without its head: ``2 * body linear weights`` (a pass that
    takes only the final hidden states, :func:`utils.head.final_hidden_states`)."""
    return 2.0 * linear_weights(model.base_model, exclude=model.get_output_embeddings())


def forward_flops_per_token(model: Any) -> float:
    """FLOPs of one token through a causal LM and its head: ``2 * (body linear weights + V * d)``.

    The head (the output embeddings, tied or not) is counted once, as ``V * d``; embeddings looked up are free.
    """
    head = model.get_output_embeddings()
    vocabulary, dimension = head.weight.shape
    return body_flops_per_token(model) + 2.0 * vocabulary * dimension


def generation_flops(model: Any, rows: int, prompt_length: int, new_tokens: int) -> float:
    """FLOPs of sampling ``new_tokens`` tokens after prompts of ``prompt_length`` tokens, for ``rows`` rows, with the
    KV cache as ``generate`` runs it: the body over every position but the last one drawn (which is never run), the
    head only where a next token is drawn (``generate`` keeps the prompt's last logits only)."""
    head = model.get_output_embeddings()
    vocabulary, dimension = head.weight.shape
    body_positions = prompt_length + new_tokens - 1
    return rows * (body_flops_per_token(model) * body_positions + 2.0 * vocabulary * dimension * new_tokens)


def training_flops_per_step(model: Any, tokens_per_step: int, positions_per_step: int) -> float:
    """FLOPs of one optimizer step: 3 x (the body's forward over ``tokens_per_step`` tokens + the head's over the
    ``positions_per_step`` positions that predict a next token)."""
    head = model.get_output_embeddings()
    vocabulary, dimension = head.weight.shape
    body = 2.0 * linear_weights(model.base_model, exclude=head) * tokens_per_step
    return 3.0 * (body + 2.0 * vocabulary * dimension * positions_per_step)


def ledger_path() -> Path | None:
    """The ledger file of the build in progress, or None outside a build."""
    path = os.environ.get(BUDGET_ENV)
    return Path(path) if path else None


def charge(kind: str, flops: float, *, tokens: int = 0, detail: str = "") -> None:
    """Append one charge to the ledger (nothing outside a build).

    Args:
        kind: one of :data:`KINDS`.
        flops: the work's FLOPs (see the module's docstring for what is counted).
        tokens: tokens run through the model (passes), drawn (generations) or trained on.
        detail: what it was, for the reader of the ledger (model, corpus, steps).
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not a budget kind; choose one of {list(KINDS)}")
    if not flops >= 0:
        raise ValueError(f"flops={flops!r} must be a non-negative number")
    path = ledger_path()
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"kind": kind, "flops": float(flops), "tokens": int(tokens), "detail": detail}) + "\n"
    with open(path, "a", encoding="utf-8") as ledger:  # one short line per write: appends do not interleave
        ledger.write(line)


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """The charges of a ledger file (empty when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def summarize(charges: list[dict[str, Any]], chapter_seconds: float, fp32_gflops: float) -> dict[str, Any]:
    """FLOPs and tokens by kind, the compute floor (seconds at ``fp32_gflops``) and chapter time over the floor."""
    if not fp32_gflops > 0:
        raise ValueError(f"fp32_gflops={fp32_gflops!r} must be a positive rate")
    flops: dict[str, float] = defaultdict(float)
    tokens: dict[str, int] = defaultdict(int)
    for item in charges:
        flops[item["kind"]] += item["flops"]
        tokens[item["kind"]] += item["tokens"]
    total = sum(flops.values())
    floor = total / (fp32_gflops * 1e9)
    return {"flops": dict(flops), "tokens": dict(tokens), "total_flops": total, "fp32_gflops": fp32_gflops,
            "floor_seconds": floor, "chapter_seconds": chapter_seconds,
            "ratio": chapter_seconds / floor if floor > 0 else float("nan")}


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist), a file with several hard links counted once
    (as ``du`` counts it)."""
    folder = Path(folder)
    if not folder.exists():
        return 0
    sizes = {}
    for path in folder.rglob("*"):
        if path.is_file():
            stat = path.stat()
            sizes[(stat.st_dev, stat.st_ino)] = stat.st_size
    return sum(sizes.values())
