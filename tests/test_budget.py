"""The build's compute budget: FLOPs counted as a real forward pass counts them, charges reach the ledger of a
build (and nothing outside one), and the floor is the ledger's FLOPs over the rate."""
from __future__ import annotations

import json
import os

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bookbuild.cli import main
from bookbuild.report import budget_report, compare_results, format_budget, format_comparison
from utils import budget
from utils.activations import run_pass
from utils.dynamics.training import TrainingConfig, build_model
from utils.head import final_hidden_states, output_head
from utils.models import load_model


def dense_flops(run, ops=("mm", "addmm")) -> int:
    """FLOPs of the dense products ``ops`` that ``run()`` executes, counted by torch's own flop counter (bmm left out
    by default: eager attention's score products run as bmm)."""
    with FlopCounterMode(display=False) as counter:
        run()
    counts = counter.get_flop_counts()["Global"]
    return sum(flops for op, flops in counts.items() if str(op).split(".")[1] in ops)


@pytest.mark.parametrize("name", ["llama-tied", "gpt2-tied", "gpt_neox-untied", "gptj-bias"])
def test_forward_flops_per_token_equal_the_products_of_a_real_pass(tiny_models, name):
    loaded = load_model(str(tiny_models[name]))
    ids = torch.randint(0, output_head(loaded.model).V, (2, 9))
    head = output_head(loaded.model)
    counted = dense_flops(lambda: head.logits(final_hidden_states(loaded.model, ids).reshape(-1, head.d)))
    assert counted == pytest.approx(budget.forward_flops_per_token(loaded.model) * ids.numel(), rel=1e-9)


def test_training_flops_per_step_equal_the_products_of_a_real_step():
    """The oracle is the model's own loss (its head over every position; the streamed loss of the chapter, tested
    equal to it, takes the same products over the positions that predict a next token)."""
    config = TrainingConfig(size="tiny", batch_size=3)
    model = build_model(config, 50257, 50256)
    batch = torch.randint(0, 50257, (3, config.shape.n_ctx))
    counted = dense_flops(lambda: model(input_ids=batch, labels=batch).loss.backward())
    assert counted == pytest.approx(budget.training_flops_per_step(model, batch.numel(), batch.numel()), rel=1e-9)


def test_a_pass_charges_the_ledger_of_a_build_and_nothing_outside_one(tiny_models, tmp_path, monkeypatch):
    loaded = load_model(str(tiny_models["llama-tied"]))
    ids = torch.randint(0, output_head(loaded.model).V, (3, 8))
    monkeypatch.delenv(budget.BUDGET_ENV, raising=False)
    run_pass(loaded, ids, batch_size=2)  # outside a build: no ledger is written anywhere
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(budget.BUDGET_ENV, str(ledger))
    run_pass(loaded, ids, batch_size=2)
    run_pass(loaded, ids[:1], batch_size=2)
    charges = budget.read_ledger(ledger)
    assert [c["tokens"] for c in charges] == [24, 8] and {c["kind"] for c in charges} == {"pass"}
    assert charges[0]["flops"] == pytest.approx(24 * budget.forward_flops_per_token(loaded.model))
    with pytest.raises(ValueError, match="kind='lunch'"):
        budget.charge("lunch", 1.0)
    with pytest.raises(ValueError, match="flops=-1"):
        budget.charge("pass", -1)


def test_every_other_run_of_a_model_charges_what_torch_counts(tiny_models, tmp_path, monkeypatch):
    """The passes outside :func:`run_pass` (MAUVE's features, the steering forward check, both kinds of generation)
    charge the ledger the dense FLOPs that torch's own counter counts for them."""
    from utils.pruning.generation import continuation_features, sample_continuations
    from utils.steering.forward import forward_log_alpha, generate_steered

    loaded = load_model(str(tiny_models["llama-tied"]))
    head = output_head(loaded.model)
    prompts = torch.randint(0, head.V, (3, 5))
    continuations = torch.randint(0, head.V, (3, 4))
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(budget.BUDGET_ENV, str(ledger))
    runs = {
        "MAUVE features": lambda: continuation_features(loaded, prompts, continuations, batch_size=2),
        "forward check": lambda: forward_log_alpha(loaded, head, prompts, [1, 2]),
        "sampling": lambda: sample_continuations(loaded, prompts, max_new_tokens=4, use_cache=False, progress=False),
        "steered generation": lambda: generate_steered(loaded, ["a b", "c d e"], {"unedited": head}, 3,
                                                       max_new_tokens=4),
    }
    for label, run in runs.items():
        ledger.unlink(missing_ok=True)
        counted = dense_flops(run, ops=("mm", "addmm", "bmm"))  # Llama's attention runs as SDPA, not bmm; a
        # linear layer over a sliced 3-d input (the edited head's first step in generate) runs as bmm
        charged = budget.read_ledger(ledger)
        assert charged, label
        assert sum(c["flops"] for c in charged) == pytest.approx(counted, rel=1e-9), label


