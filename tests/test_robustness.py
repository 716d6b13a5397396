"""The robustness tables: runs set side by side, and the precision comparison worded from its numbers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from utils.figures.reruns import models_figure, robustness_figure
from utils.reruns.grids import models_grid, models_to_compare
from utils.reruns.headlines import argmax_counts, check_rows, choice_rows
from utils.reruns.models import models_table, random_init_baselines
from utils.reruns.spread import checks_table, precision_table, spread_table
from utils.reruns.wording import choice_spread_text, precision_statement, precision_statements
from utils.uncertainty import Check, Interval


def run(seed, window, value, precision="float32", used=None, verdict="reproduced"):
    checks = [{"chapter": "01_encoding", "check": "R2", "value": value, "low": value - 0.01, "high": value + 0.01,
               "threshold": 0.8, "direction": ">=", "verdict": verdict}]
    return {"_run": {"parameters": {"sample_seed": seed, "window_length": window, "precision": precision},
                     "model": {"precision": used or precision}},
            "checks": {"value": checks},
            "argmax_counts": {"value": {"tested": 100, "unargmaxable": 0, "duplicate": 2, "whole_vocabulary": True}}}


def test_spread_shows_verdicts_that_change_with_the_sampling():
    table = checks_table([run(0, 128, 0.85), run(1, 128, 0.79, verdict="not reproduced")])
    spread = spread_table(table)
    assert spread.loc["R2", "smallest value"] == 0.79 and not spread.loc["R2", "verdicts agree"]


def steering_run(seed, window, k, values, verdict="inconclusive"):
    """A run of the headlines template with chapter 2's four checks (names free of k) and its chosen k."""
    run_ = run(seed, window, 0.85)
    names = [f"{text}: median |log(achieved/target)| at r = {r}, chosen mask"
             for text in ("training text", "held-out text") for r in ("20", "1/20")]
    run_["checks"]["value"] += [{"chapter": "02_steering", "check": name, "value": value, "low": value - 0.2,
                                 "high": value + 0.2, "threshold": 0.693, "direction": "below", "verdict": verdict}
                                for name, value in zip(names, values)]
    run_["choices"] = {"value": choice_rows({"02_steering": {"k chosen on training windows": k}})}
    return run_


def test_spread_groups_runs_that_chose_different_k_into_one_row_per_check():
    """Two runs whose chapter 2 chose k = 4 and k = 32: five checks (one of chapter 1, four of chapter 2), one row
    each, and the chosen k as a row of its own with each run's value; the held-out error at r = 20 spans both runs."""
    runs = [steering_run(0, 128, 32, [0.53, 1.14, 0.48, 1.42]),
            steering_run(1, 128, 4, [0.68, 1.19, 0.66, 1.43], verdict="not reproduced")]
    table = checks_table(runs)
    spread = spread_table(table)
    checks = spread[spread["kind"] == "check"]
    assert len(checks) == 5 and checks.index.is_unique
    held_out = checks.loc["held-out text: median |log(achieved/target)| at r = 20, chosen mask"]
    assert (held_out["smallest value"], held_out["largest value"]) == (0.48, 0.66)
    assert int(checks["verdicts agree"].astype(bool).sum()) == 1  # chapter 1's; chapter 2's verdicts differ
    choice = spread.loc["k chosen on training windows"]
    assert choice["kind"] == "choice" and (choice["smallest value"], choice["largest value"]) == (4, 32)
    assert choice["by run"] == "w128/s0: 32, w128/s1: 4"
    assert choice_spread_text(spread) == ("02_steering's k chosen on training windows: from 4 to 32 over the runs "
                                          "(w128/s0: 32, w128/s1: 4)")
    fig = robustness_figure(table)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 5  # a panel per check, none for the choice
    assert choice_spread_text(spread_table(checks_table([run(0, 128, 0.85)]))) == "no choice was recorded"


def test_precision_table_pairs_runs_of_the_same_sampling_and_judges_the_difference():
    table = checks_table([run(0, 128, 0.850), run(1, 128, 0.700), run(0, 128, 0.855, "bfloat16"),
                          run(0, 256, 0.900), run(0, 256, 0.950, "bfloat16")])
    comparison = precision_table(table)
    assert len(comparison) == 2
    first = comparison.iloc[0]
    assert first["difference"] == pytest.approx(0.005) and first["within the interval"]
    assert not comparison.iloc[1]["within the interval"]  # 0.05 apart, interval half-width 0.01
    sentence = precision_statement("bfloat16", "measured 3x", comparison)
    assert "only 1 of 2" in sentence and "5.00 interval half-widths" in sentence


