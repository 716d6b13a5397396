"""Tests of utils.dynamics.training and utils.dynamics.parameters: the checkpoint grid, deterministic and resumable
training, the streamed loss, the run key, and clear errors on bad input."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from dynamics_helpers import TINY, assert_same_run, final_weights, synthetic_text
from page_defaults import page_defaults

from utils.compute import Compute, resolve_compute
from utils.dynamics.checkpoints import PYTHIA_STEPS, try_load_checkpoint
from utils.dynamics.parameters import DynamicsParameters
from utils.dynamics.probes import ProbeSettings
from utils.dynamics.training import (
    MODEL_SIZES,
    TrainingConfig,
    WindowSchedule,
    build_model,
    checkpoint_steps,
    compute_key,
    encode_text,
    linear_cross_entropy,
    run_key,
    tokenizer_fingerprint,
    train_run,
)
from utils.encoding.fit import token_counts
from utils.head import output_head
from utils.tokenizers import gpt2_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return gpt2_tokenizer()


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


def test_checkpoints_share_one_copy_of_the_tokenizer_and_each_still_loads(tokenizer, tmp_path):
    from utils.budget import folder_bytes
    from utils.dynamics.checkpoints import load_checkpoint

    run = train_run(TrainingConfig(**TINY), synthetic_text(), tokenizer, root=tmp_path, progress=False)
    files = [folder / "tokenizer.json" for folder in run.checkpoints.values()]
    assert len({path.stat().st_ino for path in files}) == 1  # one file, linked into every checkpoint
    size = files[0].stat().st_size
    weights = sum((folder / "model.safetensors").stat().st_size for folder in run.checkpoints.values())
    assert folder_bytes(run.directory) < weights + 2 * size + 10**6  # counted once, as du counts it
    for ref in run.refs():
        loaded = load_checkpoint(ref)
        assert loaded.tokenizer("the cat").input_ids == tokenizer("the cat").input_ids


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
    assert_same_run(straight, resumed)


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


def test_sizes_are_named_and_their_parameter_counts_are_right():
    assert {"tiny", "d64", "d128"} <= set(MODEL_SIZES)
    assert MODEL_SIZES["d64"].d_model == 64 and MODEL_SIZES["d128"].d_model == 128
    for size in ("tiny", "d64"):
        model = build_model(TrainingConfig(size=size), 1000, 999)
        assert MODEL_SIZES[size].n_parameters(1000) == sum(p.numel() for p in model.parameters())


class _FixedVocabulary:
    """A stand-in tokenizer: ``tokenizer_fingerprint`` hashes its sorted vocabulary."""

    def get_vocab(self) -> dict[str, int]:
        return {"a": 0, "b": 1, "c": 2}


def test_the_run_key_of_a_fixed_configuration_is_unchanged(monkeypatch):
    # the key names the folder of the cached checkpoints (minutes of training per size): a change here retrains
    # every cached run (pinned again when TRAINING_VERSION became 3: the loss takes a whole batch per chunk)
    import utils.dynamics.training as training

    monkeypatch.setattr(training.torch, "__version__", "2.4.0+cpu")  # the key includes torch's version
    assert training.TRAINING_VERSION == "3"
    assert run_key(TrainingConfig(), "0123456789abcdef", "fedcba9876543210") == "gpt_neox-d64-e49289ae89bfe324"
    assert tokenizer_fingerprint(_FixedVocabulary()) == "d3b2fcb08480f519"
    assert run_key(TrainingConfig(seed=1), "0123456789abcdef", "fedcba9876543210") != run_key(
        TrainingConfig(), "0123456789abcdef", "fedcba9876543210")


# ---------------------------------------------------------------------------------------------------------------
# bfloat16 training (forced on the CPU, whatever its speed there)


@pytest.fixture(scope="module")
def forced_bf16() -> Compute:
    """bfloat16 on the CPU, resolved as the chapter resolves it but with a speed test that always says it pays."""
    compute = resolve_compute("cpu", "bfloat16", speedup=lambda device: 10.0)
    assert compute.precision == "bfloat16"
    return compute


def test_bf16_training_is_deterministic_differs_from_float32_and_keeps_float32_state(tokenizer, tmp_path,
                                                                                      forced_bf16):
    text = synthetic_text()
    config = TrainingConfig(**TINY)
    a = train_run(config, text, tokenizer, compute=forced_bf16, root=tmp_path / "a", progress=False)
    b = train_run(config, text, tokenizer, compute=forced_bf16, root=tmp_path / "b", progress=False)
    fp32 = train_run(config, text, tokenizer, root=tmp_path / "a", progress=False)
    weights_a, weights_b, weights_32 = final_weights(a), final_weights(b), final_weights(fp32)
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert np.array_equal(a.train_loss, b.train_loss)
    assert a.compute == forced_bf16 and a.meta["precision"] == "bfloat16" and fp32.meta["precision"] == "float32"
    # the checkpoints (master weights) stay float32, and the optimizer state too
    assert {w.dtype for w in weights_a.values()} == {torch.float32}
    partial = train_run(config, text, tokenizer, compute=forced_bf16, root=tmp_path / "partial", stop_after=2,
                        progress=False)
    state = torch.load(partial.directory / "resume.pt", weights_only=True)
    assert {t.dtype for s in state["optimizer"]["state"].values() for t in s.values() if t.ndim > 0} == {
        torch.float32}
    # a finished run never resumes: its resume file keeps the losses, not the optimizer state (twice the weights)
    finished = torch.load(a.directory / "resume.pt", weights_only=True)
    assert "optimizer" not in finished and finished["step"] == config.steps
    assert np.array_equal(finished["train_loss"], a.train_loss)
    # autocast took effect: the body ran in bf16, so the weights are not float32's, but training still learns
    assert a.directory != fp32.directory
    assert not torch.equal(weights_a["gpt_neox.layers.0.attention.query_key_value.weight"],
                           weights_32["gpt_neox.layers.0.attention.query_key_value.weight"])
    assert a.train_loss[-1] < a.train_loss[0]
    assert np.allclose(a.train_loss, fp32.train_loss, atol=0.05)  # the same run, up to bf16 rounding


def test_bf16_training_resumes_to_the_weights_of_an_uninterrupted_run(tokenizer, tmp_path, forced_bf16):
    text = synthetic_text()
    config = TrainingConfig(**TINY)
    straight = train_run(config, text, tokenizer, compute=forced_bf16, root=tmp_path / "straight", progress=False)
    partial = train_run(config, text, tokenizer, compute=forced_bf16, root=tmp_path / "resumed", stop_after=2,
                        progress=False)
    assert sorted(partial.checkpoints) == [0, 1, 2] and not partial.complete
    resumed = train_run(config, text, tokenizer, compute=forced_bf16, root=tmp_path / "resumed", progress=False)
    assert resumed.complete and resumed.directory.name == straight.directory.name
    assert_same_run(straight, resumed)


def test_bf16_gets_its_own_run_key_and_float32_keeps_its_key(monkeypatch, forced_bf16):
    import utils.dynamics.training as training

    monkeypatch.setattr(training.torch, "__version__", "2.4.0+cpu")
    shas = ("0123456789abcdef", "fedcba9876543210")
    float32_key = "gpt_neox-d64-e49289ae89bfe324"  # the pinned key of the test above
    fell_back = resolve_compute("cpu", "auto", speedup=lambda device: 0.5)  # auto, bf16 measured slow
    assert fell_back.precision == "float32" and "0.50x" in fell_back.reason
    assert run_key(TrainingConfig(), *shas) == float32_key
    assert run_key(TrainingConfig(), *shas, resolve_compute("cpu", "float32")) == float32_key
    assert run_key(TrainingConfig(), *shas, fell_back) == float32_key  # the precision used, not the one asked
    bf16_key = run_key(TrainingConfig(), *shas, forced_bf16)
    assert bf16_key != float32_key and bf16_key.startswith("gpt_neox-d64-")
    assert compute_key(forced_bf16) == {"precision": "bfloat16"} and compute_key(fell_back) == {}
    assert compute_key(Compute(torch.device("cuda"), "bfloat16")) == {"precision": "bfloat16", "device": "cuda"}
    assert run_key(TrainingConfig(), *shas, Compute(torch.device("cuda"))) not in (float32_key, bf16_key)
    with pytest.raises(TypeError, match=r"compute='bfloat16' must be a utils.compute.Compute"):
        run_key(TrainingConfig(), *shas, "bfloat16")


def test_the_streamed_loss_runs_on_the_device_of_its_inputs():
    generator = torch.Generator().manual_seed(0)
    h, W = torch.randn(10, 4, generator=generator), torch.randn(7, 4, generator=generator)
    targets = torch.randint(0, 7, (10,), generator=generator)
    loss = linear_cross_entropy(h.to("meta"), W.to("meta"), targets.to("meta"), chunk_size=3)
    assert loss.device.type == "meta" and loss.shape == ()
    expected = torch.nn.functional.cross_entropy(h @ W.T, targets)
    assert linear_cross_entropy(h, W, targets, chunk_size=3).item() == pytest.approx(expected.item(), rel=1e-6)


CHAPTER_DEFAULTS = dict(architecture="gpt_neox", model_sizes=["d64", "d128"], steps=768, batch_size=8,
                        learning_rate=2e-3, checkpoint_every=128, seed=0,
                        train_corpora=["wikipedia", "shakespeare", "bible"], eval_corpus="wikipedia",
                        probe_window_length=64, probe_n_tokens=2048, probe_seed=0, sample_seed=0, r2_threshold=0.5,
                        final_fraction=0.9, e_left_threshold=0.5, n_boot_tokens=200, pythia_model=None,
                        pythia_revisions=["step0", "step1000"], device="cpu", precision="float32")


def test_chapter_parameters_build_the_runs_and_reject_bad_values():
    parameters = DynamicsParameters.from_namespace({**CHAPTER_DEFAULTS, "unrelated": 1})
    assert parameters.configs == {size: TrainingConfig(size=size) for size in ("d64", "d128")}
    assert parameters.settings == ProbeSettings()
    assert parameters.pythia is None and (parameters.main_size, parameters.small_size) == ("d128", "d64")
    with_pythia = DynamicsParameters.from_namespace({**CHAPTER_DEFAULTS, "pythia_model": "EleutherAI/pythia-70m"})
    assert [ref.revision for ref in with_pythia.pythia] == ["step0", "step1000"]
    for name, value, message in [
        ("model_sizes", "d64", r"model_sizes='d64' must be a non-empty list"),
        ("model_sizes", ["d64", "d64"], r"must be a non-empty list of distinct names"),
        ("model_sizes", ["huge"], r"size='huge' is not allowed"),
        ("train_corpora", ["klingon"], r"train_corpora='klingon' is not allowed"),
        ("steps", 0, r"steps=0 must be >= 1"),
        ("probe_n_tokens", 10, r"n_tokens=10 must be at least window_length=64"),
        ("r2_threshold", 1.5, r"r2_threshold=1.5"),
        ("n_boot_tokens", 0, r"n_boot_tokens=0 must be >= 1"),
        ("pythia_model", "EleutherAI/pythia-70m", None),
        ("precision", "fp8", r"precision='fp8' is not allowed; choose one of \['float32', 'bfloat16', 'auto'\]"),
        ("precision", "bf16", r"precision='bf16' is not allowed"),
        ("device", "tpu", r"device='tpu' is not allowed; choose one of \['cpu', 'cuda', 'auto'\]"),
    ]:
        namespace = {**CHAPTER_DEFAULTS, name: value}
        if message is None:
            namespace["pythia_revisions"] = ["step3"]
            message = r"revision='step3' does not exist"
        with pytest.raises(ValueError, match=message):
            DynamicsParameters.from_namespace(namespace)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cuda' is not available"):
            DynamicsParameters.from_namespace({**CHAPTER_DEFAULTS, "device": "cuda"})
    # the precision the chapter trains in: float32 as asked, or bf16 resolved (and measured) by utils.compute
    float32 = DynamicsParameters.from_namespace({**CHAPTER_DEFAULTS, "precision": "float32"}).compute()
    assert (float32.device.type, float32.precision, float32.reason) == ("cpu", "float32", "float32 as asked")
    with pytest.raises(ValueError, match=r"lack \['seed'\]"):
        DynamicsParameters.from_namespace({k: v for k, v in CHAPTER_DEFAULTS.items() if k != "seed"})


def chapter_defaults() -> dict:
    """The parameters cell of ``book/04_dynamics.py``, executed: the chapter's real defaults."""
    return page_defaults("04_dynamics")


