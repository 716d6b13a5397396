"""A control for the early signal of the frequency probe: which tokens the batches a checkpoint has seen contained.

The counts of each token in the batches seen so far are regenerated from the seed, without training (the same
:class:`~utils.dynamics.training.WindowSchedule` the training loop draws from), and used as a predictor of log
frequency against the probe of ``E``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import r2_score
from transformers import PreTrainedTokenizerBase

from .. import cache
from ..encoding.fit import LeastSquares, ols, token_counts
from ..uncertainty import Check, percentile_interval
from ..validation import check_choice, check_float, check_int, check_positive_int
from .probes import ProbeSettings, log_frequency, probe_split
from .training import (
    TRAINING_VERSION,
    TrainingConfig,
    TrainingRun,
    encode_text,
    tokenizer_fingerprint,
    training_schedule,
)


def seen_token_counts(config: TrainingConfig, token_ids: np.ndarray, vocab_size: int,
                      steps: Sequence[int]) -> np.ndarray:
    """How often each token occurred in the batches a checkpoint was trained on: -> (len(steps), V) int64.

    Row ``i`` counts every token (inputs and targets) of the batches of steps ``0 .. steps[i] - 1``, the batches
    that the weights of checkpoint ``steps[i]`` have seen (the checkpoint at step 0 has seen none).

    Args:
        token_ids: (n_tokens,) the encoded training text (see :func:`~utils.dynamics.training.training_schedule`).
        steps: checkpoint steps in increasing order, each in ``[0, config.steps]``.
    """
    def add(batch: torch.Tensor, running: np.ndarray) -> None:
        running += token_counts(batch.numpy(), vocab_size)

    return _running_counts(config, token_ids, vocab_size, steps, add)


def row_update_counts(config: TrainingConfig, token_ids: np.ndarray, vocab_size: int,
                      steps: Sequence[int]) -> np.ndarray:
    """How many updates pulled each token's row of ``E`` towards a hidden state before a checkpoint:
    -> (len(steps), V) int64, the number of steps ``0 .. steps[i] - 1`` whose batch had the token as a target.

    Every row of ``E`` gets a gradient at every step through the softmax's normaliser; only the steps where the
    token is a target pull it towards the hidden states. Unlike :func:`seen_token_counts`, a step counts once
    however often the token occurs in its batch: this is the record of exposure, not an estimate of frequency.

    Args:
        token_ids: (n_tokens,) the encoded training text; steps: increasing checkpoint steps in ``[0, config.steps]``.
    """
    def add(batch: torch.Tensor, running: np.ndarray) -> None:
        running[np.unique(batch[:, 1:].numpy())] += 1

    return _running_counts(config, token_ids, vocab_size, steps, add)


def _running_counts(config: TrainingConfig, token_ids: np.ndarray, vocab_size: int, steps: Sequence[int],
                    add: Any) -> np.ndarray:
    """Per checkpoint step, a (V,) int64 tally that ``add(batch (batch_size, n_ctx), tally)`` updates in place for
    each training step before it: -> (len(steps), V). The steps are checked (increasing, within the run)."""
    vocab_size = check_positive_int("vocab_size", vocab_size)
    steps = [check_int("steps", step, minimum=0) for step in steps]
    if steps != sorted(steps) or (steps and steps[-1] > config.steps):
        raise ValueError(f"steps={steps} must be increasing and within [0, {config.steps}] (the run's steps)")
    schedule = training_schedule(config, token_ids)
    running = np.zeros(vocab_size, dtype=np.int64)
    rows, done = [], 0
    for step in steps:
        for s in range(done, step):
            add(schedule.batch(s), running)
        done = max(done, step)
        rows.append(running.copy())
    return np.stack(rows) if rows else np.zeros((0, vocab_size), dtype=np.int64)


def seen_count_control(
    embeddings: Sequence[np.ndarray],
    counts: np.ndarray,
    seen_counts: np.ndarray,
    steps: Sequence[int],
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
):
    """Per checkpoint, the frequency probe against a predictor that knows only which tokens training has shown.

    On the probe's own token split (:func:`~utils.dynamics.probes.frequency_probe` with ``test_fraction`` and
    ``seed``: fitted on its train tokens, scored on its held-out tokens), three least-squares fits of log relative
    frequency:

    - ``probe_r2``: on the rows of ``E`` (the frequency probe itself);
    - ``seen_r2``: on ``log(seen count + 1)``, the token's count in the batches seen so far (the control);
    - ``joint_r2``: on both together; ``joint_r2 - seen_r2`` is what ``E`` predicts beyond the control.

    Also ``seen_share``: the share of the held-out tokens that occurred at least once in those batches.

    Args:
        embeddings: (V, d) output embeddings of the checkpoints, in step order.
        counts: (V,) token counts of the whole training text (the target).
        seen_counts: (n_ckpt, V) from :func:`seen_token_counts`.
        steps: (n_ckpt,) the checkpoints' steps.

    Returns:
        a ``pandas.DataFrame`` with one row per checkpoint: ``step``, ``probe_r2``, ``seen_r2``, ``joint_r2``,
        ``seen_share``.
    """

    seen_counts = np.asarray(seen_counts)
    if not (len(embeddings) == len(steps) == seen_counts.shape[0]) or seen_counts.shape[1:] != np.shape(counts):
        raise ValueError(f"embeddings ({len(embeddings)}), steps ({len(steps)}) and seen_counts "
                         f"{seen_counts.shape} must describe the same checkpoints over the {np.shape(counts)} tokens")
    check_float("test_fraction", test_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    target = log_frequency(counts)  # (V,), -inf for unseen tokens, which are in neither split
    rows = []
    for step, E, seen in zip(steps, embeddings, seen_counts):
        E = E.detach().cpu().numpy() if isinstance(E, torch.Tensor) else np.asarray(E)
        train, test = probe_split(counts, E.shape[1], test_fraction=test_fraction, seed=seed)
        log_seen = np.log1p(seen.astype(np.float64))  # (V,)
        E_train, E_test = E[train].astype(np.float64), E[test].astype(np.float64)  # (n, d)
        # one factorisation of the E design serves the probe and, by Frisch-Waugh-Lovell, the joint fit: the
        # joint coefficient of log_seen is that of its residual on E, and E's coefficients are corrected by it
        fit_E = LeastSquares(E_train)
        b_y, c_y = fit_E.solve(target[train])
        b_s, c_s = fit_E.solve(log_seen[train])
        residual_s = log_seen[train] - (E_train @ b_s + c_s)
        residual_y = target[train] - (E_train @ b_y + c_y)
        energy = float(residual_s @ residual_s)
        gamma = float(residual_s @ residual_y) / energy if energy > 1e-12 * len(train) else 0.0
        slope, intercept = ols(log_seen[train, None], target[train])
        scores = {
            "probe_r2": float(r2_score(target[test], E_test @ b_y + c_y)),
            "seen_r2": float(r2_score(target[test], log_seen[test] * slope[0] + intercept)),
            "joint_r2": float(r2_score(target[test], E_test @ (b_y - gamma * b_s) + (c_y - gamma * c_s)
                                       + gamma * log_seen[test])),
        }
        rows.append({"step": int(step), **scores, "seen_share": float(np.mean(seen[test] > 0))})
    return pd.DataFrame(rows)


def exposure_features(seen: np.ndarray, updates: np.ndarray) -> np.ndarray:
    """(V, 2) float64 design of the exposure control: seen at all (0/1) and ``log(1 + updates)``, the number of
    updates that pulled the row (:func:`row_update_counts`)."""
    return np.stack([(np.asarray(seen) > 0).astype(np.float64), np.log1p(np.asarray(updates, dtype=np.float64))],
                    axis=1)


def _fitted(design_train: np.ndarray, y_train: np.ndarray, design_test: np.ndarray) -> np.ndarray:
    """Least squares with an intercept, fitted on train rows, predicted on test rows: (n_test,) float64."""
    coefficients, intercept = ols(design_train, y_train)
    return design_test @ coefficients + intercept


def exposure_control(E: np.ndarray, counts: np.ndarray, seen: np.ndarray, updates: np.ndarray, *,
                     test_fraction: float = 0.2, seed: int = 0, n_boot: int = 200, boot_seed: int = 0,
                     tolerance: float = 0.0) -> dict[str, Any]:
    """What ``E`` predicts of log frequency beyond the record of exposure, at one checkpoint, with intervals.

    The seen counts of :func:`seen_token_counts` are a sample estimate of the target itself (the counts over the
    whole text), so no predictor is expected to beat them: they are a reference, not a control. The control here
    knows only what training did to each row: whether its token was ever a target, and how many updates pulled the
    row (:func:`exposure_features`). On the probe's token split, least squares of log frequency on the exposure
    record, on ``E``, and on both are fitted on the train tokens and scored on the held-out ones; the intervals
    resample the held-out tokens (the fits fixed), the same draw for every fit.

    Args:
        E: (V, d) the checkpoint's output embedding; counts: (V,) whole-text counts (the target); seen, updates:
            (V,) the checkpoint's rows of :func:`seen_token_counts` and :func:`row_update_counts`.

    Returns:
        ``exposure_r2``, ``probe_r2``, ``joint_r2`` (floats); ``gain`` (joint minus exposure) and
        ``probe_minus_exposure`` as :class:`~utils.uncertainty.Check` objects against 0 + ``tolerance``.
    """
    E = np.asarray(E, dtype=np.float64)
    train, test = probe_split(counts, E.shape[1], test_fraction=test_fraction, seed=seed)
    target = log_frequency(counts)
    exposure = exposure_features(seen, updates)
    both = np.concatenate([E, exposure], axis=1)
    predicted = {name: _fitted(design[train], target[train], design[test])
                 for name, design in (("exposure", exposure), ("probe", E), ("joint", both))}
    actual = target[test]
    draws = np.random.default_rng(check_int("boot_seed", boot_seed, minimum=0)).integers(
        0, len(actual), size=(check_positive_int("n_boot", n_boot), len(actual)))

    def r2(prediction: np.ndarray, index: np.ndarray | slice = slice(None)) -> np.ndarray:
        y, p = actual[index], prediction[index]
        return 1.0 - ((y - p) ** 2).sum(axis=-1) / ((y - y.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)

    scores = {name: float(r2(p)) for name, p in predicted.items()}
    differences = {
        "gain": ("E added to the exposure record: gain in held-out R²", "joint", "exposure"),
        "probe_minus_exposure": ("E alone against the exposure record: difference in held-out R²", "probe",
                                 "exposure"),
    }
    out: dict[str, Any] = {f"{name}_r2": value for name, value in scores.items()}
    for key, (label, better, base) in differences.items():
        value = scores[better] - scores[base]
        samples = r2(predicted[better], draws) - r2(predicted[base], draws)
        out[key] = Check(label, value, percentile_interval(samples, estimate=value, unit="token"), tolerance, "above",
                         "+.3f")
    return out


def seen_counts_cache_key(run: TrainingRun, text: str, tokenizer: PreTrainedTokenizerBase,
                          kind: str = "seen_token_counts") -> str:
    """The cache key of :func:`run_seen_token_counts` (``kind="seen_token_counts"``) and of
    :func:`run_row_update_counts` (``kind="row_update_counts"``): a hash of the run's configuration, its checkpoint
    steps, the text, the tokenizer and :data:`~utils.dynamics.training.TRAINING_VERSION` (a test pins its value for
    a fixed run: changing it makes every cached count be recomputed).

    Raises ``ValueError`` when ``text`` is not the text ``run`` was trained on.
    """
    check_choice("kind", kind, tuple(_COUNTERS))
    text_sha = hashlib.sha256(text.encode()).hexdigest()[:16]
    if run.meta.get("text_sha", text_sha) != text_sha:
        raise ValueError(f"text is not the text run {run.directory.name} was trained on")
    return cache.key_of({"config": asdict(run.config), "text_sha": text_sha, "steps": sorted(run.checkpoints),
                         "tokenizer": tokenizer_fingerprint(tokenizer), "code_version": TRAINING_VERSION,
                         "kind": kind})


_COUNTERS = {"seen_token_counts": seen_token_counts, "row_update_counts": row_update_counts}


def _run_counts(run: TrainingRun, text: str, tokenizer: PreTrainedTokenizerBase, kind: str) -> np.ndarray:
    key = seen_counts_cache_key(run, text, tokenizer, kind)
    steps = sorted(run.checkpoints)
    path = cache.path_of("dynamics/seen", key, ".pt")
    saved = cache.read(path, cache.load_torch, lambda saved: saved.get("key") == key
                       and tuple(saved["counts"].shape) == (len(steps), len(tokenizer)))
    if saved is not None:
        return saved["counts"].numpy()
    counts = _COUNTERS[kind](run.config, encode_text(tokenizer, text), len(tokenizer), steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache.write(path, cache.save_torch({"key": key, "counts": torch.from_numpy(counts)}))
    return counts


def run_seen_token_counts(run: TrainingRun, text: str, tokenizer: PreTrainedTokenizerBase) -> np.ndarray:
    """:func:`seen_token_counts` at every checkpoint of ``run`` (-> (n_checkpoints, V) int64, checkpoints in step
    order), cached on disk under :func:`seen_counts_cache_key`.

    Args:
        run: the run :func:`~utils.dynamics.training.train_run` returned for ``text`` and ``tokenizer``.
    """
    return _run_counts(run, text, tokenizer, "seen_token_counts")


def run_row_update_counts(run: TrainingRun, text: str, tokenizer: PreTrainedTokenizerBase) -> np.ndarray:
    """:func:`row_update_counts` at every checkpoint of ``run`` (-> (n_checkpoints, V) int64), cached likewise."""
    return _run_counts(run, text, tokenizer, "row_update_counts")


def seen_control_at(control: Any, step: int | None) -> dict[str, float]:
    """The control's numbers at ``step`` (the last checkpoint when ``step`` is None): ``step``, ``probe_r2``,
    ``seen_r2``, ``joint_r2``, ``gain`` (joint minus seen), ``seen_share``; plus, over the checkpoints after step 0,
    ``n_seen_at_least`` (how many have ``seen_r2 >= probe_r2``), ``n_after_init`` and ``max_gain``."""
    rows = control[control["step"] == step] if step is not None else control.tail(1)
    if len(rows) != 1:
        raise ValueError(f"step={step!r} is not one of the control's checkpoints {control['step'].tolist()}")
    row = rows.iloc[0]
    later = control[control["step"] > 0]
    return {"step": int(row["step"]), "probe_r2": float(row["probe_r2"]), "seen_r2": float(row["seen_r2"]),
            "joint_r2": float(row["joint_r2"]), "gain": float(row["joint_r2"] - row["seen_r2"]),
            "seen_share": float(row["seen_share"]),
            "n_seen_at_least": int((later["seen_r2"] >= later["probe_r2"]).sum()), "n_after_init": len(later),
            "max_gain": float((later["joint_r2"] - later["seen_r2"]).max()) if len(later) else float("nan")}


def run_seen_count_control(run: TrainingRun, frame: Any, embeddings: Sequence[np.ndarray], text: str,
                           tokenizer: PreTrainedTokenizerBase, settings: ProbeSettings = ProbeSettings()):  # noqa: B008 - frozen
    """:func:`seen_count_control` for the distinct checkpoints of ``frame`` (the probes of ``run``), with the seen
    counts of :func:`run_seen_token_counts` and the probe's token split of ``settings``, plus the exposure control's
    point values (:func:`exposure_control`: ``exposure_r2`` and ``exposure_joint_r2`` columns).

    Returns:
        ``(control, seen, updates)``: the frame, and the (n_ckpt, V) seen counts and row-update counts of its
        checkpoints (for :func:`exposure_control`'s intervals at one of them).

    Args:
        embeddings: (V, d) output embeddings of the frame's distinct checkpoints
            (:func:`~utils.dynamics.checkpoints.checkpoint_embeddings`).
    """
    steps = frame.loc[frame["duplicate_of"] == "", "step"].astype(int).tolist()
    run_steps = sorted(run.checkpoints)
    missing = [step for step in steps if step not in run_steps]
    if missing:
        raise ValueError(f"frame holds steps {missing} that run {run.directory.name} has no checkpoint for")
    rows = [run_steps.index(step) for step in steps]
    seen = run_seen_token_counts(run, text, tokenizer)[rows]
    updates = run_row_update_counts(run, text, tokenizer)[rows]
    control = seen_count_control(embeddings, run.token_counts, seen, steps, test_fraction=settings.test_fraction,
                                 seed=settings.seed)
    exposure = [exposure_control(E, run.token_counts, s, u, test_fraction=settings.test_fraction, seed=settings.seed,
                                 n_boot=2) for E, s, u in zip(embeddings, seen, updates)]
    control["exposure_r2"] = [e["exposure_r2"] for e in exposure]
    control["exposure_joint_r2"] = [e["joint_r2"] for e in exposure]
    return control, seen, updates
