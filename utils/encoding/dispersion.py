"""What makes the log-linear encoding accurate (chapter 1): the dispersion of the averaged positions.

``log alpha_w = log mean_n exp(log p_n(w))``. Its cumulant expansion is
``mean_n log p_n(w) + ½ var_n log p_n(w) + ...``: the first term is exactly linear in ``E_w``
(``h̄ · E_w - mean_n L_n``, ``L_n`` the log normaliser of position n), so how far ``-log alpha`` is from linear
in ``E_w`` is set by how much the averaged positions differ from one another. :class:`DispersionMeter` measures
candidate statistics of a group of positions; :func:`rank_statistics` says which one orders the fits' R² best.
All from cached hidden states (no model pass).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..head import OutputHead, iter_logits
from ..uncertainty import Check, Interval, combine, percentile_interval
from ..validation import check_int, check_positive_int
from .fit import LeastSquares

STATISTICS = {
    "hidden_dispersion": "tr Cov(h) / |mean h|²",
    "logit_dispersion": "mean over tokens of var over positions of the logit (nats²)",
    "log_prob_dispersion": "mean over tokens of var over positions of log p_n(w) (nats²)",
    "curvature_share": "share of the variance of -log α in the non-linear part of ½ E_w·Cov(h)·E_w",
    "mean_entropy": "mean entropy of the predictions (nats; a correlate, not a dispersion)",
}
"""The statistics of a group of positions that :func:`rank_statistics` compares, with what each measures."""


DISPERSIONS = tuple(name for name in STATISTICS if name != "mean_entropy")


@dataclass
class GroupPass:
    """One head pass over a group of positions.

    Attributes:
        log_alpha: (V,) float64, log of the mean softmax over the group's positions.
        entropy: (n,) float64, entropy (nats) of each position's prediction.
        log_normaliser: (n,) float64, logsumexp of each position's logits.
        label_log_sums: (n_labels, V) float64, log of the summed softmax of the positions of each label
            (``-inf`` for a label with no position), or None when no labels were given.
    """

    log_alpha: np.ndarray
    entropy: np.ndarray
    log_normaliser: np.ndarray
    label_log_sums: np.ndarray | None = None


@torch.no_grad()
def group_pass(hidden: torch.Tensor, head: OutputHead, labels=None, n_labels: int = 0,
               chunk_size: int = 1024) -> GroupPass:
    """alpha, entropies and log normalisers of the positions ``hidden`` (n, d) in one pass, chunk by chunk.

    Args:
        labels: optional (n,) integer label of each position in ``[0, n_labels)``; the softmax is then also summed
            per label (for example the context length, to rebuild alpha of shorter windows).
    """
    n = hidden.shape[0]
    if n == 0:
        raise ValueError("hidden holds no positions")
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        n_labels = check_positive_int("n_labels", n_labels)
        if labels.shape != (n,) or int(labels.min()) < 0 or int(labels.max()) >= n_labels:
            raise ValueError(f"labels must be ({n},) integers in [0, {n_labels}); got shape {tuple(labels.shape)}")
    if labels is None:
        labels, n_labels = torch.zeros(n, dtype=torch.int64), 1
        keep_labels = False
    else:
        keep_labels = True
    # positions in label order, so that each chunk holds a few contiguous runs of one label each
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    label_sums = torch.full((n_labels, head.V), -math.inf, dtype=torch.float64)
    entropy = torch.empty(n, dtype=torch.float64)
    normaliser = torch.empty(n, dtype=torch.float64)
    for start, logits in iter_logits(hidden[order], head, chunk_size):
        stop = start + logits.shape[0]
        log_norm = torch.logsumexp(logits, dim=-1, keepdim=True)
        log_probs = logits - log_norm
        normaliser[order[start:stop]] = log_norm[:, 0].double()
        entropy[order[start:stop]] = -(log_probs.exp() * log_probs).sum(-1).double()
        values, counts = torch.unique_consecutive(sorted_labels[start:stop], return_counts=True)
        offset = 0
        for label, count in zip(values.tolist(), counts.tolist()):
            run = torch.logsumexp(log_probs[offset : offset + count], dim=0).double()
            label_sums[label] = torch.logaddexp(label_sums[label], run)
            offset += count
    log_alpha = torch.logsumexp(label_sums, dim=0) - math.log(n)
    return GroupPass(log_alpha.numpy(), entropy.numpy(), normaliser.numpy(),
                     label_sums.numpy() if keep_labels else None)


class DispersionMeter:
    """Dispersion statistics (:data:`STATISTICS`) of groups of positions, for one output embedding.

    ``E`` (V, d) enters through ``M = E^T E / V`` (d, d) and its mean row, so a statistic costs O(n d²) for n
    positions; the curvature share uses a seeded sample of ``n_tokens`` tokens.
    """

    def __init__(self, E, *, n_tokens: int = 4096, seed: int = 0) -> None:
        E = np.asarray(E, dtype=np.float64)
        if E.ndim != 2:
            raise ValueError(f"E must be 2-d (V, d); got shape {E.shape}")
        n_tokens = check_positive_int("n_tokens", n_tokens)
        self.V, self.d = E.shape
        self.second_moment = E.T @ E / self.V  # (d, d)
        self.mean_row = E.mean(axis=0)  # (d,)
        self.tokens = np.sort(np.random.default_rng(seed).permutation(self.V)[: min(n_tokens, self.V)])
        self._rows = E[self.tokens]  # (m, d)
        self._solver = LeastSquares(self._rows)

    def measure(self, hidden, log_normaliser, log_alpha, entropy=None) -> dict[str, float]:
        """The statistics of one group.

        Args:
            hidden: (n, d) hidden states of the group's positions (n >= 2).
            log_normaliser: (n,) logsumexp of their logits.
            log_alpha: (V,) log alpha of the group (the fit's target, for the curvature share).
            entropy: optional (n,) entropies; their mean is reported (NaN without).
        """
        h = torch.as_tensor(hidden).double().numpy()
        lse = np.asarray(log_normaliser, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] != self.d or h.shape[0] < 2 or lse.shape != (h.shape[0],):
            raise ValueError(f"hidden must be (n >= 2, {self.d}) and log_normaliser (n,); got {h.shape}, {lse.shape}")
        mean_h = h.mean(axis=0)
        centred = h - mean_h
        cov = centred.T @ centred / len(h)  # (d, d), Cov(h) over the group's positions
        cov_hl = centred.T @ (lse - lse.mean()) / len(h)  # (d,), Cov(h, L)
        logit_dispersion = float(np.sum(cov * self.second_moment))  # tr(Cov M) = mean_w E_w Cov E_w
        quadratic = 0.5 * np.sum((self._rows @ cov) * self._rows, axis=1)  # (m,) ½ E_w Cov E_w
        coefficients, intercept = self._solver.solve(quadratic)
        non_linear = quadratic - self._rows @ coefficients - intercept
        target = -np.asarray(log_alpha, dtype=np.float64)[self.tokens]
        return {
            "hidden_dispersion": float(np.trace(cov) / (mean_h @ mean_h)),
            "logit_dispersion": logit_dispersion,
            "log_prob_dispersion": logit_dispersion - 2.0 * float(self.mean_row @ cov_hl) + float(lse.var()),
            "curvature_share": float(non_linear.var() / target.var()),
            "mean_entropy": float(np.mean(entropy)) if entropy is not None else math.nan,
        }


def rank_statistics(table: pd.DataFrame, statistics=tuple(STATISTICS), target: str = "r2") -> pd.DataFrame:
    """Spearman rank correlation of ``target`` with each statistic, over all rows and within each grouping.

    Args:
        table: one row per group of positions, with a ``grouping`` column, ``target`` and the statistics.

    Returns:
        one row per statistic: ``statistic``, ``all groups`` (rank correlation over every row) and one column per
        grouping (NaN where the grouping has fewer than three rows); sorted by decreasing ``|all groups|``.
    """
    missing = [name for name in (*statistics, target, "grouping") if name not in table]
    if missing:
        raise ValueError(f"table lacks the columns {missing}; it has {list(table.columns)}")
    rows = []
    for name in statistics:
        row = {"statistic": name, "all groups": _spearman(table[name], table[target])}
        for grouping, part in table.groupby("grouping", sort=False):
            row[grouping] = _spearman(part[name], part[target]) if len(part) >= 3 else math.nan
        rows.append(row)
    ranks = pd.DataFrame(rows)
    order = np.argsort(-ranks["all groups"].abs().fillna(-1).to_numpy(), kind="stable")
    return ranks.iloc[order].reset_index(drop=True)


def _spearman(x, y) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return math.nan
    return float(stats.spearmanr(x[keep], y[keep])[0])


def best_dispersion(ranks: pd.DataFrame) -> str:
    """The dispersion statistic (not the entropy) whose rank correlation with R² over all groups is largest in size.

    Descriptive only: a statistic chosen on the groups it is then tested on would make the test optimistic, so the
    condition check uses :data:`DECLARED_STATISTIC`, fixed before any group is measured.
    """
    dispersions = ranks[ranks.statistic.isin(DISPERSIONS) & ranks["all groups"].notna()]
    if dispersions.empty:
        raise ValueError("no dispersion statistic has a rank correlation with R² (too few groups?)")
    return str(dispersions.iloc[int(np.argmax(dispersions["all groups"].abs().to_numpy()))].statistic)


DECLARED_STATISTIC = "log_prob_dispersion"
"""The statistic the condition check tests, fixed in advance: the second cumulant of the expansion of
``log alpha_w`` over positions (``½ var_n log p_n(w)``) is the first term that departs from linear in ``E_w``."""


POSITION_STATISTICS = ("hidden_dispersion", "logit_dispersion", "log_prob_dispersion", "mean_entropy")
"""The statistics measured from a group's positions alone (the curvature share also reads its alpha)."""


def drop_duplicate_groups(table: pd.DataFrame, columns=POSITION_STATISTICS) -> tuple[pd.DataFrame, list[str]]:
    """Rows whose statistics of the positions (``columns``) equal a later row's to 1e-9 are one set of positions
    counted twice (the window length equal to the pass's window measures the main pass's own probed positions,
    like the main corpus's row): keep the last of each.

    Returns:
        the table without the duplicates (index reset) and the dropped rows' ``"grouping group"`` labels.
    """
    values = table[list(columns)].to_numpy(np.float64)
    dropped = [i for i in range(len(table)) if any(
        np.allclose(values[i], values[j], rtol=1e-9, atol=1e-12, equal_nan=True) for j in range(i + 1, len(table)))]
    labels = [f"{table.grouping.iloc[i]} {table.group.iloc[i]}" for i in dropped]
    return table.drop(index=table.index[dropped]).reset_index(drop=True), labels


def partial_spearman(x, y, control=None) -> float:
    """Rank correlation of ``x`` and ``y`` (n,); with ``control`` (n,), the partial rank correlation: the Pearson
    correlation of the ranks of x and y after each is regressed on the rank of ``control``. NaN when undefined
    (fewer than 4 finite rows with a control, 3 without, or x or y constant)."""
    if control is None:
        return _spearman(x, y)
    x, y, z = (np.asarray(v, dtype=np.float64) for v in (x, y, control))
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    if keep.sum() < 4:
        return math.nan
    ranks = [stats.rankdata(v[keep]) for v in (x, y, z)]
    if min(np.ptp(r) for r in ranks[:2]) == 0:
        return math.nan
    # a constant control explains nothing: the partial correlation is then the plain rank correlation
    design = np.column_stack([np.ones(keep.sum()), ranks[2]]) if np.ptp(ranks[2]) > 0 else np.ones((keep.sum(), 1))
    rx, ry = (r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in ranks[:2])
    if np.std(rx) < 1e-12 or np.std(ry) < 1e-12:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass(frozen=True)
class RankBootstrap:
    """A rank correlation with its bootstrap interval, and how many bootstrap samples left it undefined.

    Attributes:
        value: the measured rank correlation.
        interval: percentile interval of the defined samples (:func:`utils.uncertainty.percentile_interval`,
            centred on ``value``), or None when fewer than two samples are defined.
        n_undefined: samples where the correlation is undefined (all ranks tied), left out of the interval.
        n_boot: samples drawn.
        over: what was resampled, in words (e.g. "groups of positions").
    """

    value: float
    interval: Interval | None
    n_undefined: int
    n_boot: int
    over: str

    def word(self, positive: str, negative: str, neither: str) -> str:
        """Three-valued: ``positive`` when the whole interval is above 0, ``negative`` when below, else ``neither``."""
        if self.interval is None or self.interval.low <= 0 <= self.interval.high:
            return neither
        return positive if self.interval.low > 0 else negative

    def interval_text(self) -> str:
        """``[low, high] (95%, 1000 resamples of groups; 3 undefined, left out)``."""
        if self.interval is None:
            return f"(no interval: {self.n_undefined} of {self.n_boot} resamples undefined)"
        return (f"{self.interval.text('.2f')} ({self.interval.level:.0%}, {self.n_boot} resamples of {self.over}; "
                f"{self.n_undefined} undefined, left out)")


def bootstrap_rank(x, y, draws: np.ndarray, *, control=None, over: str = "groups", unit: str = "group"
                   ) -> RankBootstrap:
    """:func:`partial_spearman` of ``x`` and ``y`` (n,) and its percentile interval over ``draws`` (n_boot, n) row
    indices (with replacement); samples where it is undefined are counted, not silently dropped."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    z = None if control is None else np.asarray(control, dtype=np.float64)
    value = partial_spearman(x, y, z)
    if math.isnan(value):
        raise ValueError(f"the rank correlation is undefined on the {len(x)} rows given (too few, or tied)")
    samples = np.array([partial_spearman(x[d], y[d], None if z is None else z[d]) for d in draws])
    defined = samples[np.isfinite(samples)]
    interval = percentile_interval(defined, estimate=value, unit=unit) if len(defined) >= 2 else None
    return RankBootstrap(value, interval, int(len(samples) - len(defined)), len(samples), over)


def _row_draws(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(check_positive_int("n_boot", n_boot), n))


@dataclass(frozen=True)
class ConditionResult:
    """The concentrated-logits condition judged on the table of groups (:func:`condition_check`).

    Attributes:
        checks: [raw, controlled] :class:`Check` s: the rank correlation of R² with the declared statistic, then the
            same controlling for the number of positions averaged (partial rank correlation).
        raw, controlled, entropy: their :class:`RankBootstrap` s (entropy: mean entropy against R², a correlate).
        leave_one_out: grouping -> rank correlation over the groups of every other grouping.
        statistic: the tested statistic; n_groups: rows; dropped: duplicate rows removed before the check.
    """

    checks: list
    raw: RankBootstrap
    controlled: RankBootstrap
    entropy: RankBootstrap
    leave_one_out: dict
    statistic: str
    n_groups: int
    dropped: list

    @property
    def verdict(self) -> str:
        return combine([check.verdict for check in self.checks])

    def entropy_sentence(self) -> str:
        """The mean entropy against R², in words: its rank correlation, interval, and direction (three-valued) next
        to the one concentrated logits would give (R² falling as the entropy rises)."""
        direction = self.entropy.word(
            "R² rises with the mean entropy, the opposite of what concentrated logits would give",
            "R² falls as the mean entropy rises, as concentrated logits would give",
            "no detectable direction of R² with the mean entropy")
        stronger = abs(self.entropy.value) > abs(self.raw.value)
        return (f"The mean entropy orders R² with rank correlation {self.entropy.value:.2f} "
                f"{self.entropy.interval_text()}: {direction}"
                f"{', and more strongly than the declared dispersion' if stronger else ''}.")

    def describe(self) -> str:
        """The checks with their numbers, the leave-one-grouping-out range and the entropy's direction, in words."""
        values = np.array(list(self.leave_one_out.values()))
        signs = ("keeps its sign" if np.all(values < 0) or np.all(values > 0) else
                 "changes sign or is undefined" if np.any(np.isnan(values)) else "changes sign")
        return (f"{'; '.join(check.describe() for check in self.checks)}; verdict {self.verdict}. Leaving one "
                f"grouping out at a time, the rank correlation {signs} ({np.nanmin(values):.2f} to "
                f"{np.nanmax(values):.2f} over {len(values)} groupings). {self.entropy_sentence()}")


def _rank_check(name: str, result: RankBootstrap) -> Check:
    interval = result.interval if result.interval is not None else Interval(-1.0, 1.0, 0.95, result.n_boot, "group")
    return Check(f"{name} (interval over {result.n_boot} resamples of the groups, not over texts; "
                 f"{result.n_undefined} undefined resamples left out)", result.value, interval, 0.0, "below", ".2f")


def leave_one_grouping_out(table: pd.DataFrame, statistic: str, target: str = "r2") -> dict[str, float]:
    """grouping -> rank correlation of ``target`` with ``statistic`` over the rows of every other grouping."""
    return {grouping: _spearman(table.loc[table.grouping != grouping, statistic],
                                table.loc[table.grouping != grouping, target])
            for grouping in table.grouping.unique()}


def condition_check(table: pd.DataFrame, statistic: str = DECLARED_STATISTIC, *, target: str = "r2",
                    n_boot: int = 1000, seed: int = 0) -> ConditionResult:
    """The paper's "concentrated logits" condition, read as: R² falls as the dispersion of the averaged positions
    rises, i.e. the rank correlation of R² with ``statistic`` over the groups is below 0, both as measured and
    controlling for the number of positions each group averages (``log n_positions``; partial rank correlation).

    Duplicate rows are dropped first (:func:`drop_duplicate_groups`). Both intervals resample the groups (rows) with
    replacement, the same draws for both; they are over groups of positions, not over texts. Resamples where a
    correlation is undefined are counted and reported in the check's name. The verdict combines the two checks
    (:func:`utils.uncertainty.combine`).
    """
    missing = [name for name in (statistic, target, "mean_entropy", "n_positions", "grouping") if name not in table]
    if missing:
        raise ValueError(f"table lacks the columns {missing}; it has {list(table.columns)}")
    table, dropped = drop_duplicate_groups(table)
    draws = _row_draws(len(table), n_boot, seed)
    y = table[target].to_numpy(np.float64)
    raw = bootstrap_rank(table[statistic], y, draws, over="groups")
    controlled = bootstrap_rank(table[statistic], y, draws, control=np.log(table.n_positions), over="groups")
    entropy = bootstrap_rank(table.mean_entropy, y, draws, over="groups")
    checks = [_rank_check(f"concentrated logits: rank correlation of R² with {statistic} over groups of positions",
                          raw),
              _rank_check("the same, controlling for the number of positions averaged by a partial rank correlation",
                          controlled)]
    return ConditionResult(checks, raw, controlled, entropy, leave_one_grouping_out(table, statistic, target),
                           statistic, len(table), dropped)


def windows_log_alpha(window_log_sums, windows, window_length: int) -> np.ndarray:
    """log alpha over a set of a pass's windows, from its kept per-window sums: (n_windows, V) logs -> (V,) float64.

    No pass over text: alpha of a seeded subset of windows (fewer positions, same text) is a logsumexp of rows.
    """
    windows = np.asarray(windows, dtype=np.int64)
    if windows.ndim != 1 or windows.size == 0:
        raise ValueError("windows must be a non-empty 1-d array of window indices")
    rows = torch.as_tensor(np.asarray(window_log_sums)[windows], dtype=torch.float64)
    window_length = check_positive_int("window_length", window_length)
    return (torch.logsumexp(rows, dim=0) - math.log(windows.size * window_length)).numpy()


def prefix_log_alpha(label_log_sums: np.ndarray, label_counts: np.ndarray, length: int) -> np.ndarray:
    """log alpha over the positions whose label (context length - 1) is below ``length``: the alpha a pass with
    windows of ``length`` tokens would give on the same window starts (a causal model's position c sees only the
    c tokens before it). label_log_sums (T, V), label_counts (T,) -> (V,) float64."""
    length = check_int("length", length, minimum=1, maximum=len(label_counts))
    count = float(np.sum(label_counts[:length]))
    if count == 0:
        raise ValueError(f"no position has a context length of at most {length}")
    return (torch.logsumexp(torch.as_tensor(label_log_sums[:length]), dim=0) - math.log(count)).numpy()


def group_row(grouping: str, label, refitter, meter: DispersionMeter, log_alpha, hidden, log_normaliser,
              entropy, n_positions: int) -> dict:
    """One row of the dispersion table: the group's held-out R² (``refitter``: an
    :class:`utils.encoding.fit.EncodingRefitter`) beside its statistics, measured on ``hidden`` (its probed
    positions, with their log normalisers and entropies); ``n_positions`` is how many positions alpha averages."""
    fit = refitter.fit(np.exp(log_alpha))
    return {"grouping": grouping, "group": str(label), "n_positions": int(n_positions), "r2": fit.r2,
            **meter.measure(hidden, log_normaliser, log_alpha, entropy)}


def context_lengths(window_length: int) -> list[int]:
    """The context lengths of the length groups: the powers of two up to ``window_length``, and ``window_length``."""
    window_length = check_int("window_length", window_length, minimum=1)
    return sorted({2**i for i in range(int(np.log2(window_length)) + 1)} | {window_length})


def length_groups(n_windows: int, window_length: int, lengths, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Positions (flat indices into a pass of ``n_windows`` windows of ``window_length``) grouped by context length:
    group ``"c"`` holds position c - 1 of every window (n_windows,); group ``"random"`` as many positions drawn
    from the whole pass with ``rng`` (without replacement)."""
    n_positions = n_windows * window_length
    position_grid = np.arange(n_positions).reshape(n_windows, window_length)
    groups = {f"{c}": position_grid[:, check_int("lengths", c, minimum=1, maximum=window_length) - 1]
              for c in lengths}
    groups["random"] = rng.choice(n_positions, n_windows, replace=False)
    return groups


def entropy_groups(entropy, n_bins: int) -> dict[str, np.ndarray]:
    """Equal-sized bins of prediction entropy: ``"bin i"`` -> (n_i,) indices into ``entropy`` (n,), bin 1 the
    lowest entropies, edges at the quantiles of ``entropy``."""
    entropy = np.asarray(entropy, dtype=np.float64)
    n_bins = check_positive_int("n_bins", n_bins)
    edges = np.quantile(entropy, np.linspace(0, 1, n_bins + 1))
    bin_of = np.clip(np.searchsorted(edges, entropy, side="right") - 1, 0, n_bins - 1)
    return {f"bin {i + 1}": np.flatnonzero(bin_of == i) for i in range(n_bins)}


@dataclass
class ProbeSample:
    """Seeded positions of a pass with one head pass over them, labelled by context length.

    Attributes:
        positions: (n,) sorted flat position indices into the pass.
        hidden: (n, d) their hidden states.
        passed: their :class:`GroupPass` with labels ``positions % window_length`` (context length - 1).
        window_length: tokens per window of the pass.
    """

    positions: np.ndarray
    hidden: torch.Tensor
    passed: GroupPass
    window_length: int

    @classmethod
    def draw(cls, hidden_flat: torch.Tensor, head: OutputHead, positions, window_length: int) -> ProbeSample:
        """One labelled head pass over ``hidden_flat[positions]`` (hidden_flat: (N, d) all positions of a pass)."""
        positions = np.asarray(positions)
        hidden = hidden_flat[torch.as_tensor(positions)]
        passed = group_pass(hidden, head, labels=positions % window_length, n_labels=window_length)
        return cls(positions, hidden, passed, window_length)

    @property
    def context(self) -> np.ndarray:
        """(n,) context length - 1 of each position."""
        return self.positions % self.window_length

    @property
    def window(self) -> np.ndarray:
        """(n,) window index of each position."""
        return self.positions // self.window_length

    def statistics_of(self, inside: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Hidden states, log normalisers and entropies of the positions where ``inside`` (n,) bool is true."""
        return self.hidden[torch.as_tensor(inside)], self.passed.log_normaliser[inside], self.passed.entropy[inside]


@dataclass
class GroupFitter:
    """Rows of the dispersion table for one E and token split: ``refitter`` (an
    :class:`utils.encoding.fit.EncodingRefitter`), ``meter`` (:class:`DispersionMeter`) and the ``head``."""

    refitter: object
    meter: DispersionMeter
    head: OutputHead

    def row(self, grouping: str, label, log_alpha, hidden, log_normaliser, entropy, n_positions: int) -> dict:
        """:func:`group_row` with this fitter's refitter and meter."""
        return group_row(grouping, label, self.refitter, self.meter, log_alpha, hidden, log_normaliser, entropy,
                         n_positions)

    def rows(self, grouping: str, groups: dict, hidden: torch.Tensor) -> list[dict]:
        """One row per group, each from its own head pass: groups label -> (n_i,) indices into ``hidden`` (N, d)."""
        rows = []
        for label, positions in groups.items():
            h_group = hidden[torch.as_tensor(positions)]
            passed = group_pass(h_group, self.head)
            rows.append(self.row(grouping, label, passed.log_alpha, h_group, passed.log_normaliser, passed.entropy,
                                 len(positions)))
        return rows

    def window_length_rows(self, probe: ProbeSample, lengths) -> list[dict]:
        """Group "window length" L: alpha of the probe's positions with context at most L (the alpha a pass with
        windows of L tokens gives on the same window starts, :func:`prefix_log_alpha`)."""
        context = probe.context
        label_counts = np.bincount(context, minlength=probe.window_length)
        rows = []
        for length in lengths:
            inside = context < length
            log_alpha = prefix_log_alpha(probe.passed.label_log_sums, label_counts, length)
            rows.append(self.row("window length", length, log_alpha, *probe.statistics_of(inside), int(inside.sum())))
        return rows

    def window_count_rows(self, probe: ProbeSample, window_log_sums, counts, seed: int) -> list[dict]:
        """Group "number of windows" n: alpha of n seeded windows (each count drawn with ``default_rng(seed)``) from
        the pass's per-window sums (n_windows, V), measured on the probe's positions inside those windows."""
        rows = []
        for count in counts:
            windows = np.random.default_rng(seed).choice(len(window_log_sums), count, replace=False)
            inside = np.isin(probe.window, windows)
            log_alpha = windows_log_alpha(window_log_sums, windows, probe.window_length)
            rows.append(self.row("number of windows", count, log_alpha, *probe.statistics_of(inside),
                                 count * probe.window_length))
        return rows

    def corpus_rows(self, passes: dict, n_probe: int, seed: int) -> list[dict]:
        """Group "corpus": each pass's own alpha, measured on ``n_probe`` seeded positions of it (one head pass each).
        ``passes``: name -> :class:`utils.activations.Activations`."""
        rows = []
        for name, other in passes.items():
            picked = np.random.default_rng(seed).choice(other.n_positions, min(n_probe, other.n_positions),
                                                        replace=False)
            h_probe = other.hidden_flat[torch.as_tensor(np.sort(picked))]
            passed = group_pass(h_probe, self.head)
            rows.append(self.row("corpus", name, other.log_alpha.numpy(), h_probe, passed.log_normaliser,
                                 passed.entropy, other.n_positions))
        return rows
