"""Chapter 1's parameters are checked in one place, each bad value named with what is allowed."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from page_defaults import page_defaults

from utils.encoding.parameters import EncodingParameters
from utils.tokenizers import gpt2_tokenizer

ROOT = Path(__file__).parents[1]


def chapter_defaults() -> dict:
    """The chapter's parameters cell, executed: its defaults."""
    return page_defaults("01_encoding")


def fake_loaded(V: int = 50257, d: int = 576, n_ctx: int = 1024):
    """What EncodingParameters.check_model reads of a loaded model: the head's shape, its context, a real tokenizer."""
    weight = SimpleNamespace(shape=(V, d))
    model = SimpleNamespace(get_output_embeddings=lambda: SimpleNamespace(weight=weight))
    return SimpleNamespace(model=model, n_ctx=n_ctx, tokenizer=gpt2_tokenizer())


def test_the_defaults_and_the_tiny_values_pass():
    defaults = chapter_defaults()
    parameters = EncodingParameters.from_namespace(defaults)
    assert parameters.top_k == defaults["top_k"] and parameters.second_model == defaults["second_model"]
    tiny = yaml.safe_load((ROOT / "tests" / "params" / "01_encoding.yaml").read_text())
    EncodingParameters.from_namespace({**defaults, **{k: v for k, v in tiny.items() if k != "model"}})
    parameters.check_model(fake_loaded(d=576, n_ctx=8192))  # SmolLM2-135M's head and context
    with pytest.raises(ValueError, match=r"lack \['top_k'\]"):
        EncodingParameters.from_namespace({k: v for k, v in defaults.items() if k != "top_k"})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("corpus", "klingon", "corpus='klingon' is not allowed; choose one of"),
        ("ood_corpora", ["bible", "klingon"], "ood_corpora='klingon' is not allowed"),
        ("ood_corpora", [], r"ood_corpora=\[\] must hold at least one value"),
        ("n_tokens", 0, "n_tokens=0 must be >= 1"),
        ("n_boot", 2.5, "n_boot=2.5 must be an integer"),
        ("second_model_tokens", -3, "second_model_tokens=-3 must be >= 1"),
        ("sample_seed", -1, "sample_seed=-1 must be >= 0"),
        ("seed", 1.5, "seed=1.5 must be an integer"),
        ("window_length", 1, "window_length=1 must be >= 2"),
        ("n_tokens_ood", 10**6, "n_tokens_ood=1000000 must be <= 32768"),
        ("n_random_bases", 1, "n_random_bases=1 must be >= 2"),
        ("window_counts", [4, 256], "window_counts=256 must be <= 255"),
        ("window_counts", [], r"window_counts=\[\] must hold"),
        ("top_k", [8, 0], "top_k=0 must be >= 1"),
        ("top_k", 8, "top_k=8 must be a list"),
        ("vocab_sizes", [4], "vocab_sizes=4 must be >= 8"),
        ("lasso_fractions", [0.1, 0.0], r"lasso_fractions=0.0 is outside the allowed interval \(0.0, 1.0\]"),
        ("test_fraction", 1.0, r"test_fraction=1.0 is outside the allowed interval \(0, 1\)"),
        ("sparse_share", 0, r"sparse_share=0.0 is outside the allowed interval \(0, 1\)"),
        ("kept_share", "most", "kept_share='most' must be a number"),
        ("r2_threshold", 1.5, r"r2_threshold=1.5 is outside the allowed interval \[-inf, 1\]"),
        ("second_model", 3, "second_model=3 must be a model name or None"),
    ],
)
def test_a_bad_value_is_named_with_what_is_allowed(name, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        EncodingParameters.from_namespace({**chapter_defaults(), name: value})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"window_length": 2048, "window_counts": [4]}, "window_length=2048 must be <= 1024"),
        ({"vocab_sizes": [1024, 60000]}, "vocab_sizes=60000 must be <= 50256"),
        ({"top_k": [8, 1000]}, "top_k=1000 must be <= 576"),
        ({"n_tokens": 10**8}, "n_tokens=100000000 asks for"),
        ({"n_tokens": 65536, "n_tokens_ood": 53248}, "n_tokens=53248 asks for .* the shakespeare test split"),
    ],
)
def test_a_value_the_model_or_corpus_cannot_serve_is_named(changes, message):
    parameters = EncodingParameters.from_namespace({**chapter_defaults(), **changes})  # fine without a model
    with pytest.raises(ValueError, match=message):
        parameters.check_model(fake_loaded())
