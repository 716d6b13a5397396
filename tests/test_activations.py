"""The streamed activation pass: equals a direct softmax mean, caches under the right key, rebuilds broken caches."""
from __future__ import annotations

import pytest
import torch

from utils import activations as act
from utils.corpora import read_corpus, sample_windows
from utils.head import OutputHead, output_head
from utils.models import load_model


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def test_log_mean_softmax_equals_direct_mean_in_float64():
    torch.manual_seed(0)
    head = OutputHead(torch.randn(300, 8) * 3, torch.randn(300))
    h = torch.randn(77, 8) * 3
    direct = torch.softmax((h @ head.E.T + head.b).double(), dim=-1).mean(0)
    streamed = act.mean_softmax(h, head, chunk_size=10)
    # float32 log-softmax: about 1e-5 relative on a logit range of ~20 nats
    torch.testing.assert_close(streamed, direct, rtol=5e-5, atol=1e-12)


def test_rare_tokens_do_not_underflow():
    """Logit gaps beyond float32's range still give a positive, correct alpha."""
    E = torch.tensor([[1.0], [-1.0]])
    h = torch.full((4, 1), 60.0)  # logit gap of 120 nats: exp(-120) underflows float32
    alpha = act.mean_softmax(h, OutputHead(E))
    assert alpha[1] > 0
    assert abs(float(alpha[1].log()) - (-120.0)) < 1e-3


def test_pass_matches_model_softmax_and_is_cached(tiny):
    text = read_corpus("wikipedia", "test")
    acts = act.compute_activations(tiny, "wikipedia", "test", window_length=16, n_tokens=64, batch_size=3)
    sample = sample_windows(tiny.tokenizer, text, 16, 64, seed=0)
    ids = sample.token_ids
    assert torch.equal(acts.token_ids, ids)
    assert torch.equal(acts.document, sample.document)
    with torch.no_grad():
        logits = tiny.model(ids).logits.double()
    direct = torch.softmax(logits, dim=-1).reshape(-1, logits.shape[-1]).mean(0)
    torch.testing.assert_close(acts.alpha, direct, rtol=1e-4, atol=1e-10)
    per_window = torch.softmax(logits, dim=-1).sum(1)  # (n_windows, V): each window's own sum, kept for bootstraps
    torch.testing.assert_close(acts.window_log_sums.double().exp(), per_window, rtol=1e-4, atol=1e-10)
    torch.testing.assert_close(output_head(tiny.model).logits(acts.hidden_flat),
                               logits.reshape(-1, logits.shape[-1]).float(), rtol=1e-4, atol=1e-5)
    key = acts.meta["key"]
    path = act._activations_path(key)
    assert path.exists()
    stamp = path.stat().st_mtime_ns
    again = act.compute_activations(tiny, "wikipedia", "test", window_length=16, n_tokens=64, batch_size=5)
    assert path.stat().st_mtime_ns == stamp  # read back, not recomputed
    assert torch.equal(again.hidden, acts.hidden)


