"""Recorded results: JSON written atomically and merged, runs that keep their own results, scorecard checks."""
from __future__ import annotations

import json

import pytest

from utils import results
from utils.corpora import corpus_fingerprint
from utils.results import Recorder, load_results, start_run
from utils.uncertainty import Check, Interval


@pytest.fixture(autouse=True)
def own_results_folder(tmp_path, monkeypatch):
    """Each test writes under its own ``tmp_path``, never into the session's results folder, and the runs it starts
    are forgotten afterwards: ``start_run`` remembers, per chapter, the file of the run in progress (``results_path``
    and ``load_results`` read it), so a run started here would otherwise redirect a later test's ``load_results``
    of the same chapter to this test's file."""
    monkeypatch.setenv("LOGLINEAR_RESULTS", str(tmp_path))
    monkeypatch.setattr(results, "_CURRENT", {})


def test_record_merges_values_and_formats_text(tmp_path):
    rec = Recorder("99_test", tmp_path / "99_test.json")
    rec("r2", 0.91234, fmt=".3f")
    rec("count", 12345, ",", "a count")  # format and description may be given in order
    data = json.loads((tmp_path / "99_test.json").read_text())
    assert data["r2"] == {"value": 0.91234, "text": "0.912", "description": ""}
    assert data["count"] == {"value": 12345, "text": "12,345", "description": "a count"}
    with pytest.raises(ValueError, match="reserved"):
        rec("_run", 1)
    assert load_results("99_test", tmp_path) == data
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_non_finite_values_stay_valid_json(tmp_path):
    rec = Recorder("99_test", tmp_path / "99_test.json")
    rec("nan", float("nan"))
    rec("inf", float("inf"))
    data = json.loads((tmp_path / "99_test.json").read_text())
    assert data["nan"]["value"] is None and data["inf"]["value"] == "inf"


def test_scorecard_records_three_valued_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGLINEAR_RESULTS", str(tmp_path))
    checks = [Check("R²", 0.792, Interval(0.78, 0.80), 0.8, "above"),
              Check("sparse share", 0.97, Interval(0.96, 0.98), 0.95, "above")]
    rec = Recorder("99_test", tmp_path / "99_test.json")
    assert rec.scorecard("R² = 0.79", checks) is None
    data = load_results("99_test")
    assert data["verdict"]["value"] == "inconclusive"
    assert data["verdict_reason"]["text"] == ("R²: 0.792 [0.780, 0.800] against >= 0.800: inconclusive; "
                                              "sparse share: 0.970 [0.960, 0.980] against >= 0.950: reproduced")
    assert [c["verdict"] for c in data["checks"]["value"]] == ["inconclusive", "reproduced"]
    with pytest.raises(ValueError, match="checks"):
        rec.scorecard("nothing", [])


def test_a_run_starts_afresh_and_records_what_produced_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGLINEAR_RESULTS", str(tmp_path))
    Recorder("01_encoding", tmp_path / "01_encoding.json")("stale", 1.0)
    rec = start_run("01_encoding", {"model": "tiny", "window_length": 16, "unrelated": 3})
    assert rec.chapter == "01_encoding" and rec.path == tmp_path / "01_encoding.json"
    rec("r2", 0.5, fmt=".1f")
    data = json.loads(rec.path.read_text())
    assert "stale" not in data
    run = data["_run"]
    assert run["parameters"] == {"model": "tiny", "window_length": 16}  # only the parameters cell's names
    assert set(run) >= {"code_version", "date", "corpora", "seconds", "parameters_key"}
    assert run["corpora"]["wikipedia_train"] == corpus_fingerprint("wikipedia", "train")


def test_without_a_results_folder_a_run_writes_beside_the_published_files(tmp_path, monkeypatch):
    monkeypatch.delenv("LOGLINEAR_RESULTS", raising=False)
    monkeypatch.setattr(results, "RERUNS_DIR", tmp_path / "reruns")
    path = start_run("01_encoding", {"model": "tiny", "window_length": 256}).path
    other = start_run("01_encoding", {"model": "tiny", "window_length": 128}).path
    assert path.parent == other.parent == tmp_path / "reruns" and path != other
    assert path.name.startswith("01_encoding-")
