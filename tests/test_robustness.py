"""The robustness tables: runs set side by side, and the precision comparison worded from its numbers."""
from __future__ import annotations

import pytest

from utils.robustness import (
    checks_table,
    models_figure,
    models_table,
    precision_statement,
    precision_table,
    spread_table,
)


def run(seed, window, value, precision="float32", used=None, verdict="reproduced"):
    checks = [{"chapter": "01_encoding", "check": "R2", "value": value, "low": value - 0.01, "high": value + 0.01,
               "threshold": 0.8, "direction": ">=", "verdict": verdict}]
    return {"_run": {"parameters": {"sample_seed": seed, "window_length": window, "precision": precision},
                     "model": {"precision": used or precision}},
            "checks": {"value": checks}}


def test_spread_shows_verdicts_that_change_with_the_sampling():
    table = checks_table([run(0, 128, 0.85), run(1, 128, 0.79, verdict="not reproduced")])
    spread = spread_table(table)
    assert spread.loc["R2", "smallest value"] == 0.79 and not spread.loc["R2", "verdicts agree"]


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
    sentence = precision_statement("float32", "bf16 matmul ran only 0.16x", None)
    assert "this machine runs float32, because bf16 matmul ran only 0.16x" in sentence
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



def test_models_figure_has_a_panel_per_check_and_a_point_per_model():
    first, second = run(0, 128, 0.85), run(0, 64, 0.70)
    fig = models_figure([first, second], ["a", "b"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 1
    assert [tick.get_text() for tick in visible[0].get_xticklabels()] == ["a", "b"]
