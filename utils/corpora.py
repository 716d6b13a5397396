"""The book's small committed corpora (see data/README.md) and the seeded sample of token windows drawn across a
split."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from .paths import DATA_DIR
from .validation import check_choice, check_int, check_positive_int

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


def documents(text: str) -> list[str]:
    """The documents of a corpus text: blocks separated by blank lines (see data/README.md)."""
    return [block.strip("\n") for block in text.split("\n\n") if block.strip()]


@dataclass
class WindowSample:
    """Token windows drawn across a whole corpus split.

    Attributes:
        token_ids: (n_windows, window_length) int64, in a seeded random order (any prefix is itself spread out).
        document: (n_windows,) int64, the document (blank-line block) holding each window's middle token.
        n_documents: documents in the split.
        split_tokens: tokens of the whole split.
    """

    token_ids: torch.Tensor
    document: torch.Tensor
    n_documents: int
    split_tokens: int

    @property
    def documents_covered(self) -> int:
        return int(torch.unique(self.document).numel())


def split_token_stream(tokenizer: PreTrainedTokenizerBase, text: str) -> tuple[np.ndarray, np.ndarray]:
    """The split as one token stream, and the document of each token.

    Documents (blank-line blocks: Wikipedia articles, Shakespeare speeches, Bible chapters) are tokenized one by one
    and joined by the tokens of the blank line between them, which count for the document they follow.

    Returns:
        token ids (N,) int64 and document index (N,) int64.
    """
    docs = documents(text)
    encoded = tokenizer(docs, add_special_tokens=False, verbose=False)["input_ids"]
    separator = tokenizer("\n\n", add_special_tokens=False, verbose=False)["input_ids"]
    ids: list[int] = []
    owner: list[int] = []
    for index, doc_ids in enumerate(encoded):
        piece = doc_ids + (separator if index + 1 < len(encoded) else [])
        ids += piece
        owner += [index] * len(piece)
    return np.asarray(ids, dtype=np.int64), np.asarray(owner, dtype=np.int64)


def check_window_count(
    tokenizer: PreTrainedTokenizerBase, corpus: str, split: str, window_length: int, n_tokens: int
) -> int:
    """Check, before any model pass, that corpus ``split`` holds ``n_tokens // window_length`` non-overlapping
    windows; returns that number.

    Raises:
        ValueError: naming ``n_tokens``, its value and the most the split allows.
    """
    window_length = check_positive_int("window_length", window_length)
    n_tokens = check_positive_int("n_tokens", n_tokens)
    if n_tokens < window_length:
        raise ValueError(f"n_tokens={n_tokens} must be at least window_length={window_length}")
    n_windows = n_tokens // window_length
    split_tokens = len(split_token_stream(tokenizer, read_corpus(corpus, split))[0])
    if split_tokens // n_windows < window_length:
        raise ValueError(
            f"n_tokens={n_tokens} asks for {n_windows} windows of {window_length} tokens, but the {corpus} {split} "
            f"split holds {split_tokens} tokens; use n_tokens of at most "
            f"{split_tokens // window_length * window_length}"
        )
    return n_windows


def sample_windows(
    tokenizer: PreTrainedTokenizerBase, text: str, window_length: int, n_tokens: int, seed: int
) -> WindowSample:
    """Draw ``n_tokens // window_length`` non-overlapping windows spread evenly over the whole split.

    Stratified sampling: the split's token stream (:func:`split_token_stream`) is cut into as many equal strata as
    windows, and each window starts at a seeded uniform offset inside its stratum, so every part of the split (every
    document, in proportion to its length) has its share and no two windows overlap. The windows are returned in a
    seeded random order, so any prefix of them is itself spread over the split.

    Raises:
        ValueError: a size is not a positive integer, the seed is not a non-negative integer, ``n_tokens`` is smaller
            than one window, or the split holds fewer non-overlapping windows than asked for.
    """
    window_length = check_positive_int("window_length", window_length)
    n_tokens = check_positive_int("n_tokens", n_tokens)
    seed = check_int("seed", seed, minimum=0)
    if n_tokens < window_length:
        raise ValueError(f"n_tokens={n_tokens} must be at least window_length={window_length}")
    n_windows = n_tokens // window_length
    ids, owner = split_token_stream(tokenizer, text)
    stratum = len(ids) // n_windows
    if stratum < window_length:
        raise ValueError(
            f"n_tokens={n_tokens} asks for {n_windows} windows of {window_length} tokens, but the split holds "
            f"{len(ids)} tokens; use n_tokens of at most {len(ids) // window_length * window_length}"
        )
    rng = np.random.default_rng(seed)
    starts = np.arange(n_windows) * stratum + rng.integers(0, stratum - window_length + 1, size=n_windows)
    starts = rng.permutation(starts)
    token_ids = torch.from_numpy(np.stack([ids[start : start + window_length] for start in starts]))
    return WindowSample(
        token_ids=token_ids,
        document=torch.from_numpy(owner[starts + window_length // 2]),
        n_documents=int(owner[-1]) + 1,
        split_tokens=len(ids),
    )