def test_the_floor_is_the_ledgers_flops_over_the_rate_and_the_build_prints_it(tmp_path):
    charges = [{"kind": "pass", "flops": 3e12, "tokens": 100, "detail": ""},
               {"kind": "training", "flops": 1e12, "tokens": 50, "detail": ""},
               {"kind": "pass", "flops": 1e12, "tokens": 20, "detail": ""}]
    summary = budget.summarize(charges, chapter_seconds=75.0, fp32_gflops=100.0)
    assert summary["floor_seconds"] == pytest.approx(50.0) and summary["ratio"] == pytest.approx(1.5)
    assert summary["flops"] == {"pass": 4e12, "training": 1e12} and summary["tokens"]["pass"] == 120
    with pytest.raises(ValueError, match="fp32_gflops=0"):
        budget.summarize(charges, 1.0, 0)

    class Run:  # a ChapterRun's fields
        def __init__(self, chapter, seconds, cached):
            self.chapter, self.seconds, self.cached = chapter, seconds, cached

    report = budget_report([Run("01_a", 50.0, False), Run("02_b", 25.0, False), Run("03_c", 0.0, True)], charges,
                           100.0)
    assert report["chapter_seconds"] == report["page_seconds"] == 75.0 and report["pages"]["03_c"] is None
    overlapped = budget_report([Run("01_a", 50.0, False), Run("02_b", 25.0, False)], charges, 100.0, 60.0, 2)
    assert overlapped["chapter_seconds"] == 60.0 and overlapped["ratio"] == pytest.approx(1.2)  # wall clock counts
    assert overlapped["page_seconds"] == 75.0 and "up to 2 pages at once" in format_budget(overlapped)
    printed = format_budget(report)
    assert "compute floor" in printed and "1.50x" in printed and "reused" in printed
    json.dumps(report)  # written to the build's budget.json as is
    idle = budget_report([Run("04_d", 30.0, False)], [], 100.0)  # pages that ran no model work: no ratio to print
    assert "nan" not in format_budget(idle) and "n/a" in format_budget(idle)


def test_a_file_linked_twice_is_counted_once(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "sub").mkdir()
    os.link(tmp_path / "a", tmp_path / "sub" / "b")
    (tmp_path / "c").write_bytes(b"y" * 10)
    assert budget.folder_bytes(tmp_path) == 1010 and budget.folder_bytes(tmp_path / "missing") == 0


def test_compare_results_finds_each_changed_value_and_sets_timings_apart(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    entry = {"value": 0.5, "text": "0.50", "description": "a number"}
    page = {"_run": {"date": "today"}, "r2": entry, "sweep_seconds": {"value": 3.0}, "word": {"value": "above"},
            "checkpoint": {"value": {"d64": "/one/clone/_cache/dynamics/d64/step8"}}}
    (before / "01_a.json").write_text(json.dumps(page))
    elsewhere = {"value": {"d64": "/another/clone/_cache/dynamics/d64/step8"}}  # the same run in another clone
    (after / "01_a.json").write_text(json.dumps({**page, "_run": {"date": "later"}, "checkpoint": elsewhere}))
    (before / "02_b.json").write_text(json.dumps(page))
    same = compare_results(before, after)
    assert same["compared"] == ["01_a.checkpoint", "01_a.r2", "01_a.sweep_seconds", "01_a.word"]  # provenance aside
    assert same["differ"] == same["timings"] == [] and same["missing"] == ["02_b.json"]
    changed = {**page, "r2": {**entry, "text": "0.500"}, "sweep_seconds": {"value": 4.0}, "new": {"value": 1}}
    (after / "01_a.json").write_text(json.dumps(changed))
    report = compare_results(before, after)
    assert report["differ"] == ["01_a.new", "01_a.r2"] and report["timings"] == ["01_a.sweep_seconds"]
    assert format_comparison(report).startswith("5 recorded values compared: 2 differ, 1 measured durations differ")
    moved = {**changed, "checkpoint": {"value": {"d64": "/one/clone/_cache/dynamics/d64/step16"}}}
    (after / "01_a.json").write_text(json.dumps(moved))
    assert "01_a.checkpoint" in compare_results(before, after)["differ"]  # another checkpoint is a difference
    with pytest.raises(SystemExit):
        main(["compare", str(before), str(after)])
