"""The robustness tables: runs set side by side, and the precision comparison worded from its numbers."""
from __future__ import annotations

import pytest

from utils.robustness import checks_table, precision_statement, precision_table, spread_table


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


def test_precision_statement_says_when_the_machine_fell_back():
    table = checks_table([run(0, 128, 0.85), run(0, 128, 0.85, "bfloat16", used="float32")])
    sentence = precision_statement("float32", "bf16 matmul ran only 0.16x", precision_table(table))
    assert "ran in float32, because bf16 matmul ran only 0.16x" in sentence and "1 of 1 checks identical" in sentence
    with pytest.raises(ValueError, match="precision='bfloat16'"):
        precision_table(checks_table([run(0, 128, 0.85)]))
