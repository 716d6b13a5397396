"""Tests of utils.dynamics: the checkpoint grid, deterministic and resumable training, the streamed loss, the
frequency probe on planted embeddings, identical-checkpoint detection, and clear errors on bad input."""
from __future__ import annotations

import math
import shutil
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from utils.dynamics import (
    MODEL_SIZES,
    PYTHIA_STEPS,
    CheckpointRef,
    CheckpointUnavailableError,
    ProbeSettings,
    TrainingConfig,
    WindowSchedule,
    build_model,
    centred_distance,
    check_pythia_revision,
    checkpoint_steps,
    collapse,
    duplicate_checkpoints,
    embedding_hash,
    encode_text,
    first_step_reaching,
    frequency_probe,
    heldout_loss,
    hub_offline,
    linear_cross_entropy,
    probe_checkpoints,
    pythia_refs,
    spread,
    train_run,
    try_load_checkpoint,
)
from utils.encoding import token_counts
from utils.head import final_hidden_states, output_head
from utils.tokenizers import gpt2_tokenizer

TINY = dict(size="tiny", steps=6, batch_size=2, checkpoint_every=2, lr=3e-3)


@pytest.fixture(scope="module")
def tokenizer():
    return gpt2_tokenizer()


def synthetic_text(n_words: int = 6000, seed: int = 0) -> str:
    """Zipf-distributed words over a small vocabulary, in lines and blank-line-separated paragraphs."""
    rng = np.random.default_rng(seed)
    words = np.array(["the", "of", "and", "river", "castle", "moon", "quietly", "seventeen", "harbour", "ink",
                      "lantern", "orbit", "pepper", "quartz", "saddle", "tundra", "velvet", "walnut", "yonder"])
    ranks = np.minimum(rng.zipf(1.3, size=n_words), len(words)) - 1
    lines = [" ".join(words[ranks[i : i + 12]]) + "." for i in range(0, n_words, 12)]
    return "\n".join(line + ("\n" if k % 5 == 4 else "") for k, line in enumerate(lines)) + "\n"


def final_weights(run) -> dict[str, torch.Tensor]:
    return load_file(run.checkpoints[run.final_step] / "model.safetensors")


# ---------------------------------------------------------------------------------------------------------------
# grid and configuration


def test_checkpoint_grid_is_pythia_like():
    assert checkpoint_steps(768, 128) == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 640, 768]
    assert checkpoint_steps(1100, 250) == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 762, 1012, 1100]
    assert checkpoint_steps(6, 2) == [0, 1, 2, 4, 6]  # short runs: powers of two, then the end
    assert checkpoint_steps(1, 5) == [0, 1]
    # up to 512 the grid is Pythia's
    assert [s for s in checkpoint_steps(143000, 1000) if s <= 512] == sorted(s for s in PYTHIA_STEPS if s <= 512)


