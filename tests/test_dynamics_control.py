"""Tests of utils.dynamics.control, utils.dynamics.scorecard and utils.dynamics.wording: the seen-count control
against brute force, its cache, the scorecard's checks on a planted run, and the wording decisions."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from dynamics_helpers import TINY, synthetic_text

import utils.dynamics.control as control_module
from utils.dynamics.control import (
    exposure_control,
    exposure_features,
    row_update_counts,
    run_seen_token_counts,
    seen_control_at,
    seen_count_control,
    seen_counts_cache_key,
    seen_token_counts,
)
from utils.dynamics.probes import centred_distance, frequency_probe, probe_split
from utils.dynamics.scorecard import (
    crossing_bracket,
    first_step_reaching,
    headline_checks,
    probe_r2_bootstrap,
    summarize_dynamics,
)
from utils.dynamics.training import (
    TrainingConfig,
    TrainingRun,
    WindowSchedule,
    encode_text,
    train_run,
    training_schedule,
)
from utils.dynamics.wording import (
    encoding_evidence_wording,
    encoding_fit_wording,
    initial_probe_wording,
    seen_control_wording,
    unseen_cloud_wording,
)
from utils.tokenizers import gpt2_tokenizer
from utils.wording import ordering_wording, value_text


@pytest.fixture(scope="module")
def tokenizer():
    return gpt2_tokenizer()


# ---------------------------------------------------------------------------------------------------------------
# the scorecard's checks, intervals over the probe's held-out tokens


def test_first_step_reaching_needs_the_value_to_stay_above():
    steps = [0, 1, 2, 4, 8, 16]
    assert first_step_reaching(steps, [0.0, 0.6, 0.3, 0.7, 0.8, 0.9], 0.5) == 4
    assert first_step_reaching(steps, [0.9] * 6, 0.5) == 0
    assert first_step_reaching(steps, [0.0, 0.6, 0.7, 0.8, 0.9, 0.4], 0.5) is None


def planted_run(seed: int = 0, V: int = 3000, d: int = 16, n: int = 6):
    """Checkpoints whose E moves linearly from noise to a final E that encodes log frequency along one direction."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    counts = rng.zipf(1.6, size=V).clip(max=10**6)
    final = rng.normal(size=(V, d))
    final[:, 0] = np.log(counts / counts.sum()) + rng.normal(0, 0.5, size=V)
    start = rng.normal(size=(V, d)) * 3
    weights = np.linspace(0.0, 1.0, n) ** 0.5
    drift = np.linspace(1.0, 0.0, n) ** 3  # a mean-row offset that leaves late: the plain distance falls sooner
    embeddings = [(1 - w) * start + w * final + 5.0 * m for w, m in zip(weights, drift)]
    distance = [np.linalg.norm(e - final) / np.linalg.norm(embeddings[0] - final) for e in embeddings]
    centred = [centred_distance(torch.from_numpy(e), torch.from_numpy(final))
               / centred_distance(torch.from_numpy(embeddings[0]), torch.from_numpy(final)) for e in embeddings]
    frame = pd.DataFrame({"step": [0, 1, 2, 4, 8, 16][:n], "label": [f"s{i}" for i in range(n)],
                          "duplicate_of": "", "e_distance": distance, "e_centred_distance": centred})
    frame["freq_r2"] = [frequency_probe(e, counts).r2 for e in embeddings]
    for column in ("freq_spearman", "freq_r2_all_tokens", "encoding_r2", "heldout_loss", "shared_unseen",
                   "shared_once", "param_distance"):
        frame[column] = 0.0
    return frame, embeddings, counts


def test_probe_bootstrap_is_paired_and_matches_a_brute_force_resample():
    _, embeddings, counts = planted_run()
    samples = probe_r2_bootstrap(embeddings, counts, n_boot=5, boot_seed=2)
    probe = frequency_probe(embeddings[-1], counts)
    rng = np.random.default_rng(2)
    index = rng.integers(0, len(probe.test_tokens), size=(5, len(probe.test_tokens)))
    tokens = probe.test_tokens[index[3]]
    expected = 1 - np.sum((probe.target[tokens] - probe.predicted[tokens]) ** 2) / np.sum(
        (probe.target[tokens] - probe.target[tokens].mean()) ** 2)
    assert samples.shape == (5, len(embeddings))
    assert samples[3, -1] == pytest.approx(expected, rel=1e-10)


