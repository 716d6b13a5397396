"""Milestones of one probed run and the scorecard's checks of chapter 4, with intervals over the probe's held-out
tokens."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..thresholds import reach
from ..uncertainty import Check, Interval, percentile_interval
from ..validation import check_float, check_int, check_positive_int
from .probes import ProbeSettings, frequency_probe


def first_step_reaching(steps: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The first step whose value is at least ``threshold`` and stays at least ``threshold`` at every later
    checkpoint; None if the last value is below it."""
    steps, values = list(steps), list(values)
    if len(steps) != len(values):
        raise ValueError(f"steps ({len(steps)}) and values ({len(values)}) differ in length")
    # walked back from the last checkpoint: the last step of that leading run is the first of the final run
    return reach(steps[::-1], [value >= threshold for value in values[::-1]])


def crossing_bracket(steps: Sequence[int], curve: Sequence[float], distance: dict[int, float],
                     final_fraction: float) -> tuple[float, float]:
    """Where the distance can lie when one R² curve crosses ``final_fraction`` of its final value for good:
    ``(low, high)``, the distances at the first checkpoint from which the curve stays at or above it and at the
    checkpoint before (the crossing lies somewhere between the two; the distance is assumed to move monotonically
    between neighbouring checkpoints). A curve already there at the first checkpoint gives that checkpoint's distance
    twice; a curve whose final value is not positive counts as reaching it only at the end, distance 0.

    Args:
        steps: (n_ckpt,) checkpoint steps in order; curve: (n_ckpt,) R² at each; distance: step -> distance.
    """
    steps, curve = list(steps), list(curve)
    if curve[-1] <= 0:
        return 0.0, 0.0
    step = first_step_reaching(steps, curve, final_fraction * curve[-1])
    index = steps.index(step)
    ends = (distance[step], distance[steps[max(index - 1, 0)]])
    return float(min(ends)), float(max(ends))




def summarize_dynamics(frame: Any, r2_threshold: float = 0.5, final_fraction: float = 0.9) -> dict[str, Any]:
    """Headline numbers of one probed run (one row per checkpoint, duplicates dropped).

    ``first_step``: the first checkpoint from which the frequency R² stays at or above ``r2_threshold``;
    ``first_step_fraction``: the same for ``final_fraction`` of the final R².  At each, the R², the distance of
    ``E`` and of all parameters to the final checkpoint (fraction of the initial distance) and the held-out loss.
    """
    check_float("r2_threshold", r2_threshold, low=0.0, high=1.0, low_inclusive=False)
    check_float("final_fraction", final_fraction, low=0.0, high=1.0, low_inclusive=False)
    distinct = frame[frame["duplicate_of"] == ""].reset_index(drop=True)
    steps, r2 = distinct["step"].tolist(), distinct["freq_r2"].tolist()
    final = distinct.iloc[-1]
    summary: dict[str, Any] = {
        "n_checkpoints": len(distinct),
        "final_step": int(final["step"]),
        "final_freq_r2": float(final["freq_r2"]),
        "final_freq_spearman": float(final["freq_spearman"]),
        "final_freq_r2_all_tokens": float(final["freq_r2_all_tokens"]),
        "final_encoding_r2": float(final["encoding_r2"]),
        "initial_loss": float(distinct.iloc[0]["heldout_loss"]),
        "final_loss": float(final["heldout_loss"]),
        "final_shared_unseen": float(final["shared_unseen"]),
        "final_shared_once": float(final["shared_once"]),
    }
    for name, threshold in (("first_step", r2_threshold), ("first_step_fraction", final_fraction * r2[-1])):
        step = first_step_reaching(steps, r2, threshold) if r2[-1] > 0 else None
        summary[name] = step
        row = distinct[distinct["step"] == step].iloc[0] if step is not None else None
        for column in ("freq_r2", "e_distance", "e_centred_distance", "param_distance", "heldout_loss"):
            summary[f"{column}_at_{name}"] = float(row[column]) if row is not None else float("nan")
    return summary


