"""Which checkpoints to probe, and loading them: folders written by :func:`utils.dynamics.training.train_run`, or
Pythia's hub revisions (``EleutherAI/pythia-*`` at ``stepN``); identical checkpoints (same hash of ``E``) detected.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, GPTNeoXForCausalLM, PreTrainedTokenizerBase

from ..head import check_head_identity, output_head
from ..models import LoadedModel, hub_offline, load_model

# Pythia's published checkpoints: step0, the powers of two up to 512, then every 1000 steps up to 143000
PYTHIA_STEPS: frozenset[int] = frozenset([0] + [2**k for k in range(10)] + list(range(1000, 143001, 1000)))
PYTHIA_REVISION = re.compile(r"^step(\d+)$")


class CheckpointUnavailableError(ValueError):
    """The checkpoints to probe cannot be loaded on this machine (hub unreachable and not in a local cache)."""


@dataclass(frozen=True)
class CheckpointRef:
    """One checkpoint: a folder or hub id (``name_or_path``) with an optional hub ``revision``."""

    step: int
    name_or_path: str
    revision: str | None
    label: str


def check_pythia_revision(revision: str) -> int:
    """The step of a Pythia revision ``"stepN"``; raises ``ValueError`` unless N is one of Pythia's checkpoints."""
    match = PYTHIA_REVISION.match(revision) if isinstance(revision, str) else None
    if match is None:
        raise ValueError(f"pythia_revisions: revision={revision!r} must look like 'step1000' (step<N>)")
    step = int(match.group(1))
    if step not in PYTHIA_STEPS:
        raise ValueError(
            f"pythia_revisions: revision={revision!r} does not exist: Pythia has step0, step1, step2, step4, ..., "
            f"step512 and every 1000 steps from step1000 to step143000"
        )
    return step


def pythia_refs(model: str, revisions: Sequence[str]) -> list[CheckpointRef]:
    """Validated references to Pythia checkpoints, in step order (no network access)."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"pythia_model={model!r} must be a hub id such as 'EleutherAI/pythia-70m' or None")
    if isinstance(revisions, str) or len(revisions) == 0:
        raise ValueError(f"pythia_revisions={revisions!r} must be a non-empty list such as ['step0', 'step1000']")
    steps = {revision: check_pythia_revision(revision) for revision in revisions}
    if len(set(steps.values())) != len(steps) or len(steps) != len(revisions):
        raise ValueError(f"pythia_revisions={list(revisions)!r} repeats a revision")
    return [CheckpointRef(step=step, name_or_path=model, revision=revision, label=f"{model}@{revision}")
            for revision, step in sorted(steps.items(), key=lambda item: item[1])]


def is_hub_ref(ref: CheckpointRef) -> bool:
    """True when the checkpoint is a hub id rather than a local folder."""
    return not Path(ref.name_or_path).expanduser().is_dir()


_TOKENIZERS: dict[str, PreTrainedTokenizerBase] = {}


def _load_own_checkpoint(folder: Path):
    """A checkpoint written by :func:`~utils.dynamics.training.train_run`, as a ``utils.models.LoadedModel`` (what
    ``load_model(folder)`` returns, but the tokenizer, identical in every checkpoint of a run, is read once per
    process)."""

    tokenizer_file = folder / "tokenizer.json"
    tokenizer_key = hashlib.sha256(tokenizer_file.read_bytes()).hexdigest()
    if tokenizer_key not in _TOKENIZERS:
        _TOKENIZERS[tokenizer_key] = AutoTokenizer.from_pretrained(folder)
    model = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    weights = (folder / "model.safetensors").stat()
    identity = hashlib.sha256(f"{folder.resolve()}:{weights.st_size}:{weights.st_mtime_ns}".encode()).hexdigest()
    loaded = LoadedModel(model, _TOKENIZERS[tokenizer_key], str(folder), None, model.config.max_position_embeddings,
                         f"dynamics-checkpoint:{identity[:16]}")
    check_head_identity(loaded)
    return loaded


def load_checkpoint(ref: CheckpointRef):
    """The checkpoint as a ``utils.models.LoadedModel``: ``utils.models.load_model(name_or_path, revision)``, with a
    shortcut for the folders of :func:`~utils.dynamics.training.train_run`."""

    folder = Path(ref.name_or_path).expanduser()
    if ref.revision is None and (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") == "gpt_neox":
            return _load_own_checkpoint(folder)
    return load_model(ref.name_or_path, revision=ref.revision)


def try_load_checkpoint(ref: CheckpointRef, *, offline: bool = False) -> tuple[Any | None, str | None]:
    """``(loaded, None)``, or ``(None, reason)`` when the checkpoint cannot be had on this machine.

    Args:
        offline: read hub checkpoints only from the local cache (use when :func:`~utils.models.hub_reachable` is
            False: the hub client would otherwise retry for minutes per file).
    """
    try:
        with hub_offline(offline and is_hub_ref(ref)):
            return load_checkpoint(ref), None
    except (ValueError, OSError) as error:
        return None, str(error).splitlines()[0]


def checkpoint_embeddings(frame: Any, refs: Sequence[CheckpointRef]) -> list[np.ndarray]:
    """(V, d) output embeddings of the frame's distinct checkpoints, in step order, loaded from their refs."""

    by_label = {ref.label: ref for ref in refs}
    distinct = frame[frame["duplicate_of"] == ""]
    missing = [label for label in distinct["label"] if label not in by_label]
    if missing:
        raise ValueError(f"refs lack the checkpoints {missing} of the frame")
    return [output_head(load_checkpoint(by_label[label]).model).E.numpy() for label in distinct["label"]]



def embedding_hash(E: torch.Tensor | np.ndarray) -> str:
    """sha256 of an output embedding's float32 bytes and shape: equal iff the matrices are bit-identical."""
    array = E.detach().cpu().numpy() if isinstance(E, torch.Tensor) else np.asarray(E)
    array = np.ascontiguousarray(array, dtype=np.float32)
    digest = hashlib.sha256(repr(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def duplicate_checkpoints(hashes: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Checkpoints whose output embedding is identical to an earlier one's.

    Args:
        hashes: label -> :func:`embedding_hash`, in checkpoint order.

    Returns:
        label -> label of the first earlier checkpoint with the same hash (labels that are the first of their hash
        do not appear).
    """
    items = hashes.items() if isinstance(hashes, Mapping) else hashes
    first: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    for label, digest in items:
        if digest in first:
            duplicates[label] = first[digest]
        else:
            first[digest] = label
    return duplicates
