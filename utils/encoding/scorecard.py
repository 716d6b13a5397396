"""Chapter 1's headline checks: the encoding is accurate and sparse, each with an interval over texts.
"""
from __future__ import annotations

import numpy as np

from ..uncertainty import Check, n_resampled, percentile_interval, resampled_log_alphas
from ..validation import check_float
from .fit import SubsetRefitter


def headline_checks(
    activations,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    r2_threshold: float = 0.8,
    sparse_share: float = 0.25,
    kept_share: float = 0.95,
    n_boot: int = 200,
    boot_seed: int = 0,
) -> list:
    """The scorecard's checks of "the encoding is accurate and sparse", each with an interval over texts.

    Checks (:class:`utils.uncertainty.Check`):

    - accurate: held-out R² of the fit at least ``r2_threshold``;
    - sparse: an OLS refit on the ``sparse_share`` of the dimensions with the largest ``|A|`` keeps at least
      ``kept_share`` of the full R².

    Intervals: a bootstrap over the documents of the pass (each with all its windows); each sample re-averages alpha
    from the kept per-window sums, refits A and recomputes both numbers, the choice of the top dimensions included
    (:class:`SubsetRefitter`: two small solves per sample); percentile intervals centred on the measured numbers
    (:func:`utils.uncertainty.percentile_interval`).

    Args:
        activations: a :class:`utils.activations.Activations` pass (E is taken from its head).
    """

    E = activations.head.E.numpy().astype(np.float64)
    k = max(1, int(np.ceil(check_float("sparse_share", sparse_share, low=0.0, high=1.0, low_inclusive=False)
                           * E.shape[1])))
    refitter = SubsetRefitter(E, test_fraction=test_fraction, seed=seed)
    r2, top_r2 = refitter.r2(activations.log_alpha.numpy()[None], top_k=k)[0]
    samples = np.concatenate([refitter.r2(block, top_k=k) for block in
                              resampled_log_alphas(activations, n_boot=n_boot, seed=boot_seed)])
    n_documents = n_resampled(activations.document)
    r2_interval = percentile_interval(samples[:, 0], estimate=r2, n_groups=n_documents)
    kept_interval = percentile_interval(samples[:, 1] / samples[:, 0], estimate=top_r2 / r2, n_groups=n_documents)
    return [
        Check("accurate: held-out R² of the log-linear fit", float(r2), r2_interval, r2_threshold, "above"),
        Check(f"sparse: share of that R² kept by the top {k} of {E.shape[1]} dimensions of |A|",
              float(top_r2 / r2), kept_interval, kept_share, "above"),
    ]
