"""Speed and memory of the activation pass (utils.activations.run_pass) on the default model.

Prints, for the same windows of the Wikipedia corpus:
- this machine's fp32 and bf16 matrix-multiply rates, measured in the same run (bf16 is fast only where the CPU has
  bf16 matrix units; elsewhere it is slower than fp32);
- the streamed, batched pass in float32 and with the body under bf16 autocast: tokens per second, peak resident
  memory, the share of the matching precision's matmul rate that the pass reaches, and how far bf16 moves alpha;
- a naive loop beside it: one window at a time through the full model, the full softmax of every window kept
  (float64) and summed;
- the ratio of the two, the largest difference of their alpha, and the streamed pass's peak memory at two token
  counts (it grows with positions × d for the kept hidden states, never with positions × vocabulary).
Each measurement runs in its own process so that peak memory is its own, and is printed as soon as it is made. The
bf16 pass is skipped, saying why, where :func:`utils.compute.resolve_compute` measures that bf16 does not pay on this
CPU (no bf16 matrix units: bf16 then runs slower than fp32), as ``precision="auto"`` decides.

    python benchmarks/bench_activations.py [--n-tokens 4096] [--window-length 128] [--batch-size 8]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def matmul_gflops(dtype: torch.dtype = torch.float32, size: int = 1024) -> float:
    """Best-of matrix-multiply rate of this machine right now (GFLOP/s) in ``dtype`` (1024 x 1024, as
    :mod:`utils.compute` measures it: a CPU without bf16 units takes seconds per bf16 product at 2048)."""
    from utils.compute import matmul_rate

    return matmul_rate(dtype, torch.device("cpu"), size=size, repeats=5)


def matmul_rates(when: str) -> dict[str, float]:
    """The fp32 and bf16 matmul rates, each printed as soon as it is measured."""
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        rates[name] = matmul_gflops(dtype)
        print(f"machine {name} matmul rate: {rates[name]:.1f} GFLOP/s ({when} the passes)", flush=True)
    return rates


def measure(method: str, n_tokens: int, window_length: int, batch_size: int) -> dict:
    from utils.activations import run_pass
    from utils.budget import forward_flops_per_token
    from utils.compute import Compute
    from utils.corpora import read_corpus, sample_windows
    from utils.models import load_model

    loaded = load_model("smollm2-135m")
    if method == "streamed-bf16":  # forced, whatever its speed here: the benchmark measures it
        loaded.compute = Compute(torch.device("cpu"), "bfloat16", "bfloat16", "benchmark")
    text = read_corpus("wikipedia", "train")
    token_ids = sample_windows(loaded.tokenizer, text, window_length, n_tokens, 0).token_ids
    torch.set_grad_enabled(False)
    loaded.model(token_ids[:1])  # warm-up: first-call allocations and kernel selection are not part of the pass
    start = time.perf_counter()
    if method.startswith("streamed"):
        _, log_alpha, _ = run_pass(loaded, token_ids, batch_size=batch_size, desc=method)
        alpha = log_alpha.exp()
    else:  # naive: one window at a time, full softmax of the window kept in float64
        total = None
        for window in token_ids:
            probabilities = torch.softmax(loaded.model(window[None]).logits[0].double(), dim=-1)  # (T, V)
            total = probabilities.sum(0) if total is None else total + probabilities.sum(0)
        alpha = total / token_ids.numel()
    seconds = time.perf_counter() - start
    return {
        "method": method,
        "n_tokens": int(token_ids.numel()),
        "seconds": seconds,
        "tokens_per_second": token_ids.numel() / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "flops_per_token": forward_flops_per_token(loaded.model),
        "alpha": alpha.tolist(),
    }


def run_child(method: str, n_tokens: int, window_length: int, batch_size: int) -> dict:
    command = [sys.executable, __file__, "--child", method, "--n-tokens", str(n_tokens),
               "--window-length", str(window_length), "--batch-size", str(batch_size)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-tokens", type=int, default=4096)
    parser.add_argument("--window-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--child", choices=["streamed", "streamed-bf16", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.n_tokens, args.window_length, args.batch_size)))
        return
    from utils.compute import resolve_compute

    rate = matmul_rates("before")
    bf16 = resolve_compute("cpu", "auto")  # the book's own measurement of whether bf16 pays on this CPU
    results = {}
    for method, n_tokens in (("streamed", args.n_tokens), ("streamed-bf16", args.n_tokens), ("naive", args.n_tokens),
                             ("larger", 2 * args.n_tokens)):
        if method == "streamed-bf16" and bf16.precision != "bfloat16":
            print(f"streamed-bf16 skipped: utils.compute uses float32 here, because {bf16.reason}", flush=True)
            continue
        result = run_child(method.replace("larger", "streamed"), n_tokens, args.window_length, args.batch_size)
        results[method] = result
        print(f"{result['method']:>13s} {result['n_tokens']:6d} tokens: {result['seconds']:7.1f} s, "
              f"{result['tokens_per_second']:7.1f} tokens/s, peak RSS {result['peak_rss_mib']:7.0f} MiB", flush=True)
    rate_after = matmul_rates("after")
    best_rate = {name: max(rate[name], rate_after[name]) for name in rate}
    print(f"bf16 / fp32 matmul rate: {best_rate['bf16'] / best_rate['fp32']:.2f}x")
    streamed, naive, larger = results["streamed"], results["naive"], results["larger"]
    for method, name in (("streamed", "fp32"), ("streamed-bf16", "bf16")):
        if method in results:
            result = results[method]
            achieved = result["tokens_per_second"] * result["flops_per_token"] / 1e9
            print(f"{method} pass reaches {achieved:.1f} GFLOP/s = {achieved / best_rate[name]:.0%} of the best "
                  f"measured {name} matmul rate ({result['flops_per_token'] / 1e6:.0f} MFLOP per token)")
    if "streamed-bf16" in results:
        streamed_bf16 = results["streamed-bf16"]
        change = max(abs(a - b) / b for a, b in zip(streamed_bf16["alpha"], streamed["alpha"]))
        print(f"bf16 pass / fp32 pass speed: {streamed['seconds'] / streamed_bf16['seconds']:.2f}x; largest relative "
              f"change of alpha under bf16: {change:.2e}")
    max_diff = max(abs(a - b) for a, b in zip(streamed["alpha"], naive["alpha"]))
    print(f"speed-up of the streamed pass over the naive loop: {naive['seconds'] / streamed['seconds']:.2f}x; "
          f"peak memory ratio naive/streamed: {naive['peak_rss_mib'] / streamed['peak_rss_mib']:.2f}")
    print(f"streamed peak RSS at {larger['n_tokens']} vs {streamed['n_tokens']} tokens: "
          f"{larger['peak_rss_mib']:.0f} vs {streamed['peak_rss_mib']:.0f} MiB")
    print(f"largest |alpha_streamed - alpha_naive|: {max_diff:.2e}")

if __name__ == "__main__":
    main()
