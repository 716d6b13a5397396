"""Figures of chapter 4 (training dynamics)."""
from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from ..dynamics.probes import COUNT_GROUPS
from ..dynamics.training import TrainingRun


def step_axis(ax: Any, max_step: int) -> None:
    """Training steps on a symmetric log axis (0 is the initialisation) up to ``max_step``."""
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, max_step * 1.05)
    ax.set_xlabel("training step (symmetric log scale; 0 = initialisation)")


def plot_losses(runs: Mapping[str, TrainingRun], frames: Mapping[str, Any], smooth: int = 16):
    """Training loss (running mean over ``smooth`` steps) and held-out loss at every checkpoint, per size."""

    fig, ax = plt.subplots()
    for index, (size, run) in enumerate(runs.items()):
        color = f"C{index}"
        losses = run.train_loss
        window = max(1, min(smooth, len(losses)))
        smoothed = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(losses) + 1), smoothed, color=color, alpha=0.5, lw=1,
                label=f"{size}: training loss (mean of {window} steps)")
        frame = frames[size]
        ax.plot(frame["step"], frame["heldout_loss"], "o-", color=color, ms=4, label=f"{size}: held-out loss")
    ax.axhline(math.log(len(next(iter(runs.values())).token_counts)), color="0.5", ls=":", lw=1,
               label="log V (uniform prediction)")
    step_axis(ax, max(run.final_step for run in runs.values()))
    ax.set_ylabel("next-token loss (nats)")
    ax.legend()
    return fig


def plot_probes(frames: Mapping[str, Any]):
    """Frequency probe (held-out R², Spearman) and the log-linear encoding's held-out R², per size."""

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for index, (size, frame) in enumerate(frames.items()):
        color = f"C{index}"
        axes[0].plot(frame["step"], frame["freq_r2"], "o-", color=color, ms=4, label=f"{size}: R²")
        axes[0].plot(frame["step"], frame["freq_spearman"], "s--", color=color, ms=3, alpha=0.7,
                     label=f"{size}: Spearman")
        axes[1].plot(frame["step"], frame["encoding_r2"], "o-", color=color, ms=4, label=f"{size}: R²")
        axes[1].plot(frame["step"], frame["encoding_spearman"], "s--", color=color, ms=3, alpha=0.7,
                     label=f"{size}: Spearman")
    max_step = max(int(frame["step"].max()) for frame in frames.values())
    for ax, title in zip(axes, ["E predicts log corpus frequency", "E predicts −log α (chapter 1's encoding)"]):
        step_axis(ax, max_step)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(title)
    axes[0].legend(loc="upper left")
    axes[1].legend(loc="lower right")
    axes[0].set_ylabel("held-out score over tokens")
    axes[0].set_ylim(-0.1, 1.0)
    return fig


def plot_convergence(frames: Mapping[str, Any], first_steps: Mapping[str, int | None]):
    """Per size: frequency R², distance of ``E`` and of all parameters to the final checkpoint, and held-out loss
    (as the fraction of its drop still to come), on one step axis."""

    fig, axes = plt.subplots(1, len(frames), figsize=(5 * len(frames), 4), sharey=True, squeeze=False)
    for ax, (size, frame) in zip(axes[0], frames.items()):
        loss = frame["heldout_loss"].to_numpy()
        remaining = (loss - loss[-1]) / (loss[0] - loss[-1]) if loss[0] != loss[-1] else np.zeros_like(loss)
        ax.plot(frame["step"], frame["freq_r2"], "o-", ms=4, label="frequency R² (held-out tokens)")
        ax.plot(frame["step"], frame["e_distance"], "s-", ms=4, label="‖E − E_final‖ / ‖E_0 − E_final‖")
        ax.plot(frame["step"], frame["e_centred_distance"], "x-", ms=4, label="same, rows centred")
        ax.plot(frame["step"], frame["param_distance"], "^:", ms=4, label="same, all parameters")
        ax.plot(frame["step"], remaining, "d--", ms=4, label="held-out loss drop still to come")
        step = first_steps.get(size)
        if step is not None:
            ax.axvline(step, color="0.3", ls=":", lw=1)
        step_axis(ax, int(frame["step"].max()))
        ax.set_title(size)
    axes[0][0].set_ylabel("fraction")
    axes[0][0].legend(loc="center left")
    return fig


