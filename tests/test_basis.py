"""Bases of the embedding space: orthogonal, seeded, logit-preserving, and principal directions recovered."""
from __future__ import annotations

import numpy as np
import pytest

from utils.basis import in_basis, principal_basis, random_orthogonal


def test_random_orthogonal_is_orthogonal_seeded_and_varied():
    q = random_orthogonal(16, seed=3)
    np.testing.assert_allclose(q.T @ q, np.eye(16), atol=1e-12)
    np.testing.assert_array_equal(q, random_orthogonal(16, seed=3))
    assert not np.allclose(q, random_orthogonal(16, seed=4))
    # Haar: the mean of a fixed entry over many draws is near zero (QR without the sign fix biases the diagonal).
    diagonal = np.mean([random_orthogonal(4, seed=s)[0, 0] for s in range(400)])
    assert abs(diagonal) < 0.1


def test_logits_do_not_change_under_a_change_of_basis():
    rng = np.random.default_rng(0)
    E, h = rng.standard_normal((50, 8)), rng.standard_normal((5, 8))
    q = random_orthogonal(8, seed=1)
    np.testing.assert_allclose(in_basis(h, q) @ in_basis(E, q).T, h @ E.T, atol=1e-10)


def test_principal_basis_recovers_a_planted_direction():
    rng = np.random.default_rng(0)
    direction = np.zeros(6)
    direction[2] = 1.0
    rotation = random_orthogonal(6, seed=5)
    planted = rotation @ direction
    E = 10.0 * rng.standard_normal((2000, 1)) * planted + 0.1 * rng.standard_normal((2000, 6)) + 7.0
    basis = principal_basis(E)
    assert abs(basis[:, 0] @ planted) > 0.999
    np.testing.assert_allclose(basis.T @ basis, np.eye(6), atol=1e-10)
    # Without centring the common offset (7 in every coordinate) dominates instead.
    assert abs(principal_basis(E, centre=False)[:, 0] @ planted) < 0.9


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="d=0"):
        random_orthogonal(0, seed=0)
    with pytest.raises(TypeError, match="seed"):
        random_orthogonal(3, seed=0.5)
    with pytest.raises(ValueError, match="shape"):
        principal_basis(np.ones((2, 5)))


def test_principal_basis_equals_the_right_singular_vectors():
    rng = np.random.default_rng(1)
    E = rng.standard_normal((300, 7)) * np.arange(1, 8)
    _, _, vt = np.linalg.svd(E - E.mean(axis=0), full_matrices=False)
    basis = principal_basis(E)
    np.testing.assert_allclose(np.abs(np.sum(basis * vt.T, axis=0)), np.ones(7), atol=1e-9)  # same up to sign