def test_bad_configuration_fails_with_a_clear_message():
    with pytest.raises(ValueError, match=r"architecture='llama'.*gpt_neox"):
        TrainingConfig(architecture="llama")
    with pytest.raises(ValueError, match=r"size='huge'.*d64"):
        TrainingConfig(size="huge")
    with pytest.raises(ValueError, match=r"steps=0 must be >= 1"):
        TrainingConfig(steps=0)
    with pytest.raises(ValueError, match=r"steps=-3 must be >= 1"):
        checkpoint_steps(-3, 10)
    with pytest.raises(TypeError, match=r"steps=2.5 must be an integer"):
        TrainingConfig(steps=2.5)
    with pytest.raises(ValueError, match=r"lr=0.0"):
        TrainingConfig(lr=0.0)
    with pytest.raises(ValueError, match=r"eval_corpus='pile'"):
        ProbeSettings(eval_corpus="pile")


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    config = TrainingConfig(steps=1000, lr=1e-3, warmup_fraction=0.01)
    assert config.warmup_steps == 10
    assert config.lr_at(0) == pytest.approx(1e-4)
    assert config.lr_at(9) == pytest.approx(1e-3)
    lrs = [config.lr_at(step) for step in range(10, 1000)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(1e-4, rel=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# data


def test_encode_text_equals_encoding_the_whole_text(tokenizer):
    text = synthetic_text(3000) + "  two spaces\n\n\n  indented line\nend 123 456\n"
    whole = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
    for piece_chars in (50, 200, 1 << 16):
        assert encode_text(tokenizer, text, piece_chars=piece_chars).tolist() == whole


def test_token_counts_mark_unseen_tokens(tokenizer):
    ids = encode_text(tokenizer, "the cat the cat the dog")
    counts = token_counts(ids, len(tokenizer))
    assert counts.sum() == len(ids)
    assert counts[tokenizer.encode(" cat")[0]] == 2
    assert counts[tokenizer.encode(" zebra")[0]] == 0
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 10\)"):
        token_counts(np.array([3, 12]), 10)


def test_window_schedule_visits_every_window_once_per_epoch_and_is_deterministic():
    ids = np.arange(10 * 8)
    schedule = WindowSchedule(ids, n_ctx=8, batch_size=3, seed=5)
    first_epoch = np.concatenate([schedule.window_indices(step) for step in range(4)])[:10]
    assert sorted(first_epoch.tolist()) == list(range(10))
    again = WindowSchedule(ids, n_ctx=8, batch_size=3, seed=5)
    assert all(torch.equal(schedule.batch(s), again.batch(s)) for s in (0, 4, 9))
    other = WindowSchedule(ids, n_ctx=8, batch_size=3, seed=6)
    assert not all(torch.equal(schedule.batch(s), other.batch(s)) for s in range(4))
    assert torch.equal(schedule.batch(2)[0], torch.arange(8) + 8 * int(schedule.window_indices(2)[0]))
    with pytest.raises(ValueError, match="fewer than one window"):
        WindowSchedule(np.arange(5), n_ctx=8, batch_size=1, seed=0)


# ---------------------------------------------------------------------------------------------------------------
# the streamed loss


def test_streamed_loss_equals_the_models_loss_and_gradients(tokenizer):
    model = build_model(TrainingConfig(size="tiny"), len(tokenizer), tokenizer.eos_token_id)
    batch = torch.from_numpy(encode_text(tokenizer, synthetic_text(400))[:64].reshape(2, 32))
    reference = model(input_ids=batch, labels=batch).loss
    reference.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    hidden = model.gpt_neox(input_ids=batch).last_hidden_state
    loss = linear_cross_entropy(hidden[:, :-1].reshape(-1, 16), model.get_output_embeddings().weight,
                                batch[:, 1:].reshape(-1), chunk_size=7)
    (2.0 * loss).backward()  # the upstream gradient is honoured
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, 2.0 * expected[name], rtol=1e-4, atol=1e-7, msg=name)


# ---------------------------------------------------------------------------------------------------------------
# training: determinism, reuse, resume


def test_training_is_deterministic_from_the_seed(tokenizer, tmp_path):
    text = synthetic_text()
    config = TrainingConfig(**TINY)
    a = train_run(config, text, tokenizer, root=tmp_path / "a", progress=False)
    b = train_run(config, text, tokenizer, root=tmp_path / "b", progress=False)
    c = train_run(TrainingConfig(**{**TINY, "seed": 1}), text, tokenizer, root=tmp_path / "a", progress=False)
    assert sorted(a.checkpoints) == [0, 1, 2, 4, 6] and a.complete
    assert len(a.train_loss) == 6 and a.train_loss[-1] < a.train_loss[0]  # it learns
    weights_a, weights_b, weights_c = final_weights(a), final_weights(b), final_weights(c)
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert np.array_equal(a.train_loss, b.train_loss)
    assert not torch.equal(weights_a["embed_out.weight"], weights_c["embed_out.weight"])
    assert c.directory != a.directory  # the seed is part of the key
    # the checkpoints load as ordinary models whose head is untied
    loaded, reason = try_load_checkpoint(a.refs()[-1])
    assert reason is None and not loaded.model.config.tie_word_embeddings
    assert not torch.equal(output_head(loaded.model).E, loaded.model.get_input_embeddings().weight)


def test_a_finished_run_is_reused_not_retrained(tokenizer, tmp_path):
    text = synthetic_text()
    config = TrainingConfig(**TINY)
    first = train_run(config, text, tokenizer, root=tmp_path, progress=False)
    stamp = (first.checkpoints[6] / "model.safetensors").stat().st_mtime_ns
    second = train_run(config, text, tokenizer, root=tmp_path, progress=False)
    assert (second.checkpoints[6] / "model.safetensors").stat().st_mtime_ns == stamp
    assert np.array_equal(first.train_loss, second.train_loss)
    # another text is another run
    third = train_run(config, text + "more words\n", tokenizer, root=tmp_path, progress=False)
    assert third.directory != first.directory


