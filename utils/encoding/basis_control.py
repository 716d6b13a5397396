"""Chapter 1's basis control: is the encoding's sparsity a property of the model's basis?

Logits are unchanged by a rotation ``Q`` of the embedding space, so a claim about coordinates is about the model only
if its basis is privileged: :func:`basis_sparsity` refits the encoding in other bases (from one Gram matrix, rotated),
:func:`basis_control` does so in the model's basis, the principal directions of E and random orthogonal bases, and
:func:`basis_checks` compares the model's basis with the random ones over resampled texts and bases, by chapter 3's
rule (its verdict words: :func:`utils.pruning.basis_control.basis_verdict`). All from ``E`` (V, d) and the fit's
``log alpha`` (V,) (and its resamples over texts); no model pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg
from sklearn.metrics import r2_score

from ..basis import principal_basis, random_orthogonal
from ..compute import single_threaded_blas
from ..uncertainty import Check, percentile_interval, resample_counts
from ..validation import check_int
from .fit import dimensions_by_weight, split_tokens


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


class BasisShares:
    """The encoding's sparsity at ``k`` dimensions in several bases, for many ``log alpha`` (a bootstrap over texts).

    ``E`` (V, d) and the token split are fixed, so each basis's Gram matrix is factored once; one ``log alpha`` then
    costs a (d,) right-hand side, one triangular solve per basis and a (k, k) refit: :meth:`shares` equals
    :func:`basis_sparsity`'s ``abs_share`` and ``kept_share`` at ``k`` (tested).
    """

    def __init__(self, E, bases: dict, k: int, *, test_fraction: float = 0.2, seed: int = 0) -> None:
        E = np.asarray(E, dtype=np.float64)
        V, d = E.shape
        self.k = check_int("k", k, minimum=1, maximum=d)
        self.train, test = split_tokens(V, test_fraction, seed)
        self.mean_x = E[self.train].mean(axis=0)
        self.centred = E[self.train] - self.mean_x  # (n_train, d)
        self.test_rows, self.test = E[test], test
        gram = self.centred.T @ self.centred
        self.names = list(bases)
        self.bases = [np.asarray(bases[name], dtype=np.float64) for name in self.names]
        self.grams = [Q.T @ gram @ Q for Q in self.bases]
        self.factors = [linalg.cho_factor(g) for g in self.grams]

    def shares(self, log_alpha) -> np.ndarray:
        """(n_bases, 2) ``abs_share`` and ``kept_share`` at k in each basis, for one ``log alpha`` (V,)."""
        y = -np.asarray(log_alpha, dtype=np.float64)
        mean_y = float(y[self.train].mean())
        rhs = self.centred.T @ (y[self.train] - mean_y)  # (d,)
        target = y[self.test]
        fit = _Fit(self.grams[0], rhs, self.mean_x, mean_y, self.test_rows, target)
        out = np.empty((len(self.bases), 2))
        r2_full = None
        for i, (Q, gram, factor) in enumerate(zip(self.bases, self.grams, self.factors)):
            rhs_q = Q.T @ rhs
            A = linalg.cho_solve(factor, rhs_q)
            if r2_full is None:  # the full fit's R² is the same in every basis
                r2_full = r2_score(target, self.test_rows @ (Q @ A) + mean_y - self.mean_x @ (Q @ A))
            magnitude = np.sort(np.abs(A))[::-1]
            keep = dimensions_by_weight(A)[: self.k]
            out[i] = magnitude[: self.k].sum() / magnitude.sum(), _subset_r2(fit, Q, gram, rhs_q, keep) / r2_full
        return out


def basis_checks(E, log_alpha, samples, k: int, *, n_random: int, margin: float = 0.0, test_fraction: float = 0.2,
                 seed: int = 0, boot_seed: int = 0, n_documents: int | None = None) -> list[Check]:
    """Is the model's basis privileged for the encoding's sparsity? Chapter 3's rule
    (:func:`utils.pruning.basis_control.basis_checks`): the model's basis minus the mean of ``n_random`` random
    orthogonal bases (basis i seeded ``seed + i``), one check per measure (share of ``sum |A|`` and share of the
    R² kept by the top ``k`` dimensions), each above ``margin``, with an interval that resamples both the texts
    (``samples``: an iterable of (b, V) blocks of resampled ``log alpha``, e.g.
    :func:`utils.uncertainty.resampled_log_alphas`) and the random bases (with replacement, ``boot_seed + 1``).

        n_documents: how many documents ``samples`` resampled (widens the interval for few of them:
            :func:`utils.uncertainty.few_groups_factor`); None for no widening.

    Returns:
        [share of |A| check, share of R² check]; :func:`utils.pruning.basis_control.basis_verdict` words them.
    """
    n_random = check_int("n_random", n_random, minimum=2)
    d = np.shape(E)[1]
    bases = {"model": np.eye(d), **{f"random {i}": random_orthogonal(d, seed + i) for i in range(n_random)}}
    meter = BasisShares(E, bases, k, test_fraction=test_fraction, seed=seed)

    def difference(shares: np.ndarray, weights: np.ndarray) -> np.ndarray:  # (2,) model minus weighted random
        return shares[0] - weights @ shares[1:]

    estimate = difference(meter.shares(log_alpha), np.full(n_random, 1.0 / n_random))
    per_text = np.array([meter.shares(row) for block in samples for row in block])  # (n_boot, 1 + R, 2)
    weights = resample_counts(n_random, len(per_text), boot_seed + 1) / n_random
    boot = np.array([difference(shares, w) for shares, w in zip(per_text, weights)])  # (n_boot, 2)
    names = (f"top {k} of {d} dimensions' share of sum |A|", f"share of the R² kept by the top {k} of {d} dimensions")
    return [Check(f"{name}: model basis minus the mean of {n_random} random orthogonal bases (interval over "
                  f"documents and random bases)", float(estimate[i]),
                  percentile_interval(boot[:, i], estimate=float(estimate[i]), n_groups=n_documents), margin, "above")
            for i, name in enumerate(names)]


def basis_sentence(checks: list[Check], verdict: str, model: dict[str, float], random: pd.DataFrame,
                   principal: dict[str, float], k: int) -> str:
    """The basis control in words: the verdict (from ``checks``, :func:`basis_checks`), the model's numbers, the
    random bases' mean and range, each difference with its interval, the principal basis's numbers (all at k)."""

    def spread(column: str) -> str:
        values = random[column]
        return f"{values.mean():.1%} (range {values.min():.1%} to {values.max():.1%})"

    share, kept = checks
    return (f"The model's basis is {verdict} for the encoding's sparsity: its top {k} dimensions hold "
            f"{model['abs_share']:.1%} of |A| and keep {model['kept_share']:.1%} of the R², against "
            f"{spread('abs_share')} and {spread('kept_share')} in {len(random)} random orthogonal bases "
            f"(differences {share.value:+.1%}, 95% interval {share.interval.text('+.1%')}, and {kept.value:+.1%}, "
            f"{kept.interval.text('+.1%')}, over {share.interval.n_boot} resamples of documents and random bases, "
            f"against {share.threshold:+.1%}), and {principal['abs_share']:.1%} and {principal['kept_share']:.1%} "
            f"in the principal directions of E.")


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
