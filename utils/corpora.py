"""The book's small committed corpora (see data/README.md) and their cutting into fixed-length token windows."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from .paths import DATA_DIR
from .validation import check_choice, check_positive_int

CORPORA: tuple[str, ...] = ("wikipedia", "shakespeare", "bible")
SPLITS: tuple[str, ...] = ("train", "test")
IN_DISTRIBUTION = "wikipedia"


def corpus_path(name: str, split: str = "train") -> Path:
    check_choice("corpus", name, CORPORA)
    check_choice("split", split, SPLITS)
    return DATA_DIR / f"{name}_{split}.txt"


def read_corpus(name: str, split: str = "train") -> str:
    """The text of corpus ``name`` (one of :data:`CORPORA`), split ``"train"`` or ``"test"``."""
    path = corpus_path(name, split)
    if not path.exists():
        raise FileNotFoundError(f"{path.name} is missing; rebuild the corpora with `python data/build_corpora.py`")
    return path.read_text(encoding="utf-8")


def corpus_fingerprint(name: str, split: str = "train") -> str:
    """sha256 of the corpus file (part of every cache key that depends on it)."""
    return hashlib.sha256(corpus_path(name, split).read_bytes()).hexdigest()[:16]


def token_windows(
    tokenizer: PreTrainedTokenizerBase, text: str, window_length: int, n_tokens: int
) -> torch.Tensor:
    """Cut the first ``n_tokens`` tokens of ``text`` into consecutive windows.

    Returns:
        token ids, (n_windows, window_length) int64, with ``n_windows = n_tokens // window_length``.

    Raises:
        ValueError: ``n_tokens`` is smaller than one window, or the text has fewer tokens than asked for.
    """
    window_length = check_positive_int("window_length", window_length)
    n_tokens = check_positive_int("n_tokens", n_tokens)
    if n_tokens < window_length:
        raise ValueError(f"n_tokens={n_tokens} must be at least window_length={window_length}")
    n_windows = n_tokens // window_length
    needed = n_windows * window_length
    token_ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    if len(token_ids) < needed:
        raise ValueError(
            f"n_tokens={n_tokens} is more than the corpus holds ({len(token_ids)} tokens); "
            f"use at most {len(token_ids) // window_length * window_length}"
        )
    return torch.tensor(token_ids[:needed], dtype=torch.int64).reshape(n_windows, window_length)