def test_resume_after_interruption_is_bit_identical(tokenizer, tmp_path):
    text = synthetic_text()
    config = TrainingConfig(**TINY)
    straight = train_run(config, text, tokenizer, root=tmp_path / "straight", progress=False)
    partial = train_run(config, text, tokenizer, root=tmp_path / "resumed", stop_after=2, progress=False)
    assert sorted(partial.checkpoints) == [0, 1, 2] and not partial.complete
    assert not (partial.directory / "step4").exists()
    # an interrupted save leaves a staging folder behind: it is cleaned up
    (partial.directory / ".step4.tmpxyz").mkdir()
    resumed = train_run(config, text, tokenizer, root=tmp_path / "resumed", progress=False)
    assert resumed.complete and not (resumed.directory / ".step4.tmpxyz").exists()
    for step in straight.checkpoints:
        expected = load_file(straight.checkpoints[step] / "model.safetensors")
        got = load_file(resumed.checkpoints[step] / "model.safetensors")
        assert all(torch.equal(expected[k], got[k]) for k in expected), step
    assert np.array_equal(straight.train_loss, resumed.train_loss)


def test_a_corrupt_resume_file_restarts_and_still_matches(tokenizer, tmp_path):
    text = synthetic_text()
    config = TrainingConfig(**TINY)
    straight = train_run(config, text, tokenizer, root=tmp_path / "straight", progress=False)
    partial = train_run(config, text, tokenizer, root=tmp_path / "broken", stop_after=4, progress=False)
    (partial.directory / "resume.pt").write_bytes(b"not a torch file")
    rebuilt = train_run(config, text, tokenizer, root=tmp_path / "broken", progress=False)
    assert rebuilt.complete
    assert all(torch.equal(final_weights(straight)[k], v) for k, v in final_weights(rebuilt).items())


def test_missing_or_damaged_checkpoints_are_rebuilt(tokenizer, tmp_path):
    text = synthetic_text()
    config = TrainingConfig(**TINY)
    straight = train_run(config, text, tokenizer, root=tmp_path / "straight", progress=False)
    run = train_run(config, text, tokenizer, root=tmp_path / "damaged", progress=False)
    shutil.rmtree(run.checkpoints[2])  # a finished run that lost a checkpoint
    rebuilt = train_run(config, text, tokenizer, root=tmp_path / "damaged", progress=False)
    assert rebuilt.complete and (rebuilt.checkpoints[2] / "model.safetensors").is_file()
    partial = train_run(config, text, tokenizer, root=tmp_path / "truncated", stop_after=4, progress=False)
    weights = partial.checkpoints[4] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # the checkpoint to resume from is damaged
    resumed = train_run(config, text, tokenizer, root=tmp_path / "truncated", progress=False)
    for result in (rebuilt, resumed):
        assert all(torch.equal(final_weights(straight)[k], v) for k, v in final_weights(result).items())


def test_stop_after_must_be_a_checkpoint(tokenizer, tmp_path):
    with pytest.raises(ValueError, match=r"stop_after=3 is not allowed"):
        train_run(TrainingConfig(**TINY), synthetic_text(), tokenizer, root=tmp_path, stop_after=3)


# ---------------------------------------------------------------------------------------------------------------
# probes


