"""Bases of the embedding space, for the basis control of chapters 1 and 3.

Logits do not change under an orthogonal change of basis ``Q`` (d, d) of the embedding space: ``(h Q)(E Q)^T =
h E^T``. A claim about *coordinates* of the output embedding (the encoding's sparsity, deleting dimensions) is only
a claim about the model if its coordinates are privileged, so the chapters compare the model's basis against random
orthogonal bases and against the principal directions of ``E``. A basis is a (d, d) matrix whose columns are the new
coordinate axes: the coordinates of a row ``x`` (d,) in it are ``x @ Q``.
"""
from __future__ import annotations

import numpy as np

from .validation import check_int, check_positive_int


def random_orthogonal(d: int, seed: int) -> np.ndarray:
    """A random orthogonal (d, d) float64 matrix, uniform (Haar) over the orthogonal group, seeded.

    QR of a Gaussian matrix with the signs of R's diagonal moved into Q (without that step the result is not uniform).
    """
    check_positive_int("d", d)
    check_int("seed", seed)
    gaussian = np.random.default_rng(seed).standard_normal((d, d))
    q, r = np.linalg.qr(gaussian)
    return q * np.sign(np.diag(r))


def principal_basis(E, *, centre: bool = True) -> np.ndarray:
    """The principal directions of the embedding rows, as a (d, d) float64 orthogonal matrix.

    Args:
        E: (V, d) output embedding.
        centre: subtract the mean row first (the softmax ignores a shift common to every logit, and the mean row of
            E adds ``h · mean`` to every logit), so the directions are those of the rows' spread.
    Returns:
        (d, d) matrix whose columns are the right singular vectors of (centred) ``E``, by decreasing singular value.
    """
    E = np.asarray(E, dtype=np.float64)
    if E.ndim != 2 or E.shape[0] < E.shape[1]:
        raise ValueError(f"E must be (V, d) with V >= d; got shape {E.shape}")
    rows = E - E.mean(axis=0) if centre else E
    # the eigenvectors of the (d, d) Gram matrix are the right singular vectors of the rows: one matmul and a small
    # eigendecomposition instead of an SVD of the (V, d) rows
    eigenvalues, eigenvectors = np.linalg.eigh(rows.T @ rows)
    return eigenvectors[:, np.argsort(eigenvalues)[::-1]]


def in_basis(rows, basis: np.ndarray) -> np.ndarray:
    """Coordinates of ``rows`` (n, d) in ``basis`` (d, d): ``rows @ basis`` (n, d), float64."""
    rows = np.asarray(rows, dtype=np.float64)
    basis = np.asarray(basis, dtype=np.float64)
    if rows.ndim != 2 or basis.shape != (rows.shape[1], rows.shape[1]):
        raise ValueError(f"rows must be (n, d) and basis (d, d); got {rows.shape} and {basis.shape}")
    return rows @ basis
