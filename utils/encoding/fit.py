"""The log-linear encoding ``-log alpha_w ≈ A · E_w + B`` (Cho et al.): the fit core every chapter shares.

A fit is a regression over the V rows of the output embedding: inputs ``E`` (V, d), targets ``-log alpha`` (V,).
Tokens are split at random into train and held-out sets; every accuracy figure is measured on held-out tokens.
R² is ``sklearn.metrics.r2_score`` (``1 - SSE / SST``), re-exported here as ``utils.encoding.fit.r2_score``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, stats
from sklearn.metrics import r2_score

from ..compute import single_threaded_blas
from ..validation import check_float


@dataclass
class EncodingFit:
    """An ordinary-least-squares fit of ``-log alpha`` on the output embedding.

    Attributes:
        A: (d,) float64 coefficients, the paper's ``A_D``.
        B: intercept, the paper's ``B_D``.
        train_tokens, test_tokens: token ids used to fit and to evaluate.
        predicted: (V,) predicted ``-log alpha`` for every token, ``E @ A + B``.
        target: (V,) actual ``-log alpha``.
        r2, pearson, spearman: accuracy on the held-out tokens.
    """

    A: np.ndarray
    B: float
    train_tokens: np.ndarray
    test_tokens: np.ndarray
    predicted: np.ndarray
    target: np.ndarray
    r2: float
    pearson: float
    spearman: float

    @property
    def residual(self) -> np.ndarray:
        """(V,) predicted minus actual ``-log alpha`` (positive: the encoding predicts the token too rare)."""
        return self.predicted - self.target


def _as_embedding(E) -> np.ndarray:
    E = np.asarray(E, dtype=np.float64)
    if E.ndim != 2:
        raise ValueError(f"E must be 2-d (V, d); got shape {E.shape}")
    if not np.all(np.isfinite(E)):
        raise ValueError("E holds non-finite values")
    return E


def _as_alpha(alpha, V: int) -> np.ndarray:
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.shape != (V,):
        raise ValueError(f"alpha must have shape ({V},) to match E; got {alpha.shape}")
    if not np.all((alpha > 0) & np.isfinite(alpha)):
        raise ValueError("alpha must be positive and finite for every token (take it from a softmax)")
    return alpha


def _as_inputs(E, alpha) -> tuple[np.ndarray, np.ndarray]:
    E = _as_embedding(E)
    return E, _as_alpha(alpha, E.shape[0])


def split_tokens(V: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random split of token ids 0..V-1 into (train, test), sorted, reproducible from ``seed``."""
    check_float("test_fraction", test_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    order = np.random.default_rng(seed).permutation(V)
    n_test = max(1, int(round(V * test_fraction)))
    if n_test >= V:
        raise ValueError(f"test_fraction={test_fraction} leaves no training tokens out of V={V}")
    return np.sort(order[n_test:]), np.sort(order[:n_test])


class LeastSquares:
    """Least squares with an intercept for one design ``X`` (n, d), factored once, then solved for many targets.

    The one least-squares path of the project. It solves the centred normal equations, a (d, d) system, which is many
    times faster than an SVD of ``X`` when n >> d (the encoding fits have n = V tokens, d = hidden size). The Gram
    matrix is Cholesky-factored; if ``X`` is rank-deficient (or nearly, condition number of the Gram matrix above
    ~1e12), the minimum-norm solution is taken through the pseudo-inverse instead, as ``np.linalg.lstsq`` would.
    """

    def __init__(self, X) -> None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError(f"X must be 2-d (n, d) with n >= 2; got shape {X.shape}")
        self.mean_x = X.mean(axis=0)
        self._X = X  # (n, d); X.T @ (y - mean y) equals the centred product, so no centred copy is kept
        centred = X - self.mean_x
        gram = centred.T @ centred  # (d, d)
        del centred
        self._factor = None
        try:
            factor = linalg.cho_factor(gram, lower=True)
            pivots = np.abs(np.diag(factor[0]))
            if pivots.min() >= 1e-6 * pivots.max():
                self._factor = factor
        except linalg.LinAlgError:
            pass
        self.full_rank = self._factor is not None
        self._pseudo_inverse = None if self.full_rank else np.linalg.pinv(gram, hermitian=True)

    @single_threaded_blas
    def solve(self, y) -> tuple[np.ndarray, float]:
        """Coefficients (d,) and intercept minimising ``|X @ coefficients + intercept - y|²`` for y (n,)."""
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (self._X.shape[0],):
            raise ValueError(f"y must have shape ({self._X.shape[0]},) to match X; got {y.shape}")
        rhs = self._X.T @ (y - y.mean())
        if self.full_rank:
            coefficients = linalg.cho_solve(self._factor, rhs)
        else:
            coefficients = self._pseudo_inverse @ rhs
        return coefficients, float(y.mean() - self.mean_x @ coefficients)


def ols(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least squares with an intercept: X (n, d), y (n,) -> (coefficients (d,), intercept); see
    :class:`LeastSquares`."""
    return LeastSquares(X).solve(y)


class EncodingRefitter:
    """The encoding fit for one ``E`` (V, d) and token split, factored once: ``fit(alpha)`` for as many alphas as
    needed (groups of positions, corpora, few-shot samples), each one (d,)-sized solve.

    ``EncodingRefitter(E, test_fraction=f, seed=s).fit(alpha)`` is exactly ``fit_encoding(E, alpha,
    test_fraction=f, seed=s)``.
    """

    def __init__(self, E, *, test_fraction: float = 0.2, seed: int = 0) -> None:
        self.E = _as_embedding(E)
        self.train_tokens, self.test_tokens = split_tokens(self.E.shape[0], test_fraction, seed)
        self._solver = LeastSquares(self.E[self.train_tokens])

    def coefficients(self, alpha) -> tuple[np.ndarray, float]:
        """``(A, B)`` of :meth:`fit`, without the predictions and scores (for bootstraps that need only A)."""
        alpha = _as_alpha(alpha, self.E.shape[0])
        return self._solver.solve(-np.log(alpha)[self.train_tokens])

    def fit(self, alpha) -> EncodingFit:
        """OLS of ``-log alpha`` (alpha (V,), positive) on the training tokens, scored on the held-out tokens."""
        alpha = _as_alpha(alpha, self.E.shape[0])
        target = -np.log(alpha)
        A, B = self._solver.solve(target[self.train_tokens])
        predicted = self.E @ A + B
        test = self.test_tokens
        return EncodingFit(
            A=A,
            B=B,
            train_tokens=self.train_tokens,
            test_tokens=test,
            predicted=predicted,
            target=target,
            r2=r2_score(target[test], predicted[test]),
            pearson=float(stats.pearsonr(target[test], predicted[test])[0]),
            spearman=float(stats.spearmanr(target[test], predicted[test])[0]),
        )


def fit_encoding(E, alpha, *, test_fraction: float = 0.2, seed: int = 0) -> EncodingFit:
    """Fit ``-log alpha = E @ A + B`` by OLS on a random ``1 - test_fraction`` of tokens; score on the rest.

    Args:
        E: (V, d) output embedding.
        alpha: (V,) averaged output probabilities (positive).
    """
    return EncodingRefitter(E, test_fraction=test_fraction, seed=seed).fit(alpha)


def score_encoding(fit: EncodingFit, E, alpha, tokens: np.ndarray | None = None) -> dict[str, float]:
    """How well an existing fit predicts another ``-log alpha`` (e.g. of another corpus), over ``tokens``."""
    E, alpha = _as_inputs(E, alpha)
    tokens = fit.test_tokens if tokens is None else tokens
    target = -np.log(alpha[tokens])
    predicted = E[tokens] @ fit.A + fit.B
    return {
        "r2": r2_score(target, predicted),
        "pearson": float(stats.pearsonr(target, predicted)[0]),
        "spearman": float(stats.spearmanr(target, predicted)[0]),
    }


def dimensions_by_weight(A: np.ndarray) -> np.ndarray:
    """Dimension indices sorted by decreasing ``|A_i|``."""
    return np.argsort(-np.abs(A), kind="stable")


def fit_pass(activations, *, test_fraction: float = 0.2, seed: int = 0) -> EncodingFit:
    """:func:`fit_encoding` of a pass (:class:`utils.activations.Activations`): its head's E and its alpha."""
    return fit_encoding(activations.head.E.numpy().astype(np.float64), activations.alpha.numpy(),
                        test_fraction=test_fraction, seed=seed)


def token_counts(token_ids, V: int) -> np.ndarray:
    """How often each token id occurs in ``token_ids`` (any shape): (V,) int64 (0: never seen)."""
    flat = np.asarray(token_ids).reshape(-1)
    if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= V):
        raise ValueError(f"token ids must lie in [0, {V}); got ids from {int(flat.min())} to {int(flat.max())}")
    return np.bincount(flat, minlength=V).astype(np.int64)


class SubsetRefitter:
    """OLS refits of ``-log alpha`` on any subset of E's dimensions, for one token split, from one Gram matrix.

    The centred Gram matrix of the training rows (d, d) is factored once and the held-out rows are kept; a refit on
    dimensions ``keep`` solves the (k, k) system ``G[keep, keep] a = (X_c^T y_c)[keep]``. Many targets are refitted
    at once (one matrix product for their right-hand sides), so a bootstrap costs a few small solves per sample.
    """

    def __init__(self, E, *, test_fraction: float = 0.2, seed: int = 0) -> None:
        E = _as_embedding(E)
        self.V = E.shape[0]
        self.train_tokens, self.test_tokens = split_tokens(self.V, test_fraction, seed)
        train = E[self.train_tokens]
        self.mean_x = train.mean(axis=0)
        self._train = train
        self._gram = (train - self.mean_x).T @ (train - self.mean_x)  # (d, d)
        self._factor = linalg.cho_factor(self._gram, lower=True)
        self._test = E[self.test_tokens]

    @single_threaded_blas
    def r2(self, log_alpha: np.ndarray, top_k: int | None = None) -> np.ndarray:
        """Held-out R² of fits of ``-log alpha``: log_alpha (n, V) -> (n,) R² with every dimension, or with
        ``top_k`` given, (n, 2): R² on all dimensions and R² of a refit on the ``top_k`` dimensions of each
        fit's own largest ``|A|``."""
        log_alpha = np.atleast_2d(np.asarray(log_alpha, dtype=np.float64))
        if log_alpha.shape[1] != self.V or not np.all(np.isfinite(log_alpha)):
            raise ValueError(f"log_alpha must be finite with {self.V} columns; got shape {log_alpha.shape}")
        y = -log_alpha[:, self.train_tokens]  # (n, n_train)
        y_mean = y.mean(axis=1)
        rhs = (y - y_mean[:, None]) @ self._train  # (n, d)
        target = -log_alpha[:, self.test_tokens]  # (n, n_test)
        out = np.empty((len(y), 1 if top_k is None else 2))
        for i in range(len(y)):
            A = linalg.cho_solve(self._factor, rhs[i])
            out[i, 0] = r2_score(target[i], self._test @ A + y_mean[i] - self.mean_x @ A)
            if top_k is not None:
                keep = dimensions_by_weight(A)[:top_k]
                A_k = linalg.solve(self._gram[np.ix_(keep, keep)], rhs[i, keep], assume_a="pos")
                out[i, 1] = r2_score(target[i], self._test[:, keep] @ A_k + y_mean[i] - self.mean_x[keep] @ A_k)
        return out[:, 0] if top_k is None else out