def probe_r2_bootstrap(
    embeddings: Sequence[np.ndarray], counts: np.ndarray, *, test_fraction: float = 0.2, seed: int = 0,
    n_boot: int = 200, boot_seed: int = 0,
) -> np.ndarray:
    """Held-out R² of the frequency probe of each checkpoint over resampled held-out tokens: -> (n_boot, n_ckpt).

    Each checkpoint's probe is fitted once (:func:`frequency_probe`, the same token split as the probes of the
    frame); a bootstrap sample draws the held-out tokens with replacement, the same draw at every checkpoint, so a
    sample's R² curve is paired across checkpoints.

    Args:
        embeddings: (V, d) output embeddings of the checkpoints, in step order.
        counts: (V,) training-corpus token counts (the probe's target).
    """
    n_boot = check_positive_int("n_boot", n_boot)
    check_int("boot_seed", boot_seed, minimum=0)
    actual, predicted = None, []
    for E in embeddings:
        probe = frequency_probe(E, counts, test_fraction=test_fraction, seed=seed)
        actual = probe.target[probe.test_tokens]
        predicted.append(probe.predicted[probe.test_tokens])
    if actual is None:
        raise ValueError("embeddings is empty")
    draws = np.random.default_rng(boot_seed).integers(0, len(actual), size=(n_boot, len(actual)))
    sampled_actual = actual[draws]  # (n_boot, n_test)
    total = ((sampled_actual - sampled_actual.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    return np.stack([1.0 - ((sampled_actual - p[draws]) ** 2).sum(axis=1) / total for p in predicted], axis=1)


def headline_checks(
    frame: Any,
    embeddings: Sequence[np.ndarray],
    counts: np.ndarray,
    *,
    settings: ProbeSettings = ProbeSettings(),  # noqa: B008 - a frozen dataclass
    r2_threshold: float = 0.5,
    final_fraction: float = 0.9,
    e_left_threshold: float = 0.5,
    n_boot: int = 200,
    boot_seed: int = 0,
    details: dict[str, Any] | None = None,
) -> list:
    """The scorecard's checks of "frequency is encoded in the output embedding early", with intervals over tokens.

    Checks (:class:`utils.uncertainty.Check`) on one probed run (``frame`` from
    :func:`~utils.dynamics.probes.probe_checkpoints`):

    - encoded: the frequency probe's held-out R² at the final checkpoint is at least ``r2_threshold``;
    - early: when the R² first stays at or above ``final_fraction`` of its final value, the output embedding is
      still at least ``e_left_threshold`` of its initial distance away from its final value, measured with each
      matrix's mean row removed (``e_centred_distance``: the part of ``E`` the softmax sees; adding one vector to
      every row changes no output distribution, and that mean row is most of the plain distance of these runs). A
      run whose final R² is not positive counts as reaching it only at the end, distance 0.

    Intervals resample the probe's held-out tokens (:func:`probe_r2_bootstrap`), not texts. The probe's target is
    the count of each token over the *whole* training text, the text the model learned from: no sample of text is
    involved, and recounting a resampled corpus against a model trained on the original one would measure their
    mismatch, not uncertainty. The first interval is the percentile interval of the final R². The second covers
    both the token bootstrap and the checkpoint grid: each resampled R² curve crosses between two checkpoints
    (:func:`crossing_bracket`), and the interval runs from the 2.5th percentile of the distances at the later one to
    the 97.5th percentile of those at the earlier one (each centred on the measured curve's, as
    :func:`~utils.uncertainty.percentile_interval` centres), so a crossing the grid does not resolve widens it. What
    these intervals cannot cover is the variation between training runs (other seeds, other texts).

    Args:
        frame: the probes of one run; duplicates (``duplicate_of``) are dropped as in :func:`summarize_dynamics`.
        embeddings: (V, d) output embeddings of the frame's distinct checkpoints, in step order.
        counts: (V,) training-corpus token counts.
        details: if given, filled with ``e_left_token_interval`` (the token bootstrap alone: the distance at each
            sample's first checkpoint) and ``e_left_grid_bracket`` (the grid alone: the distances at the two
            checkpoints around the measured curve's crossing).
    """

    check_float("e_left_threshold", e_left_threshold, low=0.0, high=1.0)
    summary = summarize_dynamics(frame, r2_threshold, final_fraction)
    distinct = frame[frame["duplicate_of"] == ""].reset_index(drop=True)
    if len(embeddings) != len(distinct):
        raise ValueError(f"embeddings holds {len(embeddings)} checkpoints; the frame has {len(distinct)} distinct ones")
    samples = probe_r2_bootstrap(embeddings, counts, test_fraction=settings.test_fraction, seed=settings.seed,
                                 n_boot=n_boot, boot_seed=boot_seed)
    steps = distinct["step"].tolist()
    e_distance = dict(zip(steps, distinct["e_centred_distance"].to_numpy(dtype=np.float64)))
    e_left = summary["e_centred_distance_at_first_step_fraction"]
    e_left = 0.0 if math.isnan(e_left) else e_left
    brackets = np.array([crossing_bracket(steps, curve, e_distance, final_fraction) for curve in samples])
    measured = crossing_bracket(steps, distinct["freq_r2"].tolist(), e_distance, final_fraction)
    low_ends = percentile_interval(brackets[:, 0], estimate=measured[0], unit="token")
    high_ends = percentile_interval(brackets[:, 1], estimate=measured[1], unit="token")
    e_left_interval = Interval(low_ends.low, high_ends.high, low_ends.level, low_ends.n_boot, "token")
    if details is not None:  # the two sources of the interval, each alone
        details["e_left_token_interval"] = low_ends
        details["e_left_grid_bracket"] = measured
    return [
        Check("encoded: held-out R² of the frequency probe at the final checkpoint (interval over held-out tokens)",
              summary["final_freq_r2"],
              percentile_interval(samples[:, -1], estimate=summary["final_freq_r2"], unit="token"), r2_threshold,
              "above", ".2f"),
        Check(f"early: ||E - E_final||, rows centred (share of its initial value), when the R² first stays at or "
              f"above {final_fraction:.0%} of its final value (interval over held-out tokens and the checkpoint "
              f"grid)", e_left,
              e_left_interval, e_left_threshold, "above", ".0%"),
    ]
