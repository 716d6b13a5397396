"""Recorded results: JSON written atomically and merged, verdicts derived from checks."""
from __future__ import annotations

import json

import pytest

from utils.results import load_results, record, record_scorecard, verdict


def test_record_merges_values_and_formats_text(tmp_path):
    record("99_test", "r2", 0.91234, fmt=".3f", results_dir=tmp_path)
    record("99_test", "count", 12345, fmt=",", results_dir=tmp_path)
    data = json.loads((tmp_path / "99_test.json").read_text())
    assert data["r2"] == {"value": 0.91234, "text": "0.912", "description": ""}
    assert data["count"]["text"] == "12,345"
    assert load_results("99_test", tmp_path) == data
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_non_finite_values_stay_valid_json(tmp_path):
    record("99_test", "nan", float("nan"), results_dir=tmp_path)
    record("99_test", "inf", float("inf"), results_dir=tmp_path)
    data = json.loads((tmp_path / "99_test.json").read_text())
    assert data["nan"]["value"] is None and data["inf"]["value"] == "inf"


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ({"a": True, "b": True}, "reproduced"),
        ({"a": True, "b": False}, "partly reproduced"),
        ({"a": False, "b": False}, "not reproduced"),
    ],
)
def test_verdict_follows_the_checks(checks, expected):
    assert verdict(checks) == expected


def test_scorecard_records_figure_verdict_and_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGLINEAR_RESULTS", str(tmp_path))
    assert record_scorecard("99_test", "R² = 0.9", {"R² >= 0.8 (0.90)": True, "sparse (no)": False}) is None
    data = load_results("99_test")
    assert data["verdict"]["value"] == "partly reproduced"
    assert data["verdict_reason"]["text"] == "R² >= 0.8 (0.90) (yes); sparse (no) (no)"
    with pytest.raises(ValueError, match="checks"):
        verdict({})