def test_precision_statement_says_when_the_machine_falls_back():
    sentence = precision_statement("float32", "auto chose float32: bf16 matmul ran only 0.16x", None, "auto")
    assert "Asked for auto, this machine ran float32 (auto chose float32: bf16 matmul ran only 0.16x)" in sentence
    with pytest.raises(ValueError, match="comparison"):
        precision_statement("bfloat16", "measured 3x", None)
    with pytest.raises(ValueError, match="precision='bfloat16'"):
        precision_table(checks_table([run(0, 128, 0.85)]))


def test_models_table_sets_each_model_in_a_column():
    first, second = run(0, 128, 0.85), run(0, 64, 0.70, verdict="not reproduced")
    first["model_description"] = {"value": {"vocabulary": 49152, "dimension": 576}}
    second["model_description"] = {"value": {"vocabulary": 50257, "dimension": 64}}
    second["_run"]["parameters"]["window_length"] = 64
    table = models_table([first, second], ["smollm2-135m", "d64"])
    assert list(table.columns) == ["smollm2-135m", "d64"]
    assert table.loc["dimension d", "d64"] == 64 and table.loc["window", "d64"] == 64
    assert table.loc["01_encoding: R2", "d64"] == "0.7 [0.69, 0.71] not reproduced"
    second["argmax_counts"]["value"] = {"tested": 2048, "unargmaxable": 3, "duplicate": 0, "whole_vocabulary": False}
    table = models_table([first, second], ["smollm2-135m", "d64"])
    assert table.loc["unargmaxable tokens", "d64"] == "3 of 2,048 (sample)"
    assert table.loc["duplicate rows", "smollm2-135m"] == "2 of 100"
    del first["argmax_counts"]
    with pytest.raises(ValueError, match="argmax_counts"):
        models_table([first, second], ["a", "b"])
    with pytest.raises(ValueError, match="labels"):
        models_table([first], ["a", "b"])


def test_models_table_matches_checks_whose_names_carry_each_models_settings():
    first, second = run(0, 128, 0.85), run(0, 64, 0.70)
    first["checks"]["value"][0]["check"] = "share kept by the top 144 of 576 dimensions"
    second["checks"]["value"][0]["check"] = "share kept by the top 16 of 64 dimensions"
    for result, d in ((first, 576), (second, 64)):
        result["model_description"] = {"value": {"vocabulary": 100, "dimension": d}}
    table = models_table([first, second], ["a", "b"])
    assert table.loc["01_encoding: share kept by the top * of * dimensions", "b"].startswith("0.7 ")



def test_models_table_marks_a_check_an_untrained_model_passes_as_uninformative():
    """Chapter 4's random initialisation fits the encoding with R² 0.995 (above the 0.8 threshold), so the trained
    d128's "reproduced" says nothing: its cell is marked and the baseline shown below it; a baseline below the
    threshold leaves the cell alone; a model without a baseline shows "—"; the chosen k has a row of its own."""
    runs = [steering_run(0, 128, 32, [0.5] * 4), steering_run(0, 64, 16, [0.6] * 4)]
    for result, d in zip(runs, (576, 128)):
        result["model_description"] = {"value": {"vocabulary": 100, "dimension": d}}
        result["checks"]["value"][0].update(check="accurate: held-out R² of the log-linear fit", direction="above")
    dynamics = {"main_size": {"value": "d128"}, "initial_encoding_r2": {"value": 0.995}}
    baselines = random_init_baselines(dynamics)
    assert baselines == {"chapter 4: d128": {("01_encoding", "accurate"): 0.995}}
    table = models_table(runs, ["smollm2-135m", "chapter 4: d128"], baselines)
    row = "01_encoding: accurate: held-out R² of the log-linear fit"
    assert table.loc[row, "chapter 4: d128"] == ("0.85 [0.84, 0.86] reproduced (uninformative: the random "
                                                 "initialisation reaches 0.995)")
    assert table.loc[row, "smollm2-135m"] == "0.85 [0.84, 0.86] reproduced"
    assert table.loc[f"{row}: random initialisation", "chapter 4: d128"] == "0.995"
    assert table.loc[f"{row}: random initialisation", "smollm2-135m"] == "—"
    assert list(table.index).index(f"{row}: random initialisation") == list(table.index).index(row) + 1
    assert table.loc["02_steering: k chosen on training windows"].tolist() == [32, 16]
    low = random_init_baselines({"main_size": {"value": "d128"}, "initial_encoding_r2": {"value": 0.3}})
    assert "uninformative" not in models_table(runs, ["a", "chapter 4: d128"], low).loc[row, "chapter 4: d128"]
    assert random_init_baselines(None) == {} and random_init_baselines({"main_size": {"value": "d64"}}) == {}
    every_size = random_init_baselines({"main_size": {"value": "d128"}, "initial_encoding_r2": {"value": 0.99},
                                        "initial_encoding_r2_by_size": {"value": {"d64": 0.98, "d128": 0.99}}})
    assert sorted(every_size) == ["chapter 4: d128", "chapter 4: d64"]
    assert list(every_size["chapter 4: d64"].values()) == [0.98]
    with pytest.raises(ValueError, match="baselines names models"):
        models_table(runs, ["a", "b"], baselines)