def test_crossing_bracket_is_the_pair_of_checkpoints_around_the_crossing():
    steps = [0, 1, 2, 4, 8, 16]
    distance = {0: 1.0, 1: 0.9, 2: 0.7, 4: 0.5, 8: 0.2, 16: 0.0}
    # the curve reaches 90% of its final value for good at step 8: the crossing lies between steps 4 and 8
    assert crossing_bracket(steps, [0.0, 0.1, 0.2, 0.5, 0.95, 1.0], distance, 0.9) == (0.2, 0.5)
    assert crossing_bracket(steps, [0.95, 0.96, 0.97, 0.98, 0.99, 1.0], distance, 0.9) == (1.0, 1.0)  # at step 0
    assert crossing_bracket(steps, [0.0, 0.1, 0.2, 0.5, 0.8, -0.1], distance, 0.9) == (0.0, 0.0)  # never positive


def test_the_early_interval_covers_the_checkpoint_grid_and_shrinks_with_a_finer_grid():
    frame, embeddings, counts = planted_run(n=6)
    checks = headline_checks(frame, embeddings, counts, final_fraction=0.9, n_boot=100)
    summary = summarize_dynamics(frame, 0.5, 0.9)
    steps = frame["step"].tolist()
    first = steps.index(summary["first_step_fraction"])
    assert first > 0
    before, at = frame["e_centred_distance"].iloc[first - 1], frame["e_centred_distance"].iloc[first]
    early = checks[1]
    # the whole bracket of the point estimate lies inside the interval: a coarse grid cannot give a zero-width one
    assert early.interval.low - 1e-12 <= at < before <= early.interval.high + 1e-12
    # a grid with every checkpoint of the coarse one and more in between gives a narrower interval
    import pandas as pd

    weights = np.linspace(0.0, 1.0, 6) ** 0.5
    start = embeddings[0] - 5.0  # the planted run's start (at step 0 its weight is 0 and its drift 1)
    final = embeddings[-1]
    dense = []
    for i in range(5):
        for t in (0.0, 0.25, 0.5, 0.75):
            w = weights[i] + t * (weights[i + 1] - weights[i])
            drift = (1 - (i + t) / 5) ** 3
            dense.append((1 - w) * start + w * final + 5.0 * drift)
    dense.append(final)
    centred = [centred_distance(torch.from_numpy(e), torch.from_numpy(final))
               / centred_distance(torch.from_numpy(dense[0]), torch.from_numpy(final)) for e in dense]
    fine = pd.DataFrame({"step": list(range(len(dense))), "label": [f"s{i}" for i in range(len(dense))],
                         "duplicate_of": "", "e_distance": centred, "e_centred_distance": centred})
    fine["freq_r2"] = [frequency_probe(e, counts).r2 for e in dense]
    for column in ("freq_spearman", "freq_r2_all_tokens", "encoding_r2", "heldout_loss", "shared_unseen",
                   "shared_once", "param_distance"):
        fine[column] = 0.0
    fine_early = headline_checks(fine, dense, counts, final_fraction=0.9, n_boot=100)[1]
    assert fine_early.interval.high - fine_early.interval.low < early.interval.high - early.interval.low


def test_headline_checks_of_a_planted_run():
    frame, embeddings, counts = planted_run()
    checks = headline_checks(frame, embeddings, counts, r2_threshold=0.5, final_fraction=0.9, e_left_threshold=0.5,
                             n_boot=100)
    summary = summarize_dynamics(frame, 0.5, 0.9)
    assert checks[0].value == pytest.approx(summary["final_freq_r2"])
    assert checks[0].interval.low <= checks[0].value <= checks[0].interval.high
    assert checks[0].verdict == "reproduced"  # the planted encoding is strong
    # "early" is judged on the centred distance (the part of E the softmax sees), not the plain one
    assert checks[1].value == pytest.approx(summary["e_centred_distance_at_first_step_fraction"])
    assert summary["e_centred_distance_at_first_step_fraction"] != pytest.approx(
        summary["e_distance_at_first_step_fraction"], abs=0.01)
    assert "rows centred" in checks[1].name
    strict = headline_checks(frame, embeddings, counts, r2_threshold=0.999, final_fraction=0.9, n_boot=100)
    assert strict[0].verdict == "not reproduced"
    with pytest.raises(ValueError, match="embeddings holds 2 checkpoints"):
        headline_checks(frame, embeddings[:2], counts)


