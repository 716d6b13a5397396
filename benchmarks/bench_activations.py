"""Speed and memory of the activation pass (utils.activations.run_pass) on the default model.

Prints, for the same windows of the Wikipedia corpus:
- the streamed, batched pass: tokens per second, peak resident memory, and the share of this machine's fp32
  matrix-multiply rate (measured in the same run) that the pass reaches;
- a naive loop beside it: one window at a time through the full model, the full softmax of every window kept
  (float64) and summed;
- the ratio of the two, the largest difference of their alpha, and the streamed pass's peak memory at two token
  counts (it grows with positions × d for the kept hidden states, never with positions × vocabulary).
Each measurement runs in its own process so that peak memory is its own.

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


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best-of fp32 matrix-multiply rate of this machine right now (GFLOP/s)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def forward_flops_per_token(model) -> float:
    """2 × the weights of every linear map applied per token (attention score products excluded)."""
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 2.0 * linear


def measure(method: str, n_tokens: int, window_length: int, batch_size: int) -> dict:
    from utils.activations import run_pass
    from utils.corpora import read_corpus, sample_windows
    from utils.models import load_model

    loaded = load_model("smollm2-135m")
    text = read_corpus("wikipedia", "train")
    token_ids = sample_windows(loaded.tokenizer, text, window_length, n_tokens, 0).token_ids
    torch.set_grad_enabled(False)
    loaded.model(token_ids[:1])  # warm-up: first-call allocations and kernel selection are not part of the pass
    start = time.perf_counter()
    if method == "streamed":
        _, log_alpha, _ = run_pass(loaded, token_ids, batch_size=batch_size, desc="streamed")
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
    parser.add_argument("--child", choices=["streamed", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.n_tokens, args.window_length, args.batch_size)))
        return
    rate = matmul_gflops()
    streamed = run_child("streamed", args.n_tokens, args.window_length, args.batch_size)
    naive = run_child("naive", args.n_tokens, args.window_length, args.batch_size)
    larger = run_child("streamed", 2 * args.n_tokens, args.window_length, args.batch_size)
    rate_after = matmul_gflops()
    max_diff = max(abs(a - b) for a, b in zip(streamed["alpha"], naive["alpha"]))
    achieved = streamed["tokens_per_second"] * streamed["flops_per_token"] / 1e9
    print(f"machine fp32 matmul rate: {rate:.1f} GFLOP/s before, {rate_after:.1f} GFLOP/s after the passes")
    for result in (streamed, naive, larger):
        print(f"{result['method']:>9s} {result['n_tokens']:6d} tokens: {result['seconds']:7.1f} s, "
              f"{result['tokens_per_second']:7.1f} tokens/s, peak RSS {result['peak_rss_mib']:7.0f} MiB")
    print(f"streamed pass reaches {achieved:.1f} GFLOP/s = {achieved / max(rate, rate_after):.0%} of the best "
          f"measured matmul rate ({streamed['flops_per_token'] / 1e6:.0f} MFLOP per token)")
    print(f"speed-up of the streamed pass over the naive loop: {naive['seconds'] / streamed['seconds']:.2f}x; "
          f"peak memory ratio naive/streamed: {naive['peak_rss_mib'] / streamed['peak_rss_mib']:.2f}")
    print(f"streamed peak RSS at {larger['n_tokens']} vs {streamed['n_tokens']} tokens: "
          f"{larger['peak_rss_mib']:.0f} vs {streamed['peak_rss_mib']:.0f} MiB")
    print(f"largest |alpha_streamed - alpha_naive|: {max_diff:.2e}")


if __name__ == "__main__":
    main()
