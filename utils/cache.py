"""The one on-disk cache of the book: keys, versions, atomic writes, and "unreadable or mismatched: rebuild".

Every expensive result (activation passes, steering normalisers, generations, argmax verdicts, checkpoint probes)
goes through these few functions:

- :func:`key_of` hashes everything that determines a result (a JSON-able payload that includes the kind's code
  version), so a change of input or of code gives a new file rather than a stale one;
- :func:`write` saves through a temporary file in the same folder and ``os.replace``, so a reader never sees a
  half-written file;
- :func:`read` returns None, after saying why, for a missing, unreadable or mismatched file, so the caller rebuilds.

What the cache keeps, and why (sizes after a full build of the default book: 2.01 GB = 1.88 GiB in all):

- ``models/``: the float32 conversion of each offline model (540 MB for the default). Converting the GGUF file takes
  about 40 s, and every chapter and rerun loads the model.
- ``activations/``: the passes of the chapters (hidden states, each window's log-sum of softmax, alpha), minutes of
  model time each and read by every chapter. The rerun pages (robustness, models) and chapter 4's per-checkpoint
  probes do not store their own passes: their numbers are kept in their results files and the probes' cache, and
  the published build re-executes them only when their code changes.
  A pass keeps its output head's fingerprint, not the head (113 MB for the default): every reader has the model
  loaded and takes the head from it.
- ``dynamics/``: chapter 4's checkpoints (minutes of training; every checkpoint is probed and its E reread), each a
  loadable ``save_pretrained`` folder whose tokenizer files are hard links to the run's one copy; a finished run's
  resume file keeps its losses, not its optimizer state.
- ``argmax/``: chapter 5's verdicts with their witnesses (a point per argmaxable token: 113 MB for the default head),
  stored as float32 plus the float64 rows float32 does not hold, read back bit for bit, and their texts (statuses)
  only as wide as their longest value; they are minutes of LP and braid work, reused by chapter 5, the robustness
  page and the models page.
- small results: probes, seen counts, generations and steering normalisers (kilobytes to a few MB).

A hand-written module rather than joblib's ``Memory``: the payloads are torch tensors loaded with
``weights_only=True``, numpy archives loaded without pickle and JSON, each checked against its key and shapes on
reading, and none of them should ever be unpickled from disk.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from .paths import cache_dir

T = TypeVar("T")


def key_of(payload: dict[str, Any]) -> str:
    """20 hex digits of the sha256 of ``payload`` as sorted JSON (non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def fingerprint(array: Any) -> str:
    """16 hex digits of the sha256 of an array's dtype, shape and bytes (a tensor or anything numpy takes)."""

    values = array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)
    values = np.ascontiguousarray(values)
    digest = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
    digest.update(values.tobytes())
    return digest.hexdigest()[:16]


def path_of(kind: str, key: str, suffix: str) -> Path:
    """Where the result ``key`` of ``kind`` (a folder name such as ``"activations"``) lives: ``<cache>/<kind>/``."""
    return cache_dir() / kind / f"{key}{suffix}"


def read(path: Path, load: Callable[[Path], T], valid: Callable[[T], bool] = lambda value: True) -> T | None:
    """``load(path)`` if the file exists, loads and passes ``valid``; otherwise None (the caller rebuilds).

    Any failure to load counts as "unreadable": a truncated file, garbage, a file of another format.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        value = load(path)
    except Exception as error:  # noqa: BLE001 - any failure to read means: rebuild
        print(f"Cache {path.name} is unreadable ({type(error).__name__}); rebuilding it")
        return None
    if not valid(value):
        print(f"Cache {path.name} does not match its key; rebuilding it")
        return None
    return value


def write(path: Path, save: Callable[[Path], None]) -> None:
    """``save(temporary path)`` in ``path``'s folder, then rename it to ``path``: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a lock file beside what it guards, created on demand) for the block: of
    several processes that make the same entry at once (pages or runs the build executes side by side), one makes
    it while the others wait, then find it made. The operating system releases the lock if the holder dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_torch(path: Path) -> dict[str, Any]:
    """A dict of tensors written by :func:`save_torch` (``weights_only``: nothing is unpickled)."""

    return torch.load(path, map_location="cpu", weights_only=True)


def save_torch(payload: dict[str, Any]) -> Callable[[Path], None]:
    """A saver of ``payload`` (a dict of tensors and strings) for :func:`write`."""

    return lambda path: torch.save(payload, path)


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def save_json(payload: Any) -> Callable[[Path], None]:
    """A saver of ``payload`` as JSON for :func:`write`."""
    return lambda path: Path(path).write_text(json.dumps(payload, indent=1))  # key order kept (table columns)
