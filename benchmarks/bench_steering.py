"""Steering sweep from the cache against rerunning the edited model per edit: same edits, one run.

    python benchmarks/bench_steering.py                    # default model, 4 held-out windows, 8 edits
    python benchmarks/bench_steering.py --windows 2 --tokens 2 --model PATH

Both paths compute alpha_w after each one-token edit over the same held-out windows:

* cache: per-position log-normalisers from the cached final hidden states (one streamed pass over the vocabulary),
  then every edit is elementwise algebra on a (positions × tokens) array;
* rerun: for each edit, a copy of the model with the edited head and a forward pass over the windows.

Prints the wall-clock times, the cost per edit, the speed-up, and the largest disagreement between the two paths.
Timings on a shared machine are noisy: compare the ratio measured within one run.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from utils.activations import compute_activations
from utils.encoding.fit import fit_encoding
from utils.models import load_model
from utils.steering.edits import edited_head, make_edit
from utils.steering.forward import forward_log_alpha
from utils.steering.measure import base_statistics, steering_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--corpus", default="wikipedia")
    parser.add_argument("--window-length", type=int, default=128)
    parser.add_argument("--n-tokens", type=int, default=8192, help="size of the cached held-out pass (shared)")
    parser.add_argument("--windows", type=int, default=4, help="held-out windows the edits are measured on")
    parser.add_argument("--tokens", type=int, default=4, help="tokens edited (one at a time)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[1 / 20, 20])
    parser.add_argument("--k", type=int, default=32, help="masked dimensions of the edit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    loaded = load_model(args.model)
    acts = compute_activations(loaded, args.corpus, "test", window_length=args.window_length, n_tokens=args.n_tokens)
    fit = fit_encoding(acts.head.E.numpy().astype(np.float64), acts.alpha.numpy(), seed=args.seed)
    edit = make_edit(fit.A, "mask", min(args.k, acts.head.d))
    rng = np.random.default_rng(args.seed)
    tokens = np.sort(rng.choice(acts.head.V, size=args.tokens, replace=False))
    token_ids = acts.token_ids[: args.windows]
    hidden = acts.hidden[: args.windows].reshape(-1, acts.head.d)
    n_edits = len(tokens) * len(args.ratios)
    print(f"model={loaded.name}  V={acts.head.V}  d={acts.head.d}  positions={hidden.shape[0]}  "
          f"edits={n_edits} ({len(tokens)} tokens × {len(args.ratios)} ratios, mask k={edit.k})")

    start = time.perf_counter()
    base = base_statistics(hidden, acts.head, progress=False)
    base_seconds = time.perf_counter() - start
    start = time.perf_counter()
    sweep = steering_sweep(base, tokens, args.ratios, [edit], progress=False)
    sweep_seconds = time.perf_counter() - start
    cache_seconds = base_seconds + sweep_seconds

    start = time.perf_counter()
    rerun = np.empty((len(args.ratios), len(tokens)))
    for i, r in enumerate(args.ratios):
        for j, token in enumerate(tokens):
            head = edited_head(acts.head, int(token), r, edit)
            rerun[i, j] = forward_log_alpha(loaded, head, token_ids, [int(token)])[0]
    rerun_seconds = time.perf_counter() - start

    difference = float(np.abs(rerun - sweep.log_alpha_after[0]).max())
    print(f"cache : {cache_seconds:8.2f} s  (normalisers {base_seconds:.2f} s once, then "
          f"{1000 * sweep_seconds / n_edits:.2f} ms per edit)")
    print(f"rerun : {rerun_seconds:8.2f} s  ({rerun_seconds / n_edits:.2f} s per edit: model copy + forward pass)")
    print(f"speed-up for these {n_edits} edits: {rerun_seconds / cache_seconds:.1f}×; "
          f"per additional edit: {rerun_seconds / n_edits / (sweep_seconds / n_edits):.0f}×")
    print(f"largest |log alpha_w| difference between the two paths: {difference:.2e} nats")


if __name__ == "__main__":
    main()