@pytest.mark.parametrize("bf16_speedup", [10.0, 0.01])
def test_the_defaults_and_a_tiny_run_do_not_depend_on_whether_bf16_pays(bf16_speedup, monkeypatch, tokenizer,
                                                                        tmp_path):
    """Forced 'bf16 pays' and 'bf16 does not pay' give the same defaults (float32, nothing measured) and the same
    numbers of a tiny run."""
    import utils.dynamics.parameters as dynamics_parameters

    def measured(device, precision):
        return resolve_compute(device, precision, speedup=lambda d: bf16_speedup)

    monkeypatch.setattr(dynamics_parameters, "resolve_compute", measured)
    compute = DynamicsParameters.from_namespace(chapter_defaults()).compute()
    assert (compute.precision, compute.requested, compute.reason) == ("float32", "float32", "float32 as asked")
    run = train_run(TrainingConfig(**TINY), synthetic_text(), tokenizer, compute=compute, root=tmp_path,
                    progress=False)
    reference = train_run(TrainingConfig(**TINY), synthetic_text(), tokenizer, root=tmp_path / "reference",
                          progress=False)
    assert np.array_equal(run.train_loss, reference.train_loss)
    assert all(torch.equal(a, b) for a, b in zip(final_weights(run).values(), final_weights(reference).values()))
