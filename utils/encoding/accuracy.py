"""Chapter 1's accuracy of the encoding: bootstrap intervals of the held-out fit, fits by position groups, and
the tokens the fit gets most wrong.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from scipy import stats
from sklearn.metrics import r2_score

from ..activations import mean_softmax, position_entropy
from ..validation import check_float, check_positive_int
from .fit import EncodingFit, EncodingRefitter

METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "r2": r2_score,
    "pearson": lambda a, p: float(np.corrcoef(a, p)[0, 1]),
    "spearman": lambda a, p: float(stats.spearmanr(a, p)[0]),
}


def bootstrap_ci(
    actual: np.ndarray,
    predicted: np.ndarray,
    metric: str,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric`` over resampled tokens (a token-level interval).

    ``scipy.stats.bootstrap`` (percentile method) resamples the token indices, ``n_boot`` draws of ``len(actual)``
    indices from ``numpy.random.default_rng(seed)``, 100 resamples at a time; ``metric`` is computed on each.

    Args:
        actual, predicted: (n,) paired values, e.g. actual and predicted ``-log alpha`` of the held-out tokens.
        metric: a name of :data:`METRICS`.
    """
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not allowed; choose one of {sorted(METRICS)}")
    n_boot = check_positive_int("n_boot", n_boot)
    check_float("level", level, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    actual, predicted, score = np.asarray(actual), np.asarray(predicted), METRICS[metric]

    def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray:  # index: (batch, n) resampled token indices
        index = np.atleast_2d(index)
        if metric == "r2":  # one call per batch, each column a resample (the same sums, bit for bit, as one by one)
            return r2_score(actual[index].T, predicted[index].T, multioutput="raw_values")
        return np.array([score(actual[rows], predicted[rows]) for rows in index])

    result = stats.bootstrap((np.arange(len(actual)),), statistic, n_resamples=n_boot, batch=100, vectorized=True,
                             confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def accuracy_table(fit: EncodingFit, *, n_boot: int = 1000, seed: int = 0) -> "pd.DataFrame":
    """The fit's held-out accuracy with token-level 95% intervals (:func:`bootstrap_ci`), one row per metric.

    Columns: ``metric`` (r2, pearson, spearman), ``held-out value``, ``95% CI low``, ``95% CI high``.
    """

    actual, predicted = fit.target[fit.test_tokens], fit.predicted[fit.test_tokens]
    rows = []
    for metric in METRICS:
        low, high = bootstrap_ci(actual, predicted, metric, n_boot=n_boot, seed=seed)
        rows.append({"metric": metric, "held-out value": getattr(fit, metric), "95% CI low": low, "95% CI high": high})
    return pd.DataFrame(rows)


def worst_tokens(fit: EncodingFit, n: int) -> np.ndarray:
    """The ``n`` held-out token ids with the largest ``|residual|``, worst first."""
    n = check_positive_int("n", n)
    return fit.test_tokens[np.argsort(-np.abs(fit.residual[fit.test_tokens]))[:n]]


def second_model_status(second_model: str | None, model: str, installed: bool) -> str:
    """Whether the optional second model is compared, in words: not asked for (None or the main model itself),
    computed (``installed``), or not installed."""
    if not second_model or second_model == model:
        return "not computed: no second model was asked for"
    if installed:
        return f"computed for {second_model}"
    return f"not computed: {second_model!r} is not installed here (optional; see the rerunning page)"


def fits_by_position_groups(
    E, hidden, head, groups: dict, *, test_fraction: float = 0.2, seed: int = 0, chunk_size: int = 1024
) -> "pd.DataFrame":
    """Fit the encoding separately on ``alpha`` averaged over each group of positions.

    Args:
        E: (V, d) output embedding (inputs of every fit).
        hidden: (N, d) torch hidden states.
        head: the :class:`~utils.head.OutputHead` that turns hidden states into distributions.
        groups: label -> (n,) position indices into ``hidden``.

    Returns:
        one row per group: label, n_positions, mean_entropy (nats), r2, pearson, spearman (held-out tokens).
    """


    refitter = EncodingRefitter(E, test_fraction=test_fraction, seed=seed)
    rows = []
    for label, positions in groups.items():
        index = torch.as_tensor(np.asarray(positions), dtype=torch.int64)
        if index.numel() == 0:
            raise ValueError(f"group {label!r} holds no positions")
        h_group = hidden[index]
        alpha = mean_softmax(h_group, head, chunk_size).numpy()
        fit = refitter.fit(alpha)
        rows.append(
            {
                "group": label,
                "n_positions": int(index.numel()),
                "mean_entropy": float(position_entropy(h_group, head, chunk_size).mean()),
                "r2": fit.r2,
                "pearson": fit.pearson,
                "spearman": fit.spearman,
            }
        )
    return pd.DataFrame(rows)


def _token_descriptors(token: int, tokenizer, counts: np.ndarray, special: set) -> dict[str, bool]:
    text = tokenizer.decode([int(token)])
    return {
        "unseen": bool(counts[token] == 0),
        "non_ascii": (not text.isascii()) or "\ufffd" in text,
        "special": int(token) in special,
        # a piece that continues a word: starts with a letter, no leading space (BPE word-internal subword)
        "word_internal": bool(text) and text[0].isalpha(),
    }


def error_table(fit: EncodingFit, tokenizer, counts: np.ndarray, n: int = 15) -> "pd.DataFrame":
    """The ``n`` held-out tokens whose ``-log alpha`` the encoding gets most wrong, with what describes them.

    Columns: token id, the decoded token, corpus count, actual and predicted ``-log alpha``, residual
    (predicted - actual), and descriptors: never seen in the corpus, non-ASCII, special token, word-internal piece.
    """

    worst = worst_tokens(fit, n)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    rows = []
    for token in worst:
        rows.append(
            {
                "token_id": int(token),
                "token": repr(tokenizer.decode([int(token)])),
                "corpus_count": int(counts[token]),
                "actual": float(fit.target[token]),
                "predicted": float(fit.predicted[token]),
                "residual": float(fit.residual[token]),
                **_token_descriptors(token, tokenizer, counts, special),
            }
        )
    return pd.DataFrame(rows)


def describe_tokens(tokens: np.ndarray, tokenizer, counts: np.ndarray) -> dict[str, float]:
    """Shares of ``tokens`` that are unseen in the corpus, non-ASCII, special tokens, or word-internal pieces."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    rows = [_token_descriptors(token, tokenizer, counts, special) for token in tokens]
    return {name: float(np.mean([row[name] for row in rows])) for name in rows[0]}