def zipf_counts(V: int, seed: int = 0, unseen: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = np.floor(1e6 / np.arange(1, V + 1) ** 1.1).astype(np.int64) + 1
    counts = rng.permutation(counts)
    counts[rng.choice(V, size=unseen, replace=False)] = 0
    return counts


def test_frequency_probe_recovers_a_planted_frequency_direction():
    V, d = 4000, 16
    rng = np.random.default_rng(0)
    counts = zipf_counts(V, unseen=300)
    log_freq = np.log(np.maximum(counts, 1) / counts.sum())
    direction = rng.normal(size=d)
    planted = np.outer(log_freq - log_freq.mean(), direction / np.linalg.norm(direction))
    planted += 0.05 * rng.normal(size=(V, d))
    probe = frequency_probe(planted, counts)
    assert probe.r2 > 0.98 and probe.spearman > 0.98
    assert len(probe.test_tokens) == round(0.2 * (V - 300)) and np.all(counts[probe.test_tokens] > 0)
    cosine = np.dot(probe.direction, direction) / (np.linalg.norm(probe.direction) * np.linalg.norm(direction))
    assert abs(cosine) > 0.99
    random = frequency_probe(rng.normal(size=(V, d)), counts)
    assert abs(random.r2) < 0.05 and abs(random.spearman) < 0.1
    # unseen tokens only enter when asked, at the pseudo-count
    everything = frequency_probe(planted, counts, include_unseen=True, unseen_count=0.5)
    assert len(everything.test_tokens) == round(0.2 * V)
    assert everything.target[counts == 0] == pytest.approx(math.log(0.5 / counts.sum()))


def test_frequency_probe_rejects_bad_input():
    with pytest.raises(ValueError, match="must agree"):
        frequency_probe(np.zeros((10, 3)), np.ones(9))
    with pytest.raises(ValueError, match="too few"):
        frequency_probe(np.random.default_rng(0).normal(size=(10, 8)), np.ones(10))
    with pytest.raises(ValueError, match="all zero"):
        frequency_probe(np.zeros((100, 2)), np.zeros(100))


def test_collapse_is_one_for_identical_rows_and_small_for_random_rows():
    rng = np.random.default_rng(0)
    assert collapse(np.tile(rng.normal(size=8), (50, 1))) == pytest.approx(1.0)
    assert collapse(rng.normal(size=(1000, 8))) < 0.01
    shifted = rng.normal(size=(1000, 8)) * 0.01 + 5.0
    assert collapse(shifted) > 0.99
    assert spread(shifted) == pytest.approx(0.01 * math.sqrt(8), rel=0.05)
    assert spread(np.tile(rng.normal(size=8), (5, 1))) == pytest.approx(0.0, abs=1e-12)


def test_embedding_hash_detects_identical_checkpoints():
    E = torch.randn(100, 8)
    assert embedding_hash(E) == embedding_hash(E.clone()) == embedding_hash(E.numpy().astype(np.float64))
    nudged = E.clone()
    nudged[3, 4] = torch.nextafter(nudged[3, 4], torch.tensor(math.inf))
    assert embedding_hash(nudged) != embedding_hash(E)
    assert embedding_hash(E.reshape(50, 16)) != embedding_hash(E)  # the shape counts
    # Pythia-2.8b's pitfall: several early branches hold the final weights
    final, early = embedding_hash(E), embedding_hash(torch.randn(100, 8))
    hashes = {"step0": early, "step1": final, "step2": final, "step4": embedding_hash(torch.randn(100, 8)),
              "step143000": final}
    assert duplicate_checkpoints(hashes) == {"step2": "step1", "step143000": "step1"}
    assert duplicate_checkpoints({"a": "1", "b": "2"}) == {}


def test_pythia_revisions_are_checked_before_any_network_access():
    assert check_pythia_revision("step0") == 0
    assert check_pythia_revision("step512") == 512
    assert check_pythia_revision("step143000") == 143000
    for bad, message in [("step3", "does not exist"), ("step1500", "does not exist"), ("step144000", "does not exist"),
                         ("main", "must look like"), ("step-1", "must look like"), (1000, "must look like")]:
        with pytest.raises(ValueError, match=f"revision={bad!r} {message}"):
            check_pythia_revision(bad)
    refs = pythia_refs("EleutherAI/pythia-70m", ["step1000", "step0", "step4"])
    assert [ref.step for ref in refs] == [0, 4, 1000] and refs[0].revision == "step0"
    with pytest.raises(ValueError, match="repeats"):
        pythia_refs("EleutherAI/pythia-70m", ["step1", "step1"])
    with pytest.raises(ValueError, match="non-empty list"):
        pythia_refs("EleutherAI/pythia-70m", "step1")
    with pytest.raises(ValueError, match="pythia_model=None"):
        pythia_refs(None, ["step1"])


def test_centred_distance_ignores_what_the_softmax_ignores():
    generator = torch.Generator().manual_seed(0)
    E, F = torch.randn(300, 8, generator=generator), torch.randn(300, 8, generator=generator)
    shift = 5.0 * torch.randn(8, generator=generator)
    h = torch.randn(20, 8, generator=generator)
    # a vector added to every row leaves every output distribution unchanged ...
    torch.testing.assert_close(torch.softmax(h @ (E + shift).T, -1), torch.softmax(h @ E.T, -1))
    # ... and the centred distance unchanged, while the plain distance grows
    assert centred_distance(E + shift, F) == pytest.approx(centred_distance(E, F), rel=1e-5)
    assert float(torch.linalg.norm(E + shift - F)) > 2 * float(torch.linalg.norm(E - F))
    assert centred_distance(E, E + shift) == pytest.approx(0.0, abs=1e-4)
    assert centred_distance(E, F) > 0


def test_heldout_loss_equals_the_models_own_loss(tokenizer):
    model = build_model(TrainingConfig(size="tiny", seed=3), len(tokenizer), tokenizer.eos_token_id).eval()
    batch = torch.from_numpy(encode_text(tokenizer, synthetic_text(400))[:96].reshape(3, 32))
    hidden = final_hidden_states(model, batch)
    with torch.no_grad():
        expected = model(input_ids=batch, labels=batch).loss.item()
    assert heldout_loss(hidden, batch, output_head(model), chunk_size=10) == pytest.approx(expected, rel=1e-5)


def test_first_step_reaching_needs_the_value_to_stay_above():
    steps = [0, 1, 2, 4, 8, 16]
    assert first_step_reaching(steps, [0.0, 0.6, 0.3, 0.7, 0.8, 0.9], 0.5) == 4
    assert first_step_reaching(steps, [0.9] * 6, 0.5) == 0
    assert first_step_reaching(steps, [0.0, 0.6, 0.7, 0.8, 0.9, 0.4], 0.5) is None


def test_probe_of_a_tiny_run(tokenizer, tmp_path):
    from utils.corpora import read_corpus

    text = read_corpus("bible", "train")[:40000]
    run = train_run(TrainingConfig(**{**TINY, "steps": 4}), text, tokenizer, root=tmp_path, progress=False)
    settings = ProbeSettings(window_length=32, n_tokens=64)
    refs = run.refs()
    # a copy of checkpoint 2 under another name plays an identical (Pythia-2.8b-like) checkpoint
    copy_dir = tmp_path / "copy-of-step2"
    shutil.copytree(run.checkpoints[2], copy_dir)
    refs.insert(3, CheckpointRef(step=3, name_or_path=str(copy_dir), revision=None, label="copy"))
    refs.insert(1, CheckpointRef(step=0, name_or_path="EleutherAI/pythia-no-such-model", revision="step0",
                                 label="unreachable"))
    frame = probe_checkpoints(refs, text, settings, progress=False)
    assert frame["step"].tolist() == [0, 1, 2, 3, 4]
    assert "unreachable" in frame.attrs["unavailable"]
    assert frame.set_index("label").loc["copy", "duplicate_of"] == "tiny step 2"
    assert (frame["duplicate_of"] != "").sum() == 1
    assert frame["e_distance"].iloc[0] == pytest.approx(1.0) and frame["e_distance"].iloc[-1] == 0.0
    assert frame["param_distance"].iloc[-1] == 0.0
    assert frame["e_centred_distance"].iloc[0] == pytest.approx(1.0) and frame["e_centred_distance"].iloc[-1] == 0.0
    E0 = load_file(run.checkpoints[0] / "model.safetensors")["embed_out.weight"]
    E4 = load_file(run.checkpoints[4] / "model.safetensors")["embed_out.weight"]
    assert frame["e_centred_distance_abs"].iloc[0] == pytest.approx(centred_distance(E0, E4), rel=1e-6)
    assert frame["e_mean_row_norm"].iloc[0] == pytest.approx(float(torch.linalg.norm(E0.mean(0))), rel=1e-5)
    assert frame["heldout_loss"].iloc[0] == pytest.approx(math.log(len(tokenizer)), abs=0.05)  # random init
    assert frame["heldout_loss"].iloc[-1] < frame["heldout_loss"].iloc[0]
    counts = token_counts(encode_text(tokenizer, text), len(tokenizer))
    assert frame["unseen_below_once"].between(0, 1).all() and (counts == 0).sum() > 40000
    E0_centred = (E0 - E0.mean(0)).double().numpy()
    assert frame["shared_unseen"].iloc[0] == pytest.approx(collapse(E0_centred[counts == 0]), rel=1e-6)
    assert frame["spread_once"].iloc[0] == pytest.approx(spread(E0.double().numpy()[counts == 1]), rel=1e-6)
    # the frequency R² of the final checkpoint is exactly the probe of its E
    final_E = load_file(run.checkpoints[4] / "model.safetensors")["embed_out.weight"]
    assert frame["freq_r2"].iloc[-1] == pytest.approx(frequency_probe(final_E, counts).r2)
    # a second call reads the cache
    again = probe_checkpoints(refs, text, settings, progress=False)
    assert again.equals(frame) and again.attrs["unavailable"] == frame.attrs["unavailable"]
    with pytest.raises(ValueError, match="at least two checkpoints"):
        probe_checkpoints(refs[:1], text, settings)
    with pytest.raises(ValueError, match="step order"):
        probe_checkpoints(refs[::-1], text, settings)


def test_unreachable_hub_checkpoints_fail_fast_with_a_clear_error():
    refs = pythia_refs("EleutherAI/pythia-no-such-model", ["step0", "step1"])
    started = time.perf_counter()
    with hub_offline():
        loaded, reason = try_load_checkpoint(refs[0], offline=True)
    assert loaded is None and "cannot be loaded" in reason
    assert time.perf_counter() - started < 60  # no network retries in offline mode
    with hub_offline(), pytest.raises(CheckpointUnavailableError, match="final checkpoint .*step1 cannot be loaded"):
        probe_checkpoints(refs, "some text", ProbeSettings(window_length=8, n_tokens=8))


def test_sizes_are_named_and_their_parameter_counts_are_right():
    assert {"tiny", "d64", "d128"} <= set(MODEL_SIZES)
    assert MODEL_SIZES["d64"].d_model == 64 and MODEL_SIZES["d128"].d_model == 128
    for size in ("tiny", "d64"):
        model = build_model(TrainingConfig(size=size), 1000, 999)
        assert MODEL_SIZES[size].n_parameters(1000) == sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------------------------
# the scorecard's checks, intervals over the probe's held-out tokens


def planted_run(seed: int = 0, V: int = 3000, d: int = 16, n: int = 6):
    """Checkpoints whose E moves linearly from noise to a final E that encodes log frequency along one direction."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    counts = rng.zipf(1.6, size=V).clip(max=10**6)
    final = rng.normal(size=(V, d))
    final[:, 0] = np.log(counts / counts.sum()) + rng.normal(0, 0.5, size=V)
    start = rng.normal(size=(V, d)) * 3
    weights = np.linspace(0.0, 1.0, n) ** 0.5
    embeddings = [(1 - w) * start + w * final for w in weights]
    distance = [np.linalg.norm(e - final) / np.linalg.norm(start - final) for e in embeddings]
    frame = pd.DataFrame({"step": [0, 1, 2, 4, 8, 16][:n], "label": [f"s{i}" for i in range(n)],
                          "duplicate_of": "", "e_distance": distance})
    frame["freq_r2"] = [frequency_probe(e, counts).r2 for e in embeddings]
    for column in ("freq_spearman", "freq_r2_all_tokens", "encoding_r2", "heldout_loss", "shared_unseen",
                   "shared_once", "e_centred_distance", "param_distance"):
        frame[column] = 0.0
    return frame, embeddings, counts


def test_probe_bootstrap_is_paired_and_matches_a_brute_force_resample():
    from utils.dynamics import probe_r2_bootstrap

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


def test_headline_checks_of_a_planted_run():
    from utils.dynamics import headline_checks, summarize_dynamics

    frame, embeddings, counts = planted_run()
    checks = headline_checks(frame, embeddings, counts, r2_threshold=0.5, final_fraction=0.9, e_left_threshold=0.5,
                             n_boot=100)
    summary = summarize_dynamics(frame, 0.5, 0.9)
    assert checks[0].value == pytest.approx(summary["final_freq_r2"])
    assert checks[0].interval.low <= checks[0].value <= checks[0].interval.high
    assert checks[0].verdict == "reproduced"  # the planted encoding is strong
    assert checks[1].value == pytest.approx(summary["e_distance_at_first_step_fraction"])
    strict = headline_checks(frame, embeddings, counts, r2_threshold=0.999, final_fraction=0.9, n_boot=100)
    assert strict[0].verdict == "not reproduced"
    with pytest.raises(ValueError, match="embeddings holds 2 checkpoints"):
        headline_checks(frame, embeddings[:2], counts)
