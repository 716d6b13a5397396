"""The log-linear encoding ``-log alpha_w ≈ A · E_w + B`` (Cho et al.): fit, held-out accuracy, sparsity.

A fit is a regression over the V rows of the output embedding: inputs ``E`` (V, d), targets ``-log alpha`` (V,).
Tokens are split at random into train and held-out sets; every accuracy figure is measured on held-out tokens.
R² is ``sklearn.metrics.r2_score`` (``1 - SSE / SST``), re-exported here as ``utils.encoding.r2_score``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import linalg, stats
from sklearn.linear_model import lasso_path
from sklearn.metrics import r2_score

from .activations import mean_softmax, position_entropy
from .compute import single_threaded_blas
from .uncertainty import Check, n_resampled, percentile_interval, resampled_log_alphas
from .validation import check_float, check_int, check_positive_int


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


def top_k_mass(A: np.ndarray, k: int) -> float:
    """Share of ``sum |A_i|`` carried by the ``k`` largest ``|A_i|``."""
    k = check_int("k", k, minimum=1, maximum=len(A))
    magnitude = np.sort(np.abs(A))[::-1]
    return float(magnitude[:k].sum() / magnitude.sum())


def dimensions_by_weight(A: np.ndarray) -> np.ndarray:
    """Dimension indices sorted by decreasing ``|A_i|``."""
    return np.argsort(-np.abs(A), kind="stable")


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


def worst_tokens(fit: EncodingFit, n: int) -> np.ndarray:
    """The ``n`` held-out token ids with the largest ``|residual|``, worst first."""
    n = check_positive_int("n", n)
    return fit.test_tokens[np.argsort(-np.abs(fit.residual[fit.test_tokens]))[:n]]


def fit_pass(activations, *, test_fraction: float = 0.2, seed: int = 0) -> EncodingFit:
    """:func:`fit_encoding` of a pass (:class:`utils.activations.Activations`): its head's E and its alpha."""
    return fit_encoding(activations.head.E.numpy().astype(np.float64), activations.alpha.numpy(),
                        test_fraction=test_fraction, seed=seed)


def second_model_status(second_model: str | None, model: str, installed: bool) -> str:
    """Whether the optional second model is compared, in words: not asked for (None or the main model itself),
    computed (``installed``), or not installed."""
    if not second_model or second_model == model:
        return "not computed: no second model was asked for"
    if installed:
        return f"computed for {second_model}"
    return f"not computed: {second_model!r} is not installed here (optional; see the rerunning page)"


def token_counts(token_ids, V: int) -> np.ndarray:
    """How often each token id occurs in ``token_ids`` (any shape): (V,) int64 (0: never seen)."""
    flat = np.asarray(token_ids).reshape(-1)
    if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= V):
        raise ValueError(f"token ids must lie in [0, {V}); got ids from {int(flat.min())} to {int(flat.max())}")
    return np.bincount(flat, minlength=V).astype(np.int64)


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


def top_share_r2(fit: EncodingFit, E: np.ndarray, share: float) -> float:
    """Share of the held-out R² kept by an OLS refit on the ``ceil(share * d)`` dimensions of largest ``|A|``."""
    share = check_float("share", share, low=0.0, high=1.0, low_inclusive=False)
    k = max(1, int(np.ceil(share * E.shape[1])))
    return subset_r2(fit, E, k) / fit.r2


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
