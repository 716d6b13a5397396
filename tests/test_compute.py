"""Device and precision: one resolver, clear errors, bf16 only where measured to pay, the same numbers on the CPU."""
from __future__ import annotations

import pytest
import torch

from utils.activations import run_pass
from utils.compute import MIN_BF16_SPEEDUP, check_device_map, resolve_compute, resolve_device
from utils.head import final_hidden_states, output_head
from utils.models import load_model


def test_bad_device_and_precision_name_the_parameter_and_the_allowed_values():
    with pytest.raises(ValueError, match=r"precision='fp8'.*'float32', 'bfloat16'"):
        resolve_compute("cpu", "fp8")
    with pytest.raises(ValueError, match=r"device='tpu'.*'cpu', 'cuda', 'auto'"):
        resolve_compute("tpu", "float32")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_an_error_and_auto_takes_the_cpu():
    with pytest.raises(ValueError, match="device='cuda' is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_takes_bf16_only_where_its_measured_speedup_pays(capsys):
    slow = resolve_compute("cpu", "auto", speedup=lambda device: 0.2)
    assert (slow.precision, slow.requested) == ("float32", "auto")
    assert "0.20x" in slow.reason and "auto chose float32" in capsys.readouterr().out  # said, not silent
    fast = resolve_compute("cpu", "auto", speedup=lambda device: MIN_BF16_SPEEDUP + 1)
    assert fast.precision == "bfloat16"
    assert resolve_compute("cpu", "float32", speedup=lambda device: 1 / 0).precision == "float32"  # nothing measured


def test_bf16_is_used_as_asked_and_a_slow_rate_is_printed(capsys):
    slow = resolve_compute("cpu", "bfloat16", speedup=lambda device: 0.2)
    assert (slow.precision, slow.requested) == ("bfloat16", "bfloat16")
    assert "0.20x" in slow.reason and "slower than in float32" in capsys.readouterr().out
    fast = resolve_compute("cpu", "bfloat16", speedup=lambda device: 3.0)
    assert fast.precision == "bfloat16" and capsys.readouterr().out == ""  # nothing to warn of


def test_no_default_of_the_book_depends_on_a_measurement():
    """Every chapter's and page's precision parameter defaults to float32, and resolving float32 measures nothing."""
    import papermill

    from bookbuild.chapters import notebooks
    from utils.paths import BOOK_DIR

    for name in notebooks():
        spec = papermill.inspect_notebook(str(BOOK_DIR / f"{name}.ipynb"))
        for parameter in ("precision", "precisions"):
            if parameter in spec:
                default = spec[parameter]["default"]
                assert default in ('"float32"', '["float32"]'), f"{name}: {parameter} = {default}"
    assert resolve_compute("cpu", "float32", speedup=lambda device: 1 / 0).reason == "float32 as asked"


def test_bf16_body_runs_under_autocast_and_stays_close(tiny_models):
    loaded = load_model(str(tiny_models["llama-tied"]))
    ids = torch.randint(0, output_head(loaded.model).V, (2, 12))
    fp32 = final_hidden_states(loaded.model, ids)
    bf16 = final_hidden_states(loaded.model, ids, compute=resolve_compute("cpu", "bfloat16", speedup=lambda d: 9.0))
    assert bf16.dtype == torch.float32  # the head and everything after it stay float32
    assert not torch.equal(bf16, fp32)  # the body really ran in bf16
    assert float((bf16 - fp32).abs().max() / fp32.abs().max()) < 0.05


def test_a_bf16_model_has_its_own_cache_identity(tiny_models, monkeypatch):
    monkeypatch.setattr("utils.models.resolve_compute",
                        lambda device, precision: resolve_compute(device, precision, speedup=lambda d: 9.0))
    fp32 = load_model(str(tiny_models["llama-tied"]))
    bf16 = load_model(str(tiny_models["llama-tied"]), precision="bfloat16")
    assert bf16.compute.precision == "bfloat16" and bf16.identity != fp32.identity
    ids = torch.randint(0, output_head(fp32.model).V, (3, 8))
    hidden32, log_alpha32, _ = run_pass(fp32, ids, batch_size=2)
    hidden16, log_alpha16, _ = run_pass(bf16, ids, batch_size=2)
    assert hidden32.device.type == hidden16.device.type == "cpu"
    assert 0 < float((log_alpha16 - log_alpha32).abs().max()) < 0.1


def test_device_map_is_validated_naming_the_parameter_and_what_is_allowed(tiny_models):
    for bad in ("disk", {"": "disk"}, {"": "tpu"}, {}, {0: "cpu"}, ["cpu"]):
        with pytest.raises(ValueError, match=r"device_map=.*(allowed|strings)"):
            check_device_map(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"'cuda:0' is not available: 0 GPU"):
            check_device_map({"model": "cpu", "lm_head": "cuda:0"})
    assert check_device_map({"": "cpu"}) == {"": "cpu"} and check_device_map("auto") == "auto"
    with pytest.raises(ValueError, match="device='cpu' with device_map='auto'.*device='auto'"):
        load_model(str(tiny_models["llama-tied"]), device="cpu", device_map="auto")


@pytest.mark.parametrize("device_map", ["auto", {"": "cpu"}])
def test_a_model_placed_by_accelerate_gives_the_same_numbers(tiny_models, device_map):
    """accelerate's device map, resolved to the CPU here, through the same load and pass as on several GPUs."""
    plain = load_model(str(tiny_models["gptj-bias"]))
    placed = load_model(str(tiny_models["gptj-bias"]), device="auto", device_map=device_map)
    assert hasattr(placed.model.base_model, "_hf_hook")  # the body's outputs come back to its inputs' device
    expected = torch.device("cuda:0") if torch.cuda.is_available() and device_map == "auto" else torch.device("cpu")
    assert placed.compute.device == expected and placed.identity == plain.identity  # same weights, same caches
    head = output_head(placed.model)
    assert head.E.device.type == "cpu" and head.b is not None  # the output head comes back on the CPU as today
    ids = torch.randint(0, head.V, (3, 8))
    hidden_plain, log_alpha_plain, _ = run_pass(plain, ids, batch_size=2)
    hidden_placed, log_alpha_placed, _ = run_pass(placed, ids, batch_size=2)
    torch.testing.assert_close(hidden_placed, hidden_plain, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(log_alpha_placed, log_alpha_plain, rtol=1e-5, atol=1e-5)
