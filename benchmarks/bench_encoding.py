"""The encoding fit on the default model's output embedding: the project's least-squares path against an SVD.

    python benchmarks/bench_encoding.py                   # default model, 5 fits per path
    python benchmarks/bench_encoding.py --model PATH --repeats 3 --refits 20

Both paths solve ordinary least squares with an intercept of a (V,) target on the training rows of E (V, d), the fit
of chapter 1:

* svd: ``np.linalg.lstsq`` on the design ``[E_train, 1]`` (an SVD of a V x (d+1) matrix);
* normal equations: :class:`utils.encoding.fit.LeastSquares` (centred Gram matrix, Cholesky), as every fit of the book;
* refit: one :class:`utils.encoding.fit.EncodingRefitter` for many targets over the same E (groups of positions,
  corpora, few-shot samples), the cost per additional fit.

The target is -log of a softmax of E times a random vector (a real output distribution of this head); the speed does
not depend on it. Prints seconds per fit, the speed-ups and the largest coefficient difference between the paths.
Timings on a shared machine are noisy: compare the ratios measured within one run.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from utils.encoding.fit import EncodingRefitter, LeastSquares, split_tokens
from utils.head import output_head
from utils.models import load_model


def seconds_per_call(function, repeats: int) -> float:
    """Best-of-``repeats`` wall-clock seconds of ``function()`` (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per path (the best is reported)")
    parser.add_argument("--refits", type=int, default=20, help="targets refitted with one EncodingRefitter")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    E = output_head(load_model(args.model).model).E.double().numpy()
    rng = np.random.default_rng(args.seed)
    logits = E @ rng.normal(size=E.shape[1])
    target = -(logits - logits.max() - np.log(np.exp(logits - logits.max()).sum()))  # -log softmax, (V,)
    train, _ = split_tokens(E.shape[0], 0.2, args.seed)
    X, y = E[train], target[train]
    design = np.hstack([X, np.ones((len(train), 1))])

    svd_solution = np.linalg.lstsq(design, y, rcond=None)[0]
    coefficients, intercept = LeastSquares(X).solve(y)
    difference = max(np.abs(svd_solution[:-1] - coefficients).max(), abs(svd_solution[-1] - intercept))

    svd = seconds_per_call(lambda: np.linalg.lstsq(design, y, rcond=None), args.repeats)
    normal = seconds_per_call(lambda: LeastSquares(X).solve(y), args.repeats)
    refitter = EncodingRefitter(E, test_fraction=0.2, seed=args.seed)
    alphas = [np.exp(-target + 0.01 * rng.normal(size=E.shape[0])) for _ in range(args.refits)]
    started = time.perf_counter()
    for alpha in alphas:
        refitter.fit(alpha)
    refit = (time.perf_counter() - started) / args.refits

    print(f"model {args.model}: E {E.shape[0]:,} x {E.shape[1]}, {len(train):,} training rows")
    print(f"  svd (np.linalg.lstsq)            {svd:7.3f} s per fit")
    print(f"  normal equations (LeastSquares)  {normal:7.3f} s per fit   {svd / normal:5.1f}x faster than svd")
    print(f"  EncodingRefitter, per refit      {refit:7.3f} s per fit   {svd / refit:5.1f}x faster than svd "
          f"(incl. held-out R², Pearson, Spearman)")
    print(f"  largest coefficient difference   {difference:.1e}")


if __name__ == "__main__":
    main()
