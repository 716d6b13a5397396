"""Does the encoding hold on restricted output spaces (chapter 1): :func:`subset_log_alphas` restricts the
softmax to vocabulary subsets, one head product per chunk of positions; :func:`fixed_rows_r2` fits each at the
same number of rows. All from cached hidden states (no model pass).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score

from ..head import OutputHead, iter_logits
from ..validation import check_positive_int
from .dispersion import RankBootstrap, bootstrap_rank


@torch.no_grad()
def subset_log_alphas(hidden: torch.Tensor, head: OutputHead, subsets: list, chunk_size: int = 512) -> list:
    """log alpha of softmaxes restricted to vocabulary subsets: one head product per chunk of positions.

    Args:
        hidden: (n, d) hidden states.
        subsets: list of (m_i,) token-id arrays.

    Returns:
        list of (m_i,) float64 arrays: log of the mean over positions of the softmax over each subset's columns.
    """
    if hidden.shape[0] == 0:
        raise ValueError("hidden holds no positions")
    index = [torch.as_tensor(np.asarray(s), dtype=torch.int64) for s in subsets]
    for i, s in enumerate(index):
        if s.ndim != 1 or s.numel() < 2 or int(s.min()) < 0 or int(s.max()) >= head.V:
            raise ValueError(f"subsets[{i}] must be 1-d with at least 2 token ids in [0, {head.V})")
    totals = [torch.full((s.numel(),), -math.inf, dtype=torch.float64) for s in index]
    for _, logits in iter_logits(hidden, head, chunk_size):
        for i, s in enumerate(index):
            restricted = torch.log_softmax(logits[:, s], dim=-1)
            totals[i] = torch.logaddexp(totals[i], torch.logsumexp(restricted, dim=0).double())
    return [(total - math.log(hidden.shape[0])).numpy() for total in totals]


def fixed_rows_r2(E, tokens, log_alpha, *, n_fit: int, n_test: int, seed: int = 0, penalties=None) -> float:
    """Held-out R² of a ridge fit of ``-log alpha`` on ``n_fit`` rows of ``E[tokens]``, scored on ``n_test`` others.

    The same row counts for every output-space size keep fits comparable; the ridge penalty is chosen on the
    training rows by leave-one-out (``sklearn.linear_model.RidgeCV``).
    """

    tokens = np.asarray(tokens)
    n_fit, n_test = check_positive_int("n_fit", n_fit), check_positive_int("n_test", n_test)
    if n_fit + n_test > len(tokens):
        raise ValueError(f"n_fit + n_test = {n_fit + n_test} exceeds the {len(tokens)} tokens of the subset")
    order = np.random.default_rng(seed).permutation(len(tokens))
    fit_rows, test_rows = order[:n_fit], order[n_fit : n_fit + n_test]
    X = np.asarray(E, dtype=np.float64)[tokens]
    y = -np.asarray(log_alpha, dtype=np.float64)
    penalties = np.logspace(-3, 3, 13) if penalties is None else np.asarray(penalties, dtype=np.float64)
    model = RidgeCV(alphas=penalties).fit(X[fit_rows], y[fit_rows])
    return r2_score(y[test_rows], model.predict(X[test_rows]))


@dataclass
class OutputSpace:
    """The output-space analysis: ``table`` (size, draw, r2: one row per fit), ``n_positions`` probed and
    ``n_fit_rows`` fitted rows per fit."""

    table: pd.DataFrame
    n_positions: int
    n_fit_rows: int

    def trend(self, *, n_boot: int = 1000, seed: int = 0) -> RankBootstrap:
        """Rank correlation of R² with the size over the fits, with its interval over subsets and row draws: each
        bootstrap sample redraws, within every size, that size's fits with replacement (:func:`stratified_draws`)."""
        draws = stratified_draws(self.table["size"].to_numpy(), n_boot, seed)
        return bootstrap_rank(self.table["size"], self.table.r2, draws, over="fits within each size", unit="fit")

    def sentence(self, *, n_boot: int = 1000, seed: int = 0) -> str:
        """The trend of R² with the output-space size in words, three-valued from :meth:`trend`'s interval."""
        trend = self.trend(n_boot=n_boot, seed=seed)
        word = trend.word("rises with the output-space size", "falls with the output-space size",
                          "shows no detectable trend with the output-space size")
        means = self.table.groupby("size").r2.mean()
        return (f"With {self.n_fit_rows:,} fitted rows at every size, held-out R² {word} (rank correlation "
                f"{trend.value:.2f} over {len(self.table)} fits, {trend.interval_text()}; mean R² "
                + ", ".join(f"{mean:.3f} at {size:,}" for size, mean in means.items()) + " tokens).")


def stratified_draws(strata, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) row indices: each sample redraws, within every stratum of ``strata`` (n,), as many rows of that
    stratum as it holds, with replacement (so every stratum keeps its size)."""
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    n_boot = check_positive_int("n_boot", n_boot)
    draws = np.empty((n_boot, len(strata)), dtype=np.int64)
    for value in np.unique(strata):
        rows = np.flatnonzero(strata == value)
        draws[:, rows] = rows[rng.integers(0, len(rows), size=(n_boot, len(rows)))]
    return draws


def output_space(hidden_flat: torch.Tensor, head: OutputHead, E, sizes, *, n_subsets: int, n_positions: int,
                 test_fraction: float = 0.2, seed: int = 0) -> OutputSpace:
    """R² of the encoding against the size of the softmax, at a fixed number of fitted rows.

    From ``default_rng(seed)``: ``n_subsets`` random vocabulary subsets of each size, then ``n_positions`` probed
    positions of ``hidden_flat`` (N, d); the full vocabulary is added. alpha over each subset
    (:func:`subset_log_alphas`), then :func:`fixed_rows_r2` on ``(1 - test_fraction) * min(sizes)`` rows (seed
    ``seed + i + draw`` for subset i), scored on the rest of ``min(sizes)``; the full vocabulary is fitted
    ``n_subsets`` times (draws of rows).
    """
    rng = np.random.default_rng(seed)
    V = head.V
    subsets = [(size, rng.choice(V, size, replace=False)) for size in sizes for _ in range(n_subsets)]
    subsets.append((V, np.arange(V)))
    probed = np.sort(rng.choice(hidden_flat.shape[0], min(n_positions, hidden_flat.shape[0]), replace=False))
    log_alphas = subset_log_alphas(hidden_flat[torch.as_tensor(probed)], head, [tokens for _, tokens in subsets])
    n_fit = int((1 - test_fraction) * min(sizes))
    rows = [{"size": size, "draw": draw, "r2": fixed_rows_r2(E, tokens, log_alpha, n_fit=n_fit,
                                                             n_test=min(sizes) - n_fit, seed=seed + i + draw)}
            for i, ((size, tokens), log_alpha) in enumerate(zip(subsets, log_alphas))
            for draw in range(n_subsets if size == V else 1)]
    return OutputSpace(pd.DataFrame(rows), len(probed), n_fit)
