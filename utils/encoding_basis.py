"""Chapter 1's basis control: is the encoding's sparsity a property of the model's basis?

Logits are unchanged by a rotation ``Q`` of the embedding space, so a claim about coordinates is about the model only
if its basis is privileged: :func:`basis_sparsity` refits the encoding in other bases (from one Gram matrix, rotated),
:func:`basis_control` does so in the model's basis, the principal directions of E and random orthogonal bases, and
:func:`basis_verdict` compares. All from ``E`` (V, d) and the fit's ``log alpha`` (V,); no model pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg
from sklearn.metrics import r2_score

from .basis import principal_basis, random_orthogonal
from .compute import single_threaded_blas
from .encoding import dimensions_by_weight, split_tokens
from .validation import check_int


@dataclass
class _Fit:
    gram: np.ndarray  # (d, d) centred Gram matrix of the training rows
    rhs: np.ndarray  # (d,) centred X^T y
    mean_x: np.ndarray  # (d,)
    mean_y: float
    test_rows: np.ndarray  # (n_test, d)
    test_target: np.ndarray  # (n_test,)


def basis_sparsity(E, log_alpha, bases: dict, ks, *, test_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """The encoding's sparsity measured in other bases of the embedding space.

    In a basis Q (d, d, orthogonal) the inputs are ``E Q``; the fit's Gram matrix is ``Q^T G Q`` and its right-hand
    side ``Q^T X^T y``, so each basis costs O(d³), not a pass over E. The full fit's R² does not depend on the basis
    (OLS is equivariant), its sparsity does.

    Args:
        E: (V, d) output embedding; log_alpha: (V,) the fit's ``log alpha``.
        bases: name -> (d, d) orthogonal matrix (columns: the new axes); the identity is the model's own basis.
        ks: numbers of dimensions kept.

    Returns:
        one row per basis and k: ``basis``, ``k``, ``abs_share`` (share of ``sum |A|`` in the k largest), ``r2_top_k``
        (held-out R² of an OLS refit on them), ``r2_full`` and ``kept_share`` (``r2_top_k / r2_full``).
    """
    E = np.asarray(E, dtype=np.float64)
    V, d = E.shape
    ks = [check_int("ks", k, minimum=1, maximum=d) for k in ks]
    train, test = split_tokens(V, test_fraction, seed)
    y = -np.asarray(log_alpha, dtype=np.float64)
    mean_x = E[train].mean(axis=0)
    centred = E[train] - mean_x
    fit = _Fit(centred.T @ centred, centred.T @ (y[train] - y[train].mean()), mean_x, float(y[train].mean()),
               E[test], y[test])
    rows = []
    for name, basis in bases.items():
        Q = np.asarray(basis, dtype=np.float64)
        if Q.shape != (d, d) or not np.allclose(Q.T @ Q, np.eye(d), atol=1e-6):
            raise ValueError(f"bases[{name!r}] must be an orthogonal ({d}, {d}) matrix")
        gram, rhs = Q.T @ fit.gram @ Q, Q.T @ fit.rhs
        A = linalg.solve(gram, rhs, assume_a="pos")
        r2_full = _subset_r2(fit, Q, gram, rhs, np.arange(d))
        magnitude = np.sort(np.abs(A))[::-1]
        for k in ks:
            r2_k = _subset_r2(fit, Q, gram, rhs, dimensions_by_weight(A)[:k])
            rows.append({"basis": name, "k": k, "abs_share": float(magnitude[:k].sum() / magnitude.sum()),
                         "r2_top_k": r2_k, "r2_full": r2_full, "kept_share": r2_k / r2_full})
    return pd.DataFrame(rows)


@single_threaded_blas
def _subset_r2(fit: _Fit, Q: np.ndarray, gram: np.ndarray, rhs: np.ndarray, keep: np.ndarray) -> float:
    coefficients = linalg.solve(gram[np.ix_(keep, keep)], rhs[keep], assume_a="pos")
    direction = Q[:, keep] @ coefficients  # (d,) the refit's direction in the model's coordinates
    predicted = fit.test_rows @ direction + fit.mean_y - fit.mean_x @ direction
    return r2_score(fit.test_target, predicted)


PRIVILEGED, NOT_PRIVILEGED, MIXED = "privileged", "not privileged", "mixed"


def basis_verdict(model: dict[str, float], random: pd.DataFrame, columns=("abs_share", "kept_share")) -> str:
    """Is the model's basis privileged for the encoding's sparsity?

    Args:
        model: the model basis's value of each column (at one k).
        random: the random bases' rows (same k).

    Returns:
        "privileged" when the model's basis is sparser than every random basis on every column, "not privileged"
        when it is not above every random basis on any column, "mixed" otherwise.
    """
    if len(random) < 2:
        raise ValueError(f"random must hold at least 2 random bases; got {len(random)}")
    above = [model[column] > random[column].max() for column in columns]
    return PRIVILEGED if all(above) else NOT_PRIVILEGED if not any(above) else MIXED


def basis_sentence(model: dict[str, float], random: pd.DataFrame, principal: dict[str, float], k: int) -> str:
    """The basis control in words: verdict, the model's numbers, the random bases' mean and range, the principal
    basis's numbers (all at k dimensions)."""
    verdict = basis_verdict(model, random)

    def spread(column: str) -> str:
        values = random[column]
        return f"{values.mean():.1%} (range {values.min():.1%} to {values.max():.1%})"

    return (f"The model's basis is {verdict} for the encoding's sparsity: its top {k} dimensions hold "
            f"{model['abs_share']:.1%} of |A| and keep {model['kept_share']:.1%} of the R², against "
            f"{spread('abs_share')} and {spread('kept_share')} in {len(random)} random orthogonal bases, and "
            f"{principal['abs_share']:.1%} and {principal['kept_share']:.1%} in the principal directions of E.")


def basis_control(E, log_alpha, ks, *, n_random: int, test_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """:func:`basis_sparsity` in the model's basis, the principal directions of E and ``n_random`` random orthogonal
    bases (basis i seeded ``seed + i``), with a ``kind`` column: model, principal or random."""
    d = np.shape(E)[1]
    bases = {"model": np.eye(d), "principal": principal_basis(E),
             **{f"random {i}": random_orthogonal(d, seed + i) for i in range(n_random)}}
    table = basis_sparsity(E, log_alpha, bases, ks, test_fraction=test_fraction, seed=seed)
    table["kind"] = table.basis.str.split().str[0]
    return table


def basis_rows_at(table: pd.DataFrame, k: int) -> tuple[dict, dict, pd.DataFrame]:
    """The model's row, the principal basis's row (dicts) and the random bases' rows of :func:`basis_control`'s
    table at ``k`` dimensions."""
    at = table[table.k == k]
    if at.empty:
        raise ValueError(f"k={k} is not among the table's k: {sorted(set(table.k))}")
    model, principal = (at[at.kind == kind].iloc[0].to_dict() for kind in ("model", "principal"))
    return model, principal, at[at.kind == "random"]