def test_models_figure_has_a_panel_per_check_and_a_point_per_model():
    first, second = run(0, 128, 0.85), run(0, 64, 0.70)
    fig = models_figure([first, second], ["a", "b"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 1
    assert [tick.get_text() for tick in visible[0].get_xticklabels()] == ["a", "b"]


def test_argmax_counts_find_a_planted_inner_row_and_a_planted_twin(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGLINEAR_CACHE", str(tmp_path))
    corners = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    # row 4 (the origin) never wins strictly: some corner always scores at least 0; row 5 repeats row 0
    E = np.vstack([corners, [[0.0, 0.0]], corners[:1]])
    counts = argmax_counts(E, None, max_tokens=None, seed=0)
    assert [counts[key] for key in ("tested", "unargmaxable", "duplicate", "whole_vocabulary")] == [6, 1, 2, True]
    with_bias = argmax_counts(E, np.array([0, 0, 0, 0, 5.0, 0]), max_tokens=None, seed=0)  # the origin now wins near 0
    assert with_bias["unargmaxable"] == 0
    sample = argmax_counts(E, None, max_tokens=3, seed=0)
    assert sample["tested"] == 3 and not sample["whole_vocabulary"]
    with pytest.raises(ValueError, match="argmax_max_tokens"):
        argmax_counts(E, None, max_tokens=0, seed=0)


def test_check_rows_keep_the_chapters_order_and_every_field():
    above, below = (Check("R2", 0.85, Interval(0.8, 0.9), threshold=t, direction="above") for t in (0.5, 0.95))
    rows = check_rows({"01_encoding": [above], "03_pruning": [below]})
    assert [row["chapter"] for row in rows] == ["01_encoding", "03_pruning"]
    assert rows[0] == {"chapter": "01_encoding", "check": "R2", "value": 0.85, "low": 0.8, "high": 0.9,
                       "threshold": 0.5, "direction": "above", "verdict": above.verdict}
    assert rows[0]["verdict"] != rows[1]["verdict"]
    json.dumps(rows)


def test_models_to_compare_adds_chapter_4s_models_when_its_results_exist(tmp_path, capsys):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert models_to_compare([str(folder), "gpt2"], ["smollm2-135m"], True, [tmp_path]) == {
        "my-model": str(folder), "gpt2": "gpt2"}
    assert "left out" in capsys.readouterr().out
    (tmp_path / "04_dynamics.json").write_text(json.dumps({"final_checkpoints": {"value": {"d64": "/ckpt/d64"}}}))
    assert models_to_compare([], ["smollm2-135m"], True, [tmp_path / "absent", tmp_path]) == {
        "smollm2-135m": "smollm2-135m", "chapter 4: d64": "/ckpt/d64"}
    assert models_to_compare([], ["smollm2-135m"], False, [tmp_path]) == {"smollm2-135m": "smollm2-135m"}


def test_models_grid_caps_windows_and_samples_only_where_asked():
    named = {"smollm2-135m": "smollm2-135m", "chapter 4: d64": "/ckpt/d64"}
    grid = models_grid(named, {"smollm2-135m": 8192, "chapter 4: d64": 64}, {"sample_seed": 0}, window_length=128,
                       argmax_max_tokens=None, trained_argmax_max_tokens=2048)
    assert grid[0] == {"sample_seed": 0, "model": "smollm2-135m", "revision": None, "window_length": 128}
    assert grid[1]["window_length"] == 64 and grid[1]["argmax_max_tokens"] == 2048
    with pytest.raises(ValueError, match="trained_argmax_max_tokens"):
        models_grid(named, {}, {}, window_length=8, argmax_max_tokens=None, trained_argmax_max_tokens=0)


def test_precision_statements_of_the_page_default_and_of_a_bf16_run():
    float32_only = [run(0, 128, 0.850), run(1, 128, 0.700)]
    sentence, comparison = precision_statements(checks_table(float32_only), float32_only, [])
    assert comparison is None and "float32, on every machine" in sentence
    bf16 = run(0, 128, 0.855, "bfloat16")
    bf16["_run"]["model"]["precision_reason"] = "bfloat16 as asked (its matmul ran 2.20x the float32 rate)"
    runs = [*float32_only, bf16]
    sentence, comparison = precision_statements(checks_table(runs), runs, ["bfloat16"])
    assert len(comparison) == 1 and "every difference lies within" in sentence and "2.20x" in sentence
    fell_back = run(0, 128, 0.850, "auto", used="float32")
    runs = [*float32_only, fell_back]
    sentence, comparison = precision_statements(checks_table(runs), runs, ["auto"])
    assert comparison is None and "Asked for auto, this machine ran float32" in sentence
