"""Chapter 2's helpers: parameter checks that name the parameter (utils.steering.parameters), tables that equal a
direct computation (utils.steering.tables), and the pinned cache key of the base statistics (a changed key would
recompute every cache)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from page_defaults import page_defaults

from utils.head import OutputHead
from utils.steering import tables, wording
from utils.steering.edits import Edit, make_edit
from utils.steering.measure import (
    SteeringSweep,
    _base_key,
    base_statistics,
    steerable_range,
    steering_error,
    steering_sweep,
)
from utils.steering.parameters import SteeringParameters
from utils.tokenizers import gpt2_tokenizer
from utils.uncertainty import Check, Interval

PARAMETERS = {**page_defaults("02_steering"),
              **dict(corpus="wikipedia", ood_corpora=["bible"], n_tokens=512, n_tokens_test=256, batch_size=4,
                     n_buckets=3, tokens_per_bucket=20, few_shot_repeats=1, side_tokens_per_bucket=3,
                     check_windows=1, max_new_tokens=4, n_boot_texts=10, null_seeds=2, sample_seed=0,
                     test_fraction=0.2, band=2.0, few_shot_tolerance=0.05, r_values=[20, 0.05, 1, 5, 20],
                     side_r_values=[20, 0.05], r_headline=20, selection_windows=4, few_shot_windows=[1, 4])}


def test_the_parameters_give_sorted_grids():
    parameters = SteeringParameters.from_namespace(PARAMETERS)
    np.testing.assert_array_equal(parameters.r_grid, [0.05, 1, 5, 20])
    np.testing.assert_array_equal(parameters.side_r_grid, [0.05, 20])


def test_the_chapters_defaults_pass():
    defaults = page_defaults("02_steering")
    parameters = SteeringParameters.from_namespace(defaults)
    assert parameters.r_grid.dtype == np.float64 and list(parameters.r_grid) == sorted(set(defaults["r_values"]))
    with pytest.raises(ValueError, match=r"lack \['steer_word'\]"):
        SteeringParameters.from_namespace({k: v for k, v in defaults.items() if k != "steer_word"})


@pytest.mark.parametrize("name, value", [("corpus", "novels"), ("ood_corpora", ["novels"]), ("n_tokens", 0),
                                         ("band", 1.0), ("r_values", [0.5, -2]), ("r_headline", 5.0),
                                         ("test_fraction", 1.0)])
def test_bad_parameter_is_a_clear_error(name, value):
    with pytest.raises((ValueError, TypeError), match=name.rstrip("s") if name == "ood_corpora" else name):
        SteeringParameters.from_namespace({**PARAMETERS, name: value})


def test_the_steered_word_and_the_windows_are_checked_against_the_model():
    loaded = SimpleNamespace(n_ctx=1024, tokenizer=gpt2_tokenizer())
    parameters = SteeringParameters.from_namespace(PARAMETERS)
    parameters.check_model(loaded)
    assert parameters.steer_token(loaded) == gpt2_tokenizer()(" the")["input_ids"][0]
    many = SteeringParameters.from_namespace({**PARAMETERS, "steer_word": " antidisestablishmentarianism"})
    with pytest.raises(ValueError, match="steer_word=' antidisestablishmentarianism' is .* tokens .*; give one token"):
        many.check_model(loaded)
    with pytest.raises(ValueError, match="selection_windows=8 must be <= 4"):
        SteeringParameters.from_namespace({**PARAMETERS, "selection_windows": 8}).check_model(loaded)
    with pytest.raises(ValueError, match="window_length=2048 must be <= 1024"):
        SteeringParameters.from_namespace({**PARAMETERS, "window_length": 2048}).check_model(loaded)


def test_base_statistics_cache_key_is_pinned():
    """The key of the cached base statistics must not change when the code is moved (it was computed before the
    package split); change it only together with ``CODE_VERSION``."""
    head = OutputHead(torch.arange(12, dtype=torch.float32).reshape(4, 3))
    assert _base_key(SimpleNamespace(meta={"key": "abc123"}, head=head), 16, 1024) == "d96e1abfefc203ac752b"


def _planted_sweep() -> tuple[SteeringSweep, pd.DataFrame]:
    """Two buckets of two tokens: bucket 0 is steered exactly, bucket 1 reaches half of every target."""
    r_values = np.array([0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0])
    exact = np.log(r_values)[:, None].repeat(2, axis=1)
    after = np.concatenate([exact, exact / 2], axis=1)[None]  # (1 edit, n_r, 4 tokens), log alpha before = 0
    sweep = SteeringSweep(np.arange(4), r_values, [Edit("logit_bias", None, None)], np.zeros(4), after)
    sample = pd.DataFrame({"token": np.arange(4), "bucket": [0, 0, 1, 1], "bucket_label": ["a", "a", "b", "b"]})
    return sweep, sample


def test_steerable_ranges_equal_the_range_of_each_bucket():
    sweep, sample = _planted_sweep()
    ranges = tables.steerable_ranges(sample, sweep, sweep.edits, band=2.0)
    assert ranges[["r up", "r down"]].to_numpy().tolist() == [[100.0, 0.01], [2.0, 0.5]]  # half of log 10 > log 2
    for bucket in (0, 1):
        direct = steerable_range(sweep, 0, 2.0, sample["bucket"].to_numpy() == bucket)
        assert tuple(ranges.loc[ranges.bucket == bucket, ["r up", "r down"]].iloc[0]) == direct
    assert ranges["tokens"].tolist() == [2, 2]


def test_edit_mechanics_shift_is_exact_where_the_encoding_is():
    """With every hidden state equal to -A, every mask and the minimal-norm edit shift the logit by exactly log r
    (c = 1 at every position), as the logit bias does by construction; errors equal steering_error."""
    g = torch.Generator().manual_seed(0)
    V, d, N = 200, 5, 30
    head = OutputHead(torch.randn(V, d, generator=g))
    A = 0.5 * torch.randn(d, generator=g).double()
    hidden = (-A).float().expand(N, d).clone()
    edits = [make_edit(A.numpy(), "mask", k) for k in (1, 3, d)]
    edits += [make_edit(A.numpy(), "min_norm"), make_edit(A.numpy(), "logit_bias")]
    sweep = steering_sweep(base_statistics(hidden, head, progress=False), [3, 7], [0.1, 10], edits, progress=False)
    training = steering_error(sweep, 10)
    table = tables.edit_mechanics(edits, hidden, hidden[:5], sweep, training, 10)
    np.testing.assert_allclose(table["mean shift (held-out)"], 1.0, atol=1e-6)
    np.testing.assert_allclose(table["mean shift (training)"], 1.0, atol=1e-6)
    np.testing.assert_allclose(table["std of shift (held-out)"], 0.0, atol=1e-6)
    np.testing.assert_allclose(table["held-out error"], steering_error(sweep, 10))
    assert table["k"].tolist()[:3] == [1, 3, d] and table["k"].isna().tolist()[3:] == [True, True]
    assert table["‖ΔE_w‖ per unit log r"].iloc[-1] == 0.0
    assert table["‖ΔE_w‖ per unit log r"].iloc[3] == pytest.approx(1 / float(A.norm()))


def test_scorecard_table_words_ratios_and_rounds():
    checks = [Check("up", 0.12345, Interval(0.1, 0.2), math.log(2), "below"),
              Check("down", 0.9, Interval(0.8, 1.0), math.log(2), "below")]
    table = tables.scorecard_table(checks, [("held-out text", 20.0), ("held-out text", 1 / 20)])
    assert table["r"].tolist() == ["20", "1/20"]
    assert table["median |log(achieved/target)|"].tolist() == [0.123, 0.9]
    assert table["verdict"].tolist() == [checks[0].verdict, checks[1].verdict]


def test_direction_and_spread_text_counts_targets_and_band():
    import pandas as pd

    from utils.steering.wording import direction_and_spread_text

    summary = pd.DataFrame({"target": [0.05, 0.5, 2.0, 20.0], "median": [0.5, 1.2, 1.5, 8.0],
                            "q25": [0.25, 1.0, 1.0, 4.0], "q75": [1.0, 1.5, 2.0, 12.0]})
    text = direction_and_spread_text(summary, 20.0)
    assert text.startswith("the medians move the right way at 3 of 4 targets")  # 0.5 -> 1.2 goes the wrong way
    assert "a factor of 3.0 at r = 20 and 4.0 at r = 1/20" in text
    with pytest.raises(ValueError, match="r_headline=5"):
        direction_and_spread_text(summary, 5.0)


def test_choice_stability_and_reference_wording_follow_the_numbers():
    shares = pd.Series([0.0, 0.2, 0.75, 0.05], index=pd.Index([1, 4, 32, 64], name="k"))
    assert wording.choice_stability_text(shares, 32, 200) == ("k = 32 (chosen here) in 75% of the 200 resamples, "
                                                              "k = 4 in 20% and k = 64 in 5%")
    single = wording.choice_stability_text(pd.Series([1.0], index=[8]), 8, 50)
    assert single == "k = 8 (chosen here) in 100% of the 50 resamples"
    with pytest.raises(ValueError, match="chosen_k=2"):
        wording.choice_stability_text(shares, 2, 200)
    beside = pd.DataFrame({"text": ["a", "a", "b"], "r": [20.0, 0.05, 20.0], "error": [0.5, 1.4, 0.6],
                           "low": [0.3, 1.0, 0.55], "high": [0.9, 1.9, 0.7], "reference": [0.4, 0.7, 0.58],
                           "norm": [0.05] * 3, "lowest null mean": [0.45, 0.8, 0.5], "below": [False, True, False],
                           "least": [True, True, False]})
    assert wording.reference_text(beside, "the minimal-norm edit", 0.1, ("a", 0.05)) == (
        "the minimal-norm edit (0.50 times the mask's norm) errs less than the mask and than every null's mean over "
        "seeds in 2 of 3 settings, and below the mask's whole interval over texts in 1 (a, r = 1/20: 0.70 nats "
        "against 1.40 [1.00, 1.90])")
    with pytest.raises(ValueError, match="setting"):
        wording.reference_text(beside, "x", 0.1, ("c", 20.0))
