"""The front page's detail behind the scorecard: every check in one figure and a folded table, from results files."""
from __future__ import annotations

import json

import pytest

from bookbuild import front_page
from utils.results import short_check, short_checks
from utils.uncertainty import Check, Interval


def check(name: str, value: float, low: float, high: float, threshold: float, direction: str = "above",
          fmt: str = ".2f") -> dict:
    made = Check(name, value, Interval(low, high, 0.95, 200, "document", 13), threshold, direction, fmt)
    return {"name": name, "value": value, "low": low, "high": high, "level": 0.95, "unit": "document", "n_boot": 200,
            "threshold": threshold, "direction": direction, "verdict": made.verdict, "fmt": fmt, "n_groups": 13}


def write_results(folder, chapter: str, checks: list[dict]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{chapter}.json").write_text(json.dumps({"checks": {"value": checks}}))


def test_the_front_page_shows_every_recorded_check_once(tmp_path):
    results = tmp_path / "results"
    write_results(results, "01_a", [check("accurate: R² of the fit", 0.77, 0.76, 0.78, 0.8),
                                    check("sparse: share of |A| kept", 0.95, 0.94, 0.96, 0.95)])
    write_results(results, "02_b", [check("held-out: error at r = 20, k", 0.4, 0.3, 0.5, 0.69, "below"),
                                    check("held-out: error at r = 1/20, k", 1.4, 1.0, 1.9, 0.69, "below")])
    book_dir = tmp_path / "book"
    book_dir.mkdir()
    assert front_page.write_front_page(["01_a", "02_b", "03_none"], book_dir, results) == 4
    page = (book_dir / front_page.PAGE_NAME).read_text()
    assert (book_dir / front_page.FIGURE_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in page.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4
    assert "✘ not reproduced" in rows[0] and "? inconclusive" in rows[1] and "✔ reproduced" in rows[2]
    assert "\\|A\\|" in rows[1]  # a bar inside a cell does not split it
    assert "over 13 documents" in rows[0]
    assert "{figure} scorecard_checks.png" in page and ":::{dropdown}" in page
    labels = front_page.check_labels(front_page.chapter_checks(["01_a", "02_b"], results))
    assert labels == ["ch. 1  accurate", "ch. 1  sparse", "ch. 2  held-out, at r = 20", "ch. 2  held-out, at r = 1/20"]
    with pytest.raises(ValueError, match="no chapter recorded"):
        front_page.write_front_page(["03_none"], book_dir, results)


def test_the_short_row_names_each_check_with_its_number_interval_and_sign():
    made = Check("accurate: held-out R² of the log-linear fit", 0.7736, Interval(0.763, 0.783), 0.8, "above")
    assert short_check(made) == "0.774 [0.763, 0.783] ✘"
    sparse = Check("sparse: share kept", 0.949, Interval(0.943, 0.955), 0.95, "above")
    assert short_checks([made, sparse]) == "accurate 0.774 [0.763, 0.783] ✘; sparse 0.949 [0.943, 0.955] ?"
    steering = [Check(f"{text}: median error at r = {r}, chosen mask", v, Interval(v - 0.1, v + 0.1), 0.69, "below",
                      ".2f") for text in ("training text (the paper's setting)", "held-out text")
                for r, v in (("20", 0.5), ("1/20", 1.4))]
    assert short_checks(steering) == ("training text: r = 20 0.5 [0.4, 0.6] ✔, r = 1/20 1.4 [1.3, 1.5] ✘; "
                                      "held-out text: r = 20 0.5 [0.4, 0.6] ✔, r = 1/20 1.4 [1.3, 1.5] ✘")
    share = Check("early: distance", 0.218, Interval(0.218, 0.587), 0.5, "above", ".0%")
    assert short_check(share) == "22% [22%, 59%] ?"  # a percentage keeps its format
