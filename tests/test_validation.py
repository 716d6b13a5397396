"""Argument checks name the parameter, the value and what is allowed."""
from __future__ import annotations

import numpy as np
import pytest

from utils.validation import check_choice, check_float, check_int, check_positive_int, check_token_ids


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


def test_token_ids_come_back_as_int64_arrays():
    for tokens in (3, np.int32(3), [3], np.array([3], dtype=np.uint8)):
        ids = check_token_ids("token", tokens, 5)
        assert ids.dtype == np.int64 and ids.tolist() == [3]
    assert check_token_ids("tokens", range(5), 5).tolist() == [0, 1, 2, 3, 4]
    assert check_token_ids("tokens", [4, 4, 0], 5).tolist() == [4, 4, 0]  # repeats allowed unless distinct


@pytest.mark.parametrize("bad", [-1, 5, 10**6])
def test_token_ids_outside_the_vocabulary_name_the_id_and_the_range(bad):
    with pytest.raises(ValueError, match=rf"tokens holds {bad}, outside the vocabulary; allowed ids are 0\.\.4"):
        check_token_ids("tokens", [0, bad, 1], 5)


@pytest.mark.parametrize("tokens", [1.5, [0.0, 1.0], [True, False], ["a"]])
def test_token_ids_reject_non_integers(tokens):
    with pytest.raises(TypeError, match=r"token=.* must hold integer token ids in 0\.\.4"):
        check_token_ids("token", tokens, 5)


@pytest.mark.parametrize("tokens", [[], np.zeros((2, 2), dtype=np.int64)])
def test_token_ids_reject_empty_or_nested_input(tokens):
    with pytest.raises(ValueError, match=r"tokens=.* must be one token id or a non-empty 1-d list of ids in 0\.\.4"):
        check_token_ids("tokens", tokens, 5)


def test_distinct_token_ids_name_the_repeated_id():
    assert check_token_ids("tokens", [2, 0], 5, distinct=True).tolist() == [2, 0]
    with pytest.raises(ValueError, match="tokens repeats token id 3; each id may appear only once"):
        check_token_ids("tokens", [1, 3, 0, 3], 5, distinct=True)
    with pytest.raises(ValueError, match="V=0 must be >= 1"):
        check_token_ids("tokens", [0], 0)
