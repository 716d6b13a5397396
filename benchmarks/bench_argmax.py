"""Speed of the argmaxability tests (the utils.argmax package) on a real output head, in one run.

Measures, on the default model's head (or any model given with --model):
1. braid reflect batched over many tokens at once (matrix products, chunked argmax) against a loop that runs
   the same test one token at a time, on the same sample of tokens; the ratio is the speed-up of batching;
2. the Chebyshev-centre LP per token with cutting planes (forced on tokens braid already cleared, so the LP has
   real work) and, for one token, the LP with all V - 1 constraints at once;
3. the same LP timings with numpy's BLAS on all its threads instead of one (why the tests run their small numpy
   products single-threaded: utils.compute.single_threaded_blas);
4. with --full, the full-vocabulary verdicts (uncached), the figure the book relies on.

Usage: .venv/bin/python benchmarks/bench_argmax.py [--model smollm2-135m] [--sample 256] [--lp-tokens 10] [--full]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from utils.argmax.braid import braid_batch
from utils.argmax.lp import chebyshev_on_head, solve_lp
from utils.argmax.prepared import DEFAULT_BOX, DEFAULT_PATIENCE, DEFAULT_RADIUS_TOL, prepare_head
from utils.argmax.verdicts import find_unargmaxable
from utils.head import output_head
from utils.models import load_model


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sample", type=int, default=256, help="tokens for the batched-versus-loop comparison")
    parser.add_argument("--loop-tokens", type=int, default=32, help="tokens actually run one at a time")
    parser.add_argument("--lp-tokens", type=int, default=10, help="tokens for the per-token LP timing")
    parser.add_argument("--full-lp", action="store_true", help="also time one LP with all V - 1 constraints")
    parser.add_argument("--full", action="store_true", help="also time the full-vocabulary verdicts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    loaded = load_model(args.model)
    head = output_head(loaded.model)
    E = head.E.numpy()
    b = None if head.b is None else head.b.numpy()
    V, d = E.shape
    print(f"model {args.model}: V={V}, d={d}, bias={'yes' if b is not None else 'no'}, torch threads "
          f"{__import__('torch').get_num_threads()}")
    rng = np.random.default_rng(args.seed)
    sample = np.sort(rng.choice(V, size=args.sample, replace=False))

    # 1. batched braid against one token at a time (same prepared head, tokens and settings)
    prepared, seconds_prepare = timed(prepare_head, E, b)
    reduced, representative, twin = prepared
    classes = np.searchsorted(reduced.rows, representative[sample])
    settings = dict(patience=DEFAULT_PATIENCE, box=DEFAULT_BOX, start="centred", block_size=2048,
                    chunk_size=8192, progress=False)
    batched, t_batched = timed(braid_batch, reduced, classes, **settings)
    braid_batch(reduced, classes[:1], **settings)  # warm-up
    looped, t_loop = timed(lambda: [braid_batch(reduced, classes[i : i + 1], **settings)
                                    for i in range(args.loop_tokens)])
    same = all(
        bool(r.cleared[0]) == bool(batched.cleared[i]) and int(r.steps[0]) == int(batched.steps[i])
        for i, r in enumerate(looped)
    )
    per_batched = t_batched / len(sample)
    per_loop = t_loop / len(looped)
    print(f"preparing the head (checks, duplicate rows, float32 copy): {seconds_prepare:.1f} s")
    print(f"\nbraid reflect, {len(sample)} tokens batched: {t_batched:.2f} s ({1e3 * per_batched:.1f} ms/token); "
          f"cleared {int(batched.cleared.sum())}/{len(sample)}, steps: max {int(batched.steps.max())}")
    print(f"braid reflect, one token at a time ({len(looped)} tokens): {t_loop:.2f} s ({1e3 * per_loop:.1f} ms/token); "
          f"same verdicts and steps as batched: {same}")
    print(f"  batching speed-up: {per_loop / per_batched:.1f}x per token; "
          f"full vocabulary extrapolated: batched {per_batched * V / 60:.1f} min, loop {per_loop * V / 60:.1f} min")

    # 2. LP per token (cutting planes), forced on tokens braid cleared
    lp_tokens = [int(t) for t in sample if twin[t] < 0][: args.lp_tokens]
    lp_settings = dict(box=DEFAULT_BOX, radius_tol=DEFAULT_RADIUS_TOL, initial=256, add=256, max_rounds=200,
                       chunk_size=8192)
    times, rounds, constraints, radii, agree = [], [], [], [], 0
    for t in lp_tokens:
        c = int(np.searchsorted(reduced.rows, t))
        with threadpool_limits(limits=1, user_api="blas"):  # as the package runs it
            result, seconds = timed(chebyshev_on_head, reduced, c, [reduced.E64[c]], **lp_settings)
        times.append(seconds)
        rounds.append(result.rounds)
        constraints.append(result.constraints)
        radii.append(result.radius)
        agree += int(result.argmaxable == bool(batched.cleared[np.flatnonzero(sample == t)[0]]))
    print(f"\nChebyshev LP with cutting planes, {len(lp_tokens)} tokens: {np.mean(times):.2f} s/token "
          f"(min {np.min(times):.2f}, max {np.max(times):.2f}); rounds {np.mean(rounds):.1f}, "
          f"constraints {np.mean(constraints):.0f} of {V - 1}; radius from {np.min(radii):.3g} to {np.max(radii):.3g}; "
          f"verdict = braid verdict for {agree}/{len(lp_tokens)}")
    print(f"  LP time per token / batched braid time per token: {np.mean(times) / per_batched:.0f}x")
    classes_lp = [int(np.searchsorted(reduced.rows, t)) for t in lp_tokens]
    threaded = [timed(chebyshev_on_head, reduced, c, [reduced.E64[c]], **lp_settings)[1] for c in classes_lp]
    print(f"  the same LPs with numpy's BLAS on all its threads: {np.mean(threaded):.2f} s/token "
          f"({np.mean(threaded) / np.mean(times):.1f}x the single-threaded time)")
    if args.full_lp:
        c = int(np.searchsorted(reduced.rows, lp_tokens[0]))
        others = np.delete(np.arange(reduced.U), c)
        with threadpool_limits(limits=1, user_api="blas"):
            (code, status, x, r), seconds = timed(solve_lp, reduced, c, others, DEFAULT_BOX, 1e-9)
        print(f"  one LP with all {len(others)} constraints: {seconds:.1f} s, radius {r:.6g} "
              f"(cutting planes: {radii[0]:.6g}); cutting-plane speed-up {seconds / times[0]:.0f}x")

    # 4. full vocabulary
    if args.full:
        verdicts, seconds = timed(find_unargmaxable, E, b, cache=False, progress=False)
        counts = verdicts.counts()
        print(f"\nfull vocabulary ({V} tokens): {seconds:.1f} s ({verdicts.meta['seconds_braid']:.1f} s braid, "
              f"{verdicts.meta['seconds_lp']:.1f} s LP); {counts}")


if __name__ == "__main__":
    main()
