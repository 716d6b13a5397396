"""The rates behind the build's budget, in a few minutes: what ``make bench`` prints.

    .venv/bin/python benchmarks/bench_budget.py [--n-tokens 2048] [--steps 6]

Prints, measured in this one run:
- this machine's fp32 and bf16 matrix-multiply rates (as the build measures fp32's, :func:`bookbuild.report.fp32_rate`);
- the load time of the default model (from its cached float32 conversion; the first load converts the GGUF file);
- the activation pass in float32: tokens per second and the share of the fp32 rate it reaches, at the FLOPs per token
  the build's ledger charges (:func:`utils.budget.forward_flops_per_token`);
- chapter 4's training step per size in float32: milliseconds per step and the share of the fp32 rate it reaches
  (:func:`utils.budget.training_flops_per_step`), and the projected training time of the chapter's defaults.

A share near 1 means the work is bound by the matrix units; the build's chapter time over its compute floor is the
rest (reloading, analysis, element-wise work). The machine is shared: compare the numbers of one run, not of runs
made at different times.
"""
from __future__ import annotations

import argparse
import time

import torch

from bookbuild.report import fp32_rate
from utils import budget
from utils.activations import run_pass
from utils.compute import matmul_rate
from utils.corpora import read_corpus, sample_windows
from utils.dynamics.training import TrainingConfig, _optimizer, build_model, linear_cross_entropy
from utils.models import load_model


def pass_rate(n_tokens: int, window_length: int, batch_size: int) -> tuple[float, float, float]:
    """(model load seconds, pass tokens per second, FLOPs per token) on the default model in float32."""
    start = time.perf_counter()
    loaded = load_model("smollm2-135m")
    load_seconds = time.perf_counter() - start
    token_ids = sample_windows(loaded.tokenizer, read_corpus("wikipedia", "train"), window_length, n_tokens,
                               0).token_ids
    run_pass(loaded, token_ids[:batch_size], batch_size=batch_size, desc="warm-up")
    start = time.perf_counter()
    run_pass(loaded, token_ids, batch_size=batch_size, desc="pass")
    return load_seconds, token_ids.numel() / (time.perf_counter() - start), budget.forward_flops_per_token(
        loaded.model)


def training_step(size: str, steps: int) -> tuple[float, float]:
    """(seconds per optimizer step, FLOPs per step) of chapter 4's training at its defaults, float32."""
    config = TrainingConfig(size=size)
    model = build_model(config, 50257, 50256)
    optimizer = _optimizer(model, config)
    batch = torch.randint(0, 50257, (config.batch_size, config.shape.n_ctx), generator=torch.Generator().manual_seed(0))

    def step() -> None:
        hidden = model.gpt_neox(input_ids=batch, use_cache=False).last_hidden_state
        loss = linear_cross_entropy(hidden[:, :-1].reshape(-1, hidden.shape[-1]),
                                    model.get_output_embeddings().weight, batch[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    flops = budget.training_flops_per_step(model, batch.numel(), config.batch_size * (config.shape.n_ctx - 1))
    return seconds, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-tokens", type=int, default=2048)
    parser.add_argument("--window-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}", flush=True)
    fp32 = fp32_rate()
    bf16 = matmul_rate(torch.bfloat16, torch.device("cpu"))
    print(f"fp32 matmul rate: {fp32:7.1f} GFLOP/s (best of 1024 and 2048)", flush=True)
    print(f"bf16 matmul rate: {bf16:7.1f} GFLOP/s ({bf16 / fp32:.2f}x fp32; the book runs float32 unless asked)",
          flush=True)
    load_seconds, tokens_per_second, flops_per_token = pass_rate(args.n_tokens, args.window_length, args.batch_size)
    achieved = tokens_per_second * flops_per_token / 1e9
    print(f"model load (cached conversion, head identity check included): {load_seconds:.1f} s", flush=True)
    print(f"activation pass, float32: {tokens_per_second:.0f} tokens/s = {achieved:.1f} GFLOP/s = "
          f"{achieved / fp32:.0%} of the fp32 rate ({flops_per_token / 1e6:.0f} MFLOP per token)", flush=True)
    for size in ("d64", "d128"):
        seconds, flops = training_step(size, args.steps)
        print(f"training step {size}, float32: {seconds * 1000:.0f} ms = {flops / seconds / 1e9:.1f} GFLOP/s = "
              f"{flops / seconds / 1e9 / fp32:.0%} of the fp32 rate ({flops / 1e9:.1f} GFLOP per step); "
              f"{TrainingConfig.steps} steps: {seconds * TrainingConfig.steps / 60:.1f} min", flush=True)
    fp32_after = fp32_rate()
    print(f"fp32 matmul rate after: {fp32_after:7.1f} GFLOP/s (a large change means the machine was busy)")


if __name__ == "__main__":
    main()