# ---------------------------------------------------------------------------------------------------------------
# the control for the early signal: counts of the batches seen so far


def test_regenerated_batches_equal_the_batches_training_draws(tokenizer, tmp_path, monkeypatch):
    text = synthetic_text()
    config = TrainingConfig(**TINY)
    drawn: dict[int, torch.Tensor] = {}
    original = WindowSchedule.batch

    def recording_batch(self, step):
        batch = original(self, step)
        drawn[step] = batch.clone()
        return batch

    monkeypatch.setattr(WindowSchedule, "batch", recording_batch)
    train_run(config, text, tokenizer, root=tmp_path, progress=False)
    monkeypatch.setattr(WindowSchedule, "batch", original)
    assert sorted(drawn) == list(range(config.steps))
    token_ids = encode_text(tokenizer, text)
    schedule = training_schedule(config, token_ids)
    for step, batch in drawn.items():
        assert torch.equal(schedule.batch(step), batch)
    # seen counts at each checkpoint: brute force over the batches training drew before it
    grid = config.grid
    seen = seen_token_counts(config, token_ids, len(tokenizer), grid)
    for row, step in zip(seen, grid):
        expected = np.zeros(len(tokenizer), dtype=np.int64)
        for s in range(step):
            np.add.at(expected, drawn[s].numpy().ravel(), 1)
        assert np.array_equal(row, expected)
    assert seen[0].sum() == 0 and seen[-1].sum() == config.steps * config.batch_size * config.shape.n_ctx
    with pytest.raises(ValueError, match="steps="):
        seen_token_counts(config, token_ids, len(tokenizer), [0, config.steps + 1])
    with pytest.raises(ValueError, match="steps="):
        seen_token_counts(config, token_ids, len(tokenizer), [4, 2])


def test_run_seen_token_counts_is_cached_per_run(tokenizer, tmp_path, monkeypatch):
    text = synthetic_text()
    config = TrainingConfig(**TINY)
    run = train_run(config, text, tokenizer, root=tmp_path, progress=False)
    seen = run_seen_token_counts(run, text, tokenizer)
    assert np.array_equal(seen, seen_token_counts(config, encode_text(tokenizer, text), len(tokenizer),
                                                      sorted(run.checkpoints)))
    monkeypatch.setattr(control_module, "encode_text", lambda *args, **kwargs: pytest.fail("the cache was not used"))
    assert np.array_equal(run_seen_token_counts(run, text, tokenizer), seen)
    with pytest.raises(ValueError, match="not the text"):
        run_seen_token_counts(run, text + "other words\n", tokenizer)