def plot_unseen(frames: Mapping[str, Any], groups: Any, size: str):
    """Left: the share of a token group's (centred) output-embedding norm that is one shared offset, for tokens never
    seen in training, seen once, and seen at least 100 times.  Right: where the frequency probe of ``size``'s final
    checkpoint places tokens, grouped by training count."""

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for index, (name, frame) in enumerate(frames.items()):
        color = f"C{index}"
        axes[0].plot(frame["step"], frame["shared_unseen"], "o-", color=color, ms=4, label=f"{name}: unseen")
        axes[0].plot(frame["step"], frame["shared_once"], "s--", color=color, ms=3, label=f"{name}: seen once")
        axes[0].plot(frame["step"], frame["shared_frequent"], "^:", color=color, ms=3,
                     label=f"{name}: seen ≥ 100 times")
    step_axis(axes[0], max(int(frame["step"].max()) for frame in frames.values()))
    axes[0].set_ylabel("‖mean row‖² / mean ‖row‖² (rows centred)")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].set_title("how much of a group is one shared offset")
    axes[0].legend(fontsize=8)
    order = [name for name, _, _ in COUNT_GROUPS if (groups["group"] == name).any()]
    sns.boxplot(data=groups, x="group", y="predicted", order=order, ax=axes[1], fliersize=1, color="C0")
    axes[1].set_xlabel("training-text count of the token")
    axes[1].set_ylabel("probe's predicted log relative frequency")
    axes[1].set_title(f"{size}, final checkpoint")
    return fig


def plot_pythia(frame: Any, model: str | None, status: str = ""):
    """The probe on Pythia checkpoints (duplicates of an earlier checkpoint are left out and marked); when ``frame``
    is None, a panel that states ``status`` instead."""


    fig, ax = plt.subplots()
    if frame is None:
        fig.set_size_inches(7.0, 1.6)
        ax.axis("off")
        ax.text(0.5, 0.5, "Pythia probe " + "\n".join(textwrap.wrap(status, 90)), ha="center", va="center",
                fontsize=10, color="0.3", transform=ax.transAxes)
        return fig
    distinct = frame[frame["duplicate_of"] == ""]
    ax.plot(distinct["step"], distinct["freq_r2"], "o-", ms=4, label="frequency R² (held-out tokens)")
    ax.plot(distinct["step"], distinct["encoding_r2"], "v-", ms=4, label="encoding R² (−log α)")
    ax.plot(distinct["step"], distinct["e_distance"], "s-", ms=4, label="‖E − E_final‖ / ‖E_0 − E_final‖")
    ax.plot(distinct["step"], distinct["e_centred_distance"], "x-", ms=4, label="same, rows centred")
    ax.plot(distinct["step"], distinct["param_distance"], "^:", ms=4, label="same, all parameters")
    duplicates = frame[frame["duplicate_of"] != ""]
    for step in duplicates["step"]:
        ax.axvline(step, color="C3", lw=0.8, ls=":")
    step_axis(ax, int(frame["step"].max()))
    ax.set_ylabel("fraction / score")
    ax.set_title(model + (" (red: checkpoints identical to an earlier one)" if len(duplicates) else ""))
    ax.legend()
    return fig


def plot_seen_control(control: Any, size: str, first_step: int | None = None):
    """The frequency probe against the seen-count control, per checkpoint of one run.

    Args:
        control: :func:`utils.dynamics.control.seen_count_control`'s frame (``step``, ``probe_r2``, ``seen_r2``,
            ``joint_r2``, ``seen_share``; and ``exposure_r2``, ``exposure_joint_r2`` when present).
        size: the run's name, for the title.
        first_step: a step to mark with a dotted vertical line (the probe's first milestone), or None.
    """

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(control["step"], control["probe_r2"], "o-", ms=4, label="E (the frequency probe)")
    ax.plot(control["step"], control["seen_r2"], "s--", ms=4, label="log(count in the batches seen so far + 1)")
    ax.plot(control["step"], control["joint_r2"], "x:", ms=5, label="both together")
    if "exposure_r2" in control:
        ax.plot(control["step"], control["exposure_r2"], "d-", ms=4, color="C3",
                label="exposure record (seen at all, log(updates + 1))")
        ax.plot(control["step"], control["exposure_joint_r2"], "+-.", ms=6, color="C4",
                label="E with the exposure record")
    ax.plot(control["step"], control["seen_share"], "^-", ms=3, color="0.6", lw=0.8,
            label="share of held-out tokens seen so far")
    if first_step is not None:
        ax.axvline(first_step, color="0.3", ls=":", lw=1)
    ax.axhline(0, color="0.5", lw=0.8)
    step_axis(ax, int(control["step"].max()))
    ax.set_ylim(-0.1, 1.0)
    ax.set_ylabel("held-out R² over tokens / share")
    ax.set_title(f"{size}: what predicts log corpus frequency at each checkpoint")
    ax.legend(loc="upper left", fontsize=7)
    return fig
