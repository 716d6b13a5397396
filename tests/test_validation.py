"""Argument checks name the parameter, the value and what is allowed."""
from __future__ import annotations

import numpy as np
import pytest

from utils.validation import check_choice, check_float, check_int, check_positive_int


def test_choice_lists_the_allowed_values():
    assert check_choice("corpus", "bible", ["wikipedia", "bible"]) == "bible"
    with pytest.raises(ValueError, match=r"corpus='klingon' is not allowed; choose one of \['wikipedia', 'bible'\]"):
        check_choice("corpus", "klingon", ["wikipedia", "bible"])


@pytest.mark.parametrize("value", [0, -3])
def test_positive_int_rejects_non_positive(value):
    with pytest.raises(ValueError, match=rf"n_tokens={value} must be >= 1"):
        check_positive_int("n_tokens", value)


@pytest.mark.parametrize("value", [1.5, "8", True, None])
def test_int_rejects_non_integers(value):
    with pytest.raises(TypeError, match="window_length=.* must be an integer"):
        check_int("window_length", value)


def test_int_accepts_numpy_integers_and_enforces_maximum():
    assert check_int("k", np.int64(4), maximum=4) == 4
    with pytest.raises(ValueError, match="window_length=9000 must be <= 8192"):
        check_int("window_length", 9000, maximum=8192)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_float_rejects_non_finite(value):
    with pytest.raises(ValueError, match="must be finite"):
        check_float("r", value)


def test_float_interval_bounds_are_named():
    assert check_float("fraction", 0.0, low=0, high=1, high_inclusive=False) == 0.0
    with pytest.raises(ValueError, match=r"fraction=1.0 is outside the allowed interval \[0, 1\)"):
        check_float("fraction", 1.0, low=0, high=1, high_inclusive=False)
