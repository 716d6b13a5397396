"""Tests of utils.dynamics.probes and utils.dynamics.checkpoints: the frequency probe on planted embeddings, the
per-checkpoint numbers of a tiny run, identical-checkpoint detection, Pythia revisions, and the probe cache key."""
from __future__ import annotations

import math
import shutil
import time

import numpy as np
import pytest
import torch
from dynamics_helpers import TINY, synthetic_text
from safetensors.torch import load_file

from utils.dynamics.checkpoints import (
    CheckpointRef,
    CheckpointUnavailableError,
    check_pythia_revision,
    duplicate_checkpoints,
    embedding_hash,
    pythia_refs,
    try_load_checkpoint,
)
from utils.dynamics.probes import (
    ProbeSettings,
    centred_distance,
    collapse,
    frequency_probe,
    heldout_loss,
    probe_cache_key,
    probe_checkpoints,
    probe_pythia,
    probe_split,
    spread,
)
from utils.dynamics.training import TrainingConfig, build_model, encode_text, train_run
from utils.encoding.fit import token_counts
from utils.head import final_hidden_states, output_head
from utils.models import hub_offline
from utils.tokenizers import gpt2_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return gpt2_tokenizer()


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


@pytest.mark.parametrize("include_unseen", [False, True])
def test_frequency_probe_equals_a_direct_least_squares_on_its_own_split(include_unseen):
    """The probe's split (the encoding's ``split_tokens`` over the probed tokens) is a seeded permutation of those
    tokens, and its R² is that of a plain least-squares fit, to 1e-10, on random input."""
    rng = np.random.default_rng(3)
    V, d = 700, 12
    E = rng.normal(size=(V, d))
    counts = zipf_counts(V, seed=3, unseen=60)
    probe = frequency_probe(E.astype(np.float32), counts, include_unseen=include_unseen, test_fraction=0.25, seed=5)
    tokens = np.arange(V) if include_unseen else np.flatnonzero(counts > 0)
    order = np.random.default_rng(5).permutation(tokens)
    n_test = round(0.25 * len(tokens))
    train, test = np.sort(order[n_test:]), np.sort(order[:n_test])
    assert np.array_equal(probe.train_tokens, train) and np.array_equal(probe.test_tokens, test)
    split = probe_split(counts, d, include_unseen=include_unseen, test_fraction=0.25, seed=5)
    assert np.array_equal(split[0], train) and np.array_equal(split[1], test)
    y = np.log(np.where(counts > 0, counts, 0.5) / counts.sum())
    design = np.hstack([np.ones((V, 1)), E.astype(np.float32).astype(np.float64)])
    coefficients = np.linalg.lstsq(design[train], y[train], rcond=None)[0]
    residual = y[test] - design[test] @ coefficients
    assert probe.r2 == pytest.approx(1 - residual @ residual / np.sum((y[test] - y[test].mean()) ** 2), abs=1e-10)


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


def test_probe_pythia_says_what_happened():
    assert probe_pythia(None, "text", ProbeSettings()) == (
        None, "skipped: pythia_model is None (the default; set it where the hub or a local cache is reachable)")
    refs = pythia_refs("EleutherAI/pythia-no-such-model", ["step0", "step1"])
    with hub_offline():
        frame, status = probe_pythia(refs, "some text", ProbeSettings(window_length=8, n_tokens=8))
    assert frame is None and status.startswith("not available on this machine (the final checkpoint")


def test_the_probe_cache_key_of_fixed_checkpoints_is_unchanged():
    # computed before utils.dynamics was split into modules: the cached probes of chapter 4 must still be found
    refs = pythia_refs("EleutherAI/pythia-70m", ["step0", "step512", "step1000"])
    assert probe_cache_key(refs, "some training text\n", ProbeSettings()) == "a35551ebd95460de127e"
    assert probe_cache_key(refs, "some training text\n", ProbeSettings(seed=1)) != "a35551ebd95460de127e"
