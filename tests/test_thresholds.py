"""The one threshold search: checked against brute force on random boolean sequences."""
from __future__ import annotations

import math

import numpy as np
import pytest

from utils.thresholds import leading_passes, reach


def brute_leading_passes(ok: list[bool]) -> int:
    """The largest n such that ok[:n] are all True, by trying every n."""
    return max(n for n in range(len(ok) + 1) if all(ok[:n]))


@pytest.mark.parametrize("seed", range(5))
def test_leading_passes_matches_brute_force_on_random_sequences(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(0, 12))
        ok = rng.random(n) < rng.uniform(0.3, 1.0)  # mostly-true sequences, so long leading runs occur
        assert leading_passes(ok) == brute_leading_passes(ok.tolist())
        assert leading_passes(ok.tolist()) == leading_passes(ok)


@pytest.mark.parametrize("seed", range(3))
def test_reach_is_the_last_key_before_the_first_failure(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(0, 10))
        keys = np.sort(rng.random(n))
        ok = rng.random(n) < 0.8
        # brute force: the largest key k such that every key <= k passes
        passing = [k for k in keys if all(ok[keys <= k])]
        expected = max(passing) if passing else None
        assert reach(keys, ok) == expected


def test_reach_finds_the_first_step_of_the_final_run_when_walked_backwards():
    steps = [0, 10, 20, 30, 40, 50]
    ok = [True, False, True, True, False, True]
    assert reach(steps[::-1], ok[::-1]) == 50
    ok = [True, False, True, True, True, True]
    assert reach(steps[::-1], ok[::-1]) == 20
    assert reach(steps[::-1], [True] * 6) == 0
    ok = [True] * 5 + [False]  # the last checkpoint fails: there is no final run
    assert reach(steps[::-1], ok[::-1]) is None


def test_edge_cases_and_bad_input():
    assert leading_passes([]) == 0
    assert leading_passes(np.array([], dtype=bool)) == 0
    assert leading_passes([True, True]) == 2
    assert reach([], [], default=1.0) == 1.0
    assert math.isnan(reach([0.1, 0.2], [False, True], default=float("nan")))
    with pytest.raises(TypeError, match="ok must hold booleans; got dtype float64"):
        leading_passes([0.0, 1.0])
    with pytest.raises(ValueError, match=r"ok must be a 1-d sequence of booleans; got shape \(2, 1\)"):
        leading_passes([[True], [False]])
    with pytest.raises(ValueError, match=r"keys \(3\) and ok \(2\) differ in length"):
        reach([1, 2, 3], [True, True])
