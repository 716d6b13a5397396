"""Chapter 1's sparsity of the encoding: how much of the fit the largest weights of ``A`` carry (OLS refits on
the top dimensions, the lasso path).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import lasso_path
from sklearn.metrics import r2_score

from ..validation import check_float, check_int
from .fit import EncodingFit, dimensions_by_weight, ols


def top_k_mass(A: np.ndarray, k: int) -> float:
    """Share of ``sum |A_i|`` carried by the ``k`` largest ``|A_i|``."""
    k = check_int("k", k, minimum=1, maximum=len(A))
    magnitude = np.sort(np.abs(A))[::-1]
    return float(magnitude[:k].sum() / magnitude.sum())


def subset_r2(fit: EncodingFit, E, k: int) -> float:
    """Held-out R² of an OLS refit that uses only the ``k`` dimensions of largest ``|A|``."""
    E = np.asarray(E, dtype=np.float64)
    k = check_int("k", k, minimum=1, maximum=E.shape[1])
    keep = dimensions_by_weight(fit.A)[:k]
    A_k, B_k = ols(E[fit.train_tokens][:, keep], fit.target[fit.train_tokens])
    predicted = E[fit.test_tokens][:, keep] @ A_k + B_k
    return r2_score(fit.target[fit.test_tokens], predicted)


@dataclass
class LassoPoint:
    """One point of a Lasso path: penalty, number of non-zero dimensions, held-out R²."""

    penalty: float
    n_nonzero: int
    r2: float


def lasso_path_r2(fit: EncodingFit, E, fractions) -> list[LassoPoint]:
    """Lasso fits of ``-log alpha`` on ``E`` (same token split as ``fit``), strongest penalty first.

    Args:
        fractions: penalties as fractions of the smallest penalty that zeroes every coefficient
            (``max |X^T y| / n`` on centred training data), so the grid does not depend on the scale of ``E``.
    """

    E = np.asarray(E, dtype=np.float64)
    fractions = np.sort(np.asarray(fractions, dtype=np.float64))[::-1]
    if fractions.size == 0 or np.any(fractions <= 0) or np.any(fractions > 1):
        raise ValueError(f"fractions={fractions.tolist()} must be non-empty and each in (0, 1]")
    X_train, y_train = E[fit.train_tokens], fit.target[fit.train_tokens]
    x_mean, y_mean = X_train.mean(axis=0), y_train.mean()
    X_centred, y_centred = X_train - x_mean, y_train - y_mean
    penalty_max = np.max(np.abs(X_centred.T @ y_centred)) / len(y_centred)
    used, coefs, _ = lasso_path(X_centred, y_centred, alphas=fractions * penalty_max, max_iter=5000)
    points = []
    for j, penalty in enumerate(used):
        coef = coefs[:, j]
        predicted = (E[fit.test_tokens] - x_mean) @ coef + y_mean
        r2 = r2_score(fit.target[fit.test_tokens], predicted)
        points.append(LassoPoint(float(penalty), int(np.count_nonzero(coef)), r2))
    return points


def sparsity_table(fit: EncodingFit, E, ks) -> "pd.DataFrame":
    """Sparsity of the fit at each k of ``ks``: columns ``k``, ``share of |A| mass`` (:func:`top_k_mass`) and
    ``held-out R² (OLS on top-k)`` (:func:`subset_r2`)."""

    table = pd.DataFrame({"k": list(ks)})
    table["share of |A| mass"] = [top_k_mass(fit.A, k) for k in table.k]
    table["held-out R² (OLS on top-k)"] = [subset_r2(fit, E, k) for k in table.k]
    return table


def lasso_table(fit: EncodingFit, E, fractions) -> "pd.DataFrame":
    """:func:`lasso_path_r2` as a table: columns ``penalty``, ``n_nonzero``, ``r2``, strongest penalty first."""

    return pd.DataFrame([vars(point) for point in lasso_path_r2(fit, E, fractions)])


def lasso_dims_needed(lasso: "pd.DataFrame", target: float) -> tuple[int | None, int]:
    """The fewest non-zero dimensions of a Lasso path (:func:`lasso_table`) whose R² reaches ``target`` (None when
    no point does), and the dimensions of the largest sparser point that falls short (0 when there is none: the
    grid's resolution below the answer)."""
    reaching = lasso[lasso.r2 >= target].sort_values("n_nonzero").head(1)
    dims = int(reaching.n_nonzero.iloc[0]) if len(reaching) else None
    below = lasso[(lasso.r2 < target) & (lasso.n_nonzero < (dims or np.inf))]
    return dims, int(below.n_nonzero.max()) if len(below) else 0


def top_share_r2(fit: EncodingFit, E: np.ndarray, share: float) -> float:
    """Share of the held-out R² kept by an OLS refit on the ``ceil(share * d)`` dimensions of largest ``|A|``."""
    share = check_float("share", share, low=0.0, high=1.0, low_inclusive=False)
    k = max(1, int(np.ceil(share * E.shape[1])))
    return subset_r2(fit, E, k) / fit.r2


def lasso_crossing(k: np.ndarray, r2: np.ndarray, target: float) -> float:
    """Where a curve of R² against dimensions ``k`` (increasing) first reaches ``target``, interpolated linearly in
    log k between the grid points around the crossing (NaN when it never does)."""
    k, r2 = np.asarray(k, dtype=np.float64), np.asarray(r2, dtype=np.float64)
    check_float("target", target)
    reached = np.flatnonzero(r2 >= target)
    if reached.size == 0:
        return math.nan
    j = int(reached[0])
    if j == 0:
        return float(k[0])
    t = (target - r2[j - 1]) / (r2[j] - r2[j - 1])
    return float(np.exp(np.log(k[j - 1]) + t * (np.log(k[j]) - np.log(k[j - 1]))))
