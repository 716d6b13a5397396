"""The rerun pages' parameters (utils.reruns.parameters): each page's defaults and tiny values pass, and a bad value
raises naming the parameter, the value and what is allowed."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from page_defaults import page_defaults

from utils.reruns.parameters import HeadlineParameters, ModelsParameters, RobustnessParameters

PARAMS_DIR = Path(__file__).parent / "params"
PAGES = {"98_models": ModelsParameters, "99_robustness": RobustnessParameters, "headlines": HeadlineParameters}


def tiny_values(page: str) -> dict:
    """The values test_book.py runs ``page`` with (the headlines template: those the models page passes it)."""
    values = yaml.safe_load((PARAMS_DIR / f"{'98_models' if page == 'headlines' else page}.yaml").read_text())
    return values.pop("headline_parameters") if page == "headlines" else values


@pytest.mark.parametrize("page", list(PAGES))
def test_the_pages_defaults_and_tiny_values_pass(page):
    defaults = page_defaults(page)
    parameters = PAGES[page].from_namespace({**defaults, "unrelated": object()})
    assert parameters.n_tokens == defaults["n_tokens"] and parameters.batch_size == defaults["batch_size"]
    PAGES[page].from_namespace({**defaults, **tiny_values(page)})
    with pytest.raises(ValueError, match=r"lack \['n_boot_texts'\]"):
        PAGES[page].from_namespace({k: v for k, v in defaults.items() if k != "n_boot_texts"})


@pytest.mark.parametrize(("page", "name", "value", "error", "message"), [
    ("headlines", "batch_size", 0, ValueError, "batch_size=0 must be >= 1"),
    ("headlines", "n_tokens_test", 2.5, TypeError, "n_tokens_test=2.5 must be an integer"),
    ("headlines", "sample_seed", -1, ValueError, "sample_seed=-1 must be >= 0"),
    ("headlines", "argmax_max_tokens", 0, ValueError, "argmax_max_tokens=0 must be >= 1"),
    ("98_models", "models", "gpt2", ValueError, "models='gpt2' must be a list of model names"),
    ("98_models", "models", ["gpt2", ""], ValueError, r"models=\['gpt2', ''\] must be a list"),
    ("98_models", "n_boot_texts", 0, ValueError, "n_boot_texts=0 must be >= 1"),
    ("98_models", "sample_seed", -1, ValueError, "sample_seed=-1 must be >= 0"),
    ("98_models", "window_length", 1, ValueError, "window_length=1 must be >= 2"),
    ("98_models", "trained_argmax_max_tokens", -5, ValueError, "trained_argmax_max_tokens=-5 must be >= 1"),
    ("99_robustness", "window_lengths", [1], ValueError, "window_lengths=1 must be >= 2"),
    ("99_robustness", "sample_seeds", [], ValueError, r"sample_seeds=\[\] and window_lengths=.* must each name"),
    ("99_robustness", "sample_seeds", [0, -1], ValueError, "sample_seeds=-1 must be >= 0"),
    ("99_robustness", "precisions", ["bfloat16"], ValueError, "must include 'float32'"),
    ("99_robustness", "precisions", ["float32", "fp8"], ValueError, "precisions='fp8' is not allowed; choose one of"),
    ("99_robustness", "n_tokens", 0, ValueError, "n_tokens=0 must be >= 1"),
])
def test_a_bad_value_is_named_with_what_is_allowed(page, name, value, error, message):
    with pytest.raises(error, match=message):
        PAGES[page].from_namespace({**page_defaults(page), name: value})
