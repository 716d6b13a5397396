"""Speed and memory of the deletion sweep (utils.pruning.sweep.deletion_sweep) against the two ways it replaces.

On the same positions of held-out Wikipedia (whole windows of the cached test pass, so that a rerun sees the same
text), for the chapter's shape of sweep (``--orders`` deletion orders × the nonzero ``--fractions``):

1. ``sweep``: the streamed sweep from the cached hidden states: full logits once per chunk, each order's pruned
   logits obtained incrementally as the fraction grows, the KL in closed form;
2. ``per-setting``: one :func:`utils.compare.compare_heads` call per setting from the same cache (full and
   pruned head both evaluated for every setting), timed on ``--measured-settings`` settings and extrapolated;
3. ``rerun``: for each setting a real pruned copy of the model (``with_output_head``) runs over the windows and
   its logits are compared with the full model's, timed on ``--measured-settings`` settings and extrapolated.

Each runs in its own process, so peak resident memory (which includes the loaded model) is its own. The figures of
the three are checked against each other on the measured settings. Orders are random (the cost of a sweep does not
depend on which criterion produced the order).

    python benchmarks/bench_pruning.py [--positions 1024] [--orders 9] [--measured-settings 3]

Threads while sampling (:func:`utils.pruning.generation.torch_threads`), measured once on this book's 2-core machine
(32 prompts x 24 tokens of smollm2-135m): idle, two threads sampled 1.65x faster than one (4.4 s against 7.4 s);
with the cores shared with other work, one thread was about 5x faster than two.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

FRACTIONS = [0.0, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]  # the chapter's grid


def setup(model: str, positions: int, n_orders: int):
    from utils.activations import compute_activations
    from utils.compare import next_token_targets
    from utils.models import load_model
    from utils.pruning.criteria import rank_dimensions

    loaded = load_model(model)
    acts = compute_activations(loaded, "wikipedia", "test", window_length=128, n_tokens=8192)
    n_windows = max(1, positions // acts.token_ids.shape[1])
    token_ids = acts.token_ids[:n_windows]
    hidden = acts.hidden[:n_windows].reshape(-1, acts.head.d)
    targets = next_token_targets(token_ids)
    orders = {("random", s): rank_dimensions("random", acts.head.E, seed=s) for s in range(n_orders)}
    return loaded, acts.head, token_ids, hidden, targets, orders


def settings_to_measure(orders: dict, fractions: list[float], count: int) -> list[tuple]:
    """The first ``count`` nonzero settings of the first order (fractions spread over the grid)."""
    first = next(iter(orders))
    nonzero = [f for f in fractions if f > 0]
    step = max(1, len(nonzero) // count)
    return [(first, f) for f in nonzero[::step][:count]]


@torch.no_grad()
def measure(method: str, model: str, positions: int, n_orders: int, measured: int, chunk_size: int) -> dict:
    from utils.compare import compare_heads
    from utils.head import OutputHead, with_output_head
    from utils.pruning.criteria import keep_columns
    from utils.pruning.heads import pruned_output_head
    from utils.pruning.sweep import deletion_sweep

    loaded, head, token_ids, hidden, targets, orders = setup(model, positions, n_orders)
    n_settings = len(orders) * sum(f > 0 for f in FRACTIONS)
    chosen = settings_to_measure(orders, FRACTIONS, measured)
    figures = {}
    start = time.perf_counter()
    if method == "sweep":
        sweep = deletion_sweep(hidden, head, orders, FRACTIONS, targets=targets, chunk_size=chunk_size,
                               progress=False)
        seconds = time.perf_counter() - start
        for name, fraction in chosen:
            row = sweep[(sweep.criterion == name[0]) & (sweep.seed == name[1]) & (sweep.fraction == fraction)].iloc[0]
            figures[f"{fraction}"] = [row.mean_kl, row.top1_agreement, row.nll_new]
        per_setting = seconds / n_settings
    elif method == "per-setting":
        for name, fraction in chosen:
            keep = keep_columns(orders[name], fraction)
            result = compare_heads(hidden, head, OutputHead(head.E[:, keep], head.b), targets=targets,
                                   new_columns=keep, chunk_size=chunk_size)
            figures[f"{fraction}"] = [result.mean_kl, result.top1_agreement, result.nll_new]
        per_setting = (time.perf_counter() - start) / len(chosen)
        seconds = per_setting * n_settings
    else:  # rerun: the full model once, then a real pruned copy per setting, over the same windows
        full_log_p = torch.log_softmax(loaded.model(input_ids=token_ids).logits.reshape(-1, head.V), dim=-1)
        reference_seconds = time.perf_counter() - start
        start = time.perf_counter()
        valid = targets >= 0
        rows = valid.nonzero().squeeze(1)
        for name, fraction in chosen:
            pruned = with_output_head(loaded.model, pruned_output_head(head, keep_columns(orders[name], fraction)))
            log_q = torch.log_softmax(pruned(input_ids=token_ids).logits.reshape(-1, head.V), dim=-1)
            kl = float((full_log_p.exp() * (full_log_p - log_q)).sum(-1).mean())
            agree = float((full_log_p.argmax(-1) == log_q.argmax(-1)).float().mean())
            figures[f"{fraction}"] = [kl, agree, float(-log_q[rows, targets[rows]].mean())]
            del pruned, log_q
        per_setting = (time.perf_counter() - start) / len(chosen)
        seconds = reference_seconds + per_setting * n_settings
    return {
        "method": method,
        "positions": int(hidden.shape[0]),
        "n_settings": n_settings,
        "seconds": seconds,
        "seconds_per_setting": per_setting,
        "extrapolated": method != "sweep",
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "figures": figures,
    }


def run_child(method: str, args) -> dict:
    command = [sys.executable, __file__, "--child", method, "--model", args.model, "--positions", str(args.positions),
               "--orders", str(args.orders), "--measured-settings", str(args.measured_settings),
               "--chunk-size", str(args.chunk_size)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--positions", type=int, default=1024, help="positions (whole windows of 128 tokens)")
    parser.add_argument("--orders", type=int, default=9, help="deletion orders (the chapter uses 4 criteria + 5)")
    parser.add_argument("--measured-settings", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--child", choices=["sweep", "per-setting", "rerun"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.model, args.positions, args.orders, args.measured_settings,
                                 args.chunk_size)))
        return
    results = {method: run_child(method, args) for method in ("sweep", "per-setting", "rerun")}
    sweep = results["sweep"]
    print(f"{sweep['n_settings']} pruned heads ({args.orders} orders x {sum(f > 0 for f in FRACTIONS)} fractions) "
          f"over {sweep['positions']} positions of held-out Wikipedia, model {args.model}")
    for result in results.values():
        note = f" (extrapolated from {args.measured_settings} settings)" if result["extrapolated"] else ""
        print(f"{result['method']:>12s}: {result['seconds']:8.1f} s in all, {result['seconds_per_setting']:6.2f} s "
              f"per setting{note}; peak RSS {result['peak_rss_mib']:6.0f} MiB")
    for method in ("per-setting", "rerun"):
        print(f"speed-up of the sweep over {method}: {results[method]['seconds'] / sweep['seconds']:.1f}x")
    worst = {m: 0.0 for m in ("mean_kl", "top1_agreement", "nll_new")}
    for method in ("per-setting", "rerun"):
        for key, values in results[method]["figures"].items():
            for metric, a, b in zip(worst, values, sweep["figures"][key]):
                worst[metric] = max(worst[metric], abs(a - b))
    print("largest difference of the sweep's figures from the other two on the measured settings: "
          + ", ".join(f"{metric} {value:.1e}" for metric, value in worst.items()))


if __name__ == "__main__":
    main()