def test_seen_count_control_separates_seen_counts_from_a_learned_direction():
    rng = np.random.default_rng(0)
    V, d = 4000, 8
    counts = rng.zipf(1.5, size=V).clip(max=10**5)
    counts[rng.random(V) < 0.2] = 0  # never seen
    log_freq = np.log(np.maximum(counts, 1) / counts.sum())
    seen_late = rng.binomial(counts, 0.02)  # an early share of the text seen: counts track frequency, noisily
    noise = rng.normal(size=(V, d))
    learned = noise.copy()
    learned[:, 0] = log_freq + rng.normal(0, 0.1, size=V)  # E encodes frequency beyond the seen counts
    seen = np.stack([np.zeros(V, dtype=np.int64), seen_late, seen_late])
    control = seen_count_control([noise, noise, learned], counts, seen, [0, 5, 10])
    assert control["step"].tolist() == [0, 5, 10]
    # the probe column is exactly the frequency probe of E
    for E, r2 in zip([noise, noise, learned], control["probe_r2"]):
        assert r2 == pytest.approx(frequency_probe(E, counts).r2, abs=1e-9)
    first, seen_only, learned_row = control.iloc[0], control.iloc[1], control.iloc[2]
    assert abs(first["seen_r2"]) < 0.01 and first["seen_share"] == 0.0  # nothing seen: no information
    assert abs(seen_only["probe_r2"]) < 0.05 and seen_only["seen_r2"] > 0.5  # random E, informative counts
    assert seen_only["joint_r2"] - seen_only["seen_r2"] < 0.02  # a random E adds nothing to the counts
    assert learned_row["probe_r2"] > 0.9 and learned_row["joint_r2"] - learned_row["seen_r2"] > 0.2
    _, test = probe_split(counts, d)
    assert seen_only["seen_share"] == pytest.approx(np.mean(seen_late[test] > 0))
    # brute force: the control's R² is a one-variable least squares on the probe's split
    train, test = probe_split(counts, d)
    x, y = np.log1p(seen_late), log_freq
    slope, intercept = np.polyfit(x[train], y[train], 1)
    residual = y[test] - (slope * x[test] + intercept)
    assert seen_only["seen_r2"] == pytest.approx(1 - residual @ residual / np.sum((y[test] - y[test].mean()) ** 2))
    # brute force: the joint fit is one least squares on [1, E, log(seen + 1)]
    design = np.hstack([np.ones((V, 1)), learned, x[:, None]])
    coefficients = np.linalg.lstsq(design[train], y[train], rcond=None)[0]
    residual = y[test] - design[test] @ coefficients
    assert learned_row["joint_r2"] == pytest.approx(1 - residual @ residual / np.sum((y[test] - y[test].mean()) ** 2),
                                                    abs=1e-9)
    with pytest.raises(ValueError, match="same checkpoints"):
        seen_count_control([noise], counts, seen, [0, 5, 10])
    summary = seen_control_at(control, 5)
    assert summary["gain"] == pytest.approx(seen_only["joint_r2"] - seen_only["seen_r2"])
    assert summary["n_after_init"] == 2 and summary["n_seen_at_least"] == 1  # step 5 only: random E
    assert seen_control_at(control, None)["step"] == 10
    with pytest.raises(ValueError, match="step=7"):
        seen_control_at(control, 7)


def test_row_update_counts_count_steps_whose_targets_held_the_token(tokenizer):
    config = TrainingConfig(**TINY)
    token_ids = encode_text(tokenizer, synthetic_text())
    schedule = training_schedule(config, token_ids)
    vocab_size = len(tokenizer)
    steps = [0, 2, config.steps]
    updates = row_update_counts(config, token_ids, vocab_size, steps)
    seen = seen_token_counts(config, token_ids, vocab_size, steps)
    for row, step in enumerate(steps):  # brute force over the regenerated batches
        expected = np.zeros(vocab_size, dtype=np.int64)
        for s in range(step):
            for token in set(schedule.batch(s)[:, 1:].reshape(-1).tolist()):
                expected[token] += 1
        assert np.array_equal(updates[row], expected)
    assert np.all(updates <= seen) and updates[-1].max() <= config.steps  # at most once a step


def test_exposure_control_finds_what_E_knows_beyond_the_exposure_record():
    rng = np.random.default_rng(0)
    V, d = 4000, 8
    counts = rng.zipf(1.5, size=V).clip(max=10**6)
    target = np.log(counts / counts.sum())
    updates = rng.poisson(3, size=V)  # an exposure record unrelated to the target
    seen = updates * 2
    knows = rng.normal(size=(V, d))
    knows[:, 0] = target + rng.normal(0, 0.3, size=V)  # E holds the frequency itself
    result = exposure_control(knows, counts, seen, updates, n_boot=100)
    assert result["gain"].verdict == "reproduced" and result["gain"].value > 0.5
    # E that is only a noisy copy of the exposure record adds nothing beyond it
    record = np.log1p(updates)[:, None] * np.ones((1, d)) + rng.normal(0, 1e-3, size=(V, d))
    copy = exposure_control(record, counts, seen, updates, n_boot=100)
    assert copy["gain"].verdict != "reproduced" and abs(copy["gain"].value) < 0.01
    # the point values are three least-squares fits scored on the probe's held-out tokens
    train, test = probe_split(counts, d)
    design = np.hstack([np.ones((V, 1)), exposure_features(seen, updates)])
    coefficients = np.linalg.lstsq(design[train], target[train], rcond=None)[0]
    residual = target[test] - design[test] @ coefficients
    assert result["exposure_r2"] == pytest.approx(
        1 - residual @ residual / np.sum((target[test] - target[test].mean()) ** 2), abs=1e-9)