def test_cache_key_changes_with_every_input(tiny, tiny_models):
    base = act.activation_key(tiny, "wikipedia", "test", 16, 64, 0)
    variants = [
        act.activation_key(tiny, "bible", "test", 16, 64, 0),
        act.activation_key(tiny, "wikipedia", "train", 16, 64, 0),
        act.activation_key(tiny, "wikipedia", "test", 32, 64, 0),
        act.activation_key(tiny, "wikipedia", "test", 16, 128, 0),
        act.activation_key(tiny, "wikipedia", "test", 16, 64, 1),
        act.activation_key(load_model(str(tiny_models["gpt2-tied"])), "wikipedia", "test", 16, 64, 0),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_cache_key_changes_with_code_version(tiny, monkeypatch):
    base = act.activation_key(tiny, "wikipedia", "test", 16, 64, 0)
    monkeypatch.setattr(act, "CODE_VERSION", act.CODE_VERSION + "-next")
    assert act.activation_key(tiny, "wikipedia", "test", 16, 64, 0) != base


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-key"])
def test_corrupt_or_partial_cache_is_rebuilt(tiny, damage):
    fresh = act.compute_activations(tiny, "wikipedia", "test", window_length=8, n_tokens=40)
    path = act._activations_path(fresh.meta["key"])
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a torch file")
    else:
        other = act.compute_activations(tiny, "wikipedia", "test", window_length=8, n_tokens=48)
        path.write_bytes(act._activations_path(other.meta["key"]).read_bytes())
    rebuilt = act.compute_activations(tiny, "wikipedia", "test", window_length=8, n_tokens=40)
    assert rebuilt.meta["key"] == fresh.meta["key"]
    assert torch.equal(rebuilt.hidden, fresh.hidden)
    assert act._read_cache(path, fresh.meta["key"], output_head(tiny.model)) is not None


def test_a_pass_keeps_only_its_heads_fingerprint_and_is_rebuilt_for_another_head(tiny, monkeypatch):
    first = act.compute_activations(tiny, "wikipedia", "test", window_length=8, n_tokens=56)
    path = act._activations_path(first.meta["key"])
    saved = torch.load(path, weights_only=True)
    assert "E" not in saved and saved["head"] == act.head_fingerprint(output_head(tiny.model))
    again = act.compute_activations(tiny, "wikipedia", "test", window_length=8, n_tokens=56)
    assert torch.equal(again.head.E, output_head(tiny.model).E) and torch.equal(again.hidden, first.hidden)
    # the same key read against another head (say the weights changed under the same name): rebuilt, not read
    other = output_head(tiny.model)
    other = type(other)(other.E + 1.0, other.b)
    assert act._read_cache(path, first.meta["key"], other) is None
    calls = []
    original = act.run_pass
    monkeypatch.setattr(act, "output_head", lambda model: other)
    monkeypatch.setattr(act, "run_pass", lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    act.compute_activations(tiny, "wikipedia", "test", window_length=8, n_tokens=56)
    assert calls == [1]


def test_a_pass_not_stored_leaves_no_file_and_equals_a_stored_one(tiny):
    kept = act.compute_activations(tiny, "wikipedia", "test", window_length=8, n_tokens=72)
    act._activations_path(kept.meta["key"]).unlink()
    unkept = act.compute_activations(tiny, "wikipedia", "test", window_length=8, n_tokens=72, store=False)
    assert not act._activations_path(kept.meta["key"]).exists()
    assert torch.equal(unkept.hidden, kept.hidden) and torch.equal(unkept.log_alpha, kept.log_alpha)


@pytest.mark.parametrize("bias", [False, True])
def test_window_log_sums_equal_log_softmax_then_logsumexp_bit_for_bit(bias):
    """The in-place streamed block gives exactly what torch.log_softmax and torch.logsumexp give on fresh tensors,
    over groups of windows that do not divide the pass evenly."""
    generator = torch.Generator().manual_seed(0)
    V, d, T = 300, 12, 8
    head = OutputHead(torch.randn(V, d, generator=generator) * 3,
                      torch.randn(V, generator=generator) if bias else None)
    hidden = torch.randn(7, T, d, generator=generator)
    reference = torch.logsumexp(torch.log_softmax(head.logits(hidden), dim=-1), dim=1).to(torch.float64)
    for chunk_size in (T, 3 * T, 100):
        assert torch.equal(act.window_log_sums(hidden, head, chunk_size), reference)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"window_length": 0}, "window_length"),
        ({"window_length": 10_000}, "window_length"),
        ({"n_tokens": -5}, "n_tokens"),
        ({"n_tokens": 10**9}, "n_tokens"),
        ({"batch_size": 0}, "batch_size"),
        ({"sample_seed": 1.5}, "sample_seed"),
        ({"sample_seed": -1}, "sample_seed"),
    ],
)
def test_bad_sizes_name_the_parameter(tiny, kwargs, parameter):
    arguments = {"window_length": 16, "n_tokens": 64, "batch_size": 2, "use_cache": False} | kwargs
    with pytest.raises((ValueError, TypeError), match=parameter):
        act.compute_activations(tiny, "wikipedia", "test", **arguments)


def test_unknown_corpus_names_the_choices(tiny):
    with pytest.raises(ValueError, match=r"corpus='klingon'.*wikipedia"):
        act.compute_activations(tiny, "klingon", "test", window_length=16, n_tokens=64)
