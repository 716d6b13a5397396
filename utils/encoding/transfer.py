"""Does the encoding fitted on one corpus hold on another (chapter 1): transfer of the fit, rescaled, and at
equal numbers of positions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from ..validation import check_int, check_positive_int
from .dispersion import windows_log_alpha
from .fit import score_encoding


def rescaled_transfer_r2(fit, refitter, alpha) -> float:
    """Held-out R² of the main fit's direction on another corpus, its intercept and scale refitted there.

    The main fit's prediction ``s_w = E_w · A + B`` is regressed (OLS, slope and intercept) on the other corpus's
    ``-log alpha`` over the training tokens of ``refitter``'s split, and scored on its held-out tokens: it measures
    the direction, not the main corpus's intercept and scale.
    """
    target = -np.log(np.asarray(alpha, dtype=np.float64))
    score = refitter.E @ fit.A + fit.B
    train, test = refitter.train_tokens, refitter.test_tokens
    slope, intercept = np.polyfit(score[train], target[train], 1)
    return r2_score(target[test], slope * score[test] + intercept)


def transfer_table(fit, refitter, passes: dict) -> pd.DataFrame:
    """The main corpus's fit carried to other corpora, beside each corpus's own fit (held-out tokens).

    Args:
        fit: the main corpus's :class:`utils.encoding.fit.EncodingFit`; refitter: its
            :class:`utils.encoding.fit.EncodingRefitter` (same E and split); passes: name -> Activations of each corpus.

    Returns:
        one row per corpus: corpus, positions, "R² (A from main corpus)" (the main fit's prediction as it stands:
        direction, intercept and scale), "R² (main direction, rescaled)" (:func:`rescaled_transfer_r2`: intercept
        and scale refitted on the corpus's training tokens), "Spearman (A from main corpus)", "R² (own A)",
        "cosine(A_main, A_own)", text (the pass described).
    """

    rows = []
    for name, other in passes.items():
        alpha = other.alpha.numpy()
        own = refitter.fit(alpha)
        moved = score_encoding(fit, refitter.E, alpha)
        cosine = float(fit.A @ own.A / np.linalg.norm(fit.A) / np.linalg.norm(own.A))
        rows.append({"corpus": name, "positions": other.n_positions, "R² (A from main corpus)": moved["r2"],
                     "R² (main direction, rescaled)": rescaled_transfer_r2(fit, refitter, alpha),
                     "Spearman (A from main corpus)": moved["spearman"], "R² (own A)": own.r2,
                     "cosine(A_main, A_own)": cosine, "text": other.describe()})
    return pd.DataFrame(rows)


def equal_positions_r2(refitter, window_log_sums, n_windows: int, window_length: int, n_subsets: int,
                       seed: int) -> np.ndarray:
    """Own-fit R² of the main corpus on ``n_subsets`` seeded subsets of ``n_windows`` of its windows (subset i drawn
    with ``default_rng(seed + i)``), alpha re-averaged from the per-window sums (n_windows_all, V): (n_subsets,)."""
    total = len(window_log_sums)
    n_windows = check_int("n_windows", n_windows, minimum=1, maximum=total)
    return np.array([refitter.fit(np.exp(windows_log_alpha(
        window_log_sums, np.random.default_rng(seed + i).choice(total, n_windows, replace=False), window_length))).r2
        for i in range(check_positive_int("n_subsets", n_subsets))])