def test_wording_follows_the_numbers():
    assert encoding_fit_wording(0.995) == "almost perfectly"
    assert encoding_fit_wording(0.95) == "closely"
    assert encoding_fit_wording(0.6) == "only partly"
    assert encoding_fit_wording(0.1) == "poorly"
    with pytest.raises(ValueError, match="min_r2"):
        encoding_fit_wording(float("nan"))
    assert "no evidence of learning" in encoding_evidence_wording(0.995, 0.996)
    assert "tracks learning" in encoding_evidence_wording(0.4, 0.99)
    assert initial_probe_wording(-0.007).startswith("scores about zero")
    assert initial_probe_wording(0.2).startswith("already scores R² 0.20")
    assert unseen_cloud_wording(0.226, 0.213, 0.9) == "move as one rigid cloud"
    assert unseen_cloud_wording(0.226, 0.213, 0.1).startswith("keep their spread")
    assert unseen_cloud_wording(0.226, 0.5, 0.9).startswith("do not move as one rigid cloud")
    with pytest.raises(ValueError, match="spread_initial"):
        unseen_cloud_wording(0.0, 0.1, 0.9)
    assert ordering_wording(2.0, 1.0) == "higher" and ordering_wording(0.5, 1.0) == "lower"
    assert ordering_wording(1.01, 1.0, 0.05) == "about the same"
    with pytest.raises(ValueError, match="tolerance"):
        ordering_wording(1.0, 1.0, -1.0)
    from utils.uncertainty import Check, Interval

    def gain(value, low, high):
        return Check("gain", value, Interval(low, high, 0.95, 200, "token"), 0.0, "above", "+.3f")

    adds = seen_control_wording(0.9, 0.5, gain(0.2, 0.15, 0.25))
    assert adds.startswith("the output embedding predicts log frequency better than the counts of the batches seen")
    assert "ceiling rather than a control" in adds and "more than that record" in adds
    assert "+0.200 [+0.150, +0.250]" in adds
    assert "no more than that record" in seen_control_wording(0.56, 0.62, gain(-0.02, -0.03, -0.01))
    assert "undetermined" in seen_control_wording(0.56, 0.62, gain(0.001, -0.01, 0.01))
    assert seen_control_wording(0.5, 0.5, gain(0.001, -0.01, 0.01)).startswith(
        "the output embedding predicts log frequency about as well as")

    assert value_text(None, "d") == "not reached" and value_text(float("nan"), ".2f") == "not reached"
    assert value_text(0.123, ".2f") == "0.12"


class _FixedVocabulary:
    """A stand-in tokenizer: ``tokenizer_fingerprint`` hashes its sorted vocabulary."""

    def get_vocab(self) -> dict[str, int]:
        return {"a": 0, "b": 1, "c": 2}


def test_the_seen_count_cache_key_of_a_fixed_run_is_unchanged():
    # the cached seen counts of chapter 4 must still be found; the key includes TRAINING_VERSION (pinned again at 3,
    # when the streamed loss began to take a whole batch per chunk)
    text = "some training text\n"
    config = TrainingConfig(size="tiny", steps=6, batch_size=2, checkpoint_every=2)
    run = TrainingRun(config=config, directory=Path("/nowhere/run"),
                      checkpoints={step: Path(f"/nowhere/step{step}") for step in config.grid},
                      train_loss=np.zeros(6), token_counts=np.zeros(3), n_train_tokens=0, epochs=0.0,
                      train_seconds=0.0, complete=True,
                      meta={"text_sha": hashlib.sha256(text.encode()).hexdigest()[:16]})
    assert seen_counts_cache_key(run, text, _FixedVocabulary()) == "c02961425c9e8887840c"
    with pytest.raises(ValueError, match="not the text"):
        seen_counts_cache_key(run, text + "more", _FixedVocabulary())
