"""The parameters of chapter 4 (training dynamics), checked in one place before any work.

The chapter's first cell builds :class:`DynamicsParameters` from its namespace; every knob is validated there
(invalid values raise ``ValueError`` or ``TypeError`` naming the parameter, the value and what is allowed), and the
objects the chapter works with (training configurations, probe settings, Pythia references) are derived from it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..compute import PRECISIONS, Compute, resolve_compute, resolve_device
from ..corpora import CORPORA
from ..parameters import PageParameters
from ..validation import check_choice, check_float, check_positive_int
from .checkpoints import CheckpointRef, pythia_refs
from .probes import ProbeSettings
from .training import MODEL_SIZES, TrainingConfig


@dataclass(frozen=True)
class DynamicsParameters(PageParameters):
    """Chapter 4's knobs (see the chapter's parameters cell for what each one does)."""

    architecture: str
    model_sizes: list[str]
    steps: int
    batch_size: int
    learning_rate: float
    checkpoint_every: int
    seed: int
    train_corpora: list[str]
    eval_corpus: str
    probe_window_length: int
    probe_n_tokens: int
    probe_seed: int
    sample_seed: int
    r2_threshold: float
    final_fraction: float
    e_left_threshold: float
    n_boot_tokens: int
    pythia_model: str | None
    pythia_revisions: list[str]
    device: str
    precision: str

    def __post_init__(self) -> None:
        sizes = self.model_sizes
        if isinstance(sizes, str) or len(sizes) == 0 or len(set(sizes)) != len(sizes):
            raise ValueError(f"model_sizes={sizes!r} must be a non-empty list of distinct names from "
                             f"{list(MODEL_SIZES)}")
        if isinstance(self.train_corpora, str) or len(self.train_corpora) == 0:
            raise ValueError(f"train_corpora={self.train_corpora!r} must be a non-empty list drawn from "
                             f"{list(CORPORA)}")
        for name in self.train_corpora:
            check_choice("train_corpora", name, CORPORA)
        # building them checks the training knobs (sizes, steps, batch, lr, spacing, seed) and the held-out pass
        _ = (self.configs, self.settings)
        check_float("r2_threshold", self.r2_threshold, low=0, high=1, low_inclusive=False)
        check_float("final_fraction", self.final_fraction, low=0, high=1, low_inclusive=False)
        check_float("e_left_threshold", self.e_left_threshold, low=0, high=1)
        check_positive_int("n_boot_tokens", self.n_boot_tokens)
        _ = self.pythia  # checks the revisions against Pythia's grid, without network access
        check_choice("precision", self.precision, PRECISIONS)
        resolve_device(self.device)  # a device not allowed, or cuda where no GPU is visible, raises here

    @property
    def configs(self) -> dict[str, TrainingConfig]:
        """size -> the training configuration of that size, in the order of ``model_sizes``."""
        return {size: TrainingConfig(architecture=self.architecture, size=size, steps=self.steps,
                                     batch_size=self.batch_size, lr=self.learning_rate,
                                     checkpoint_every=self.checkpoint_every, seed=self.seed)
                for size in self.model_sizes}

    def compute(self) -> Compute:
        """Where and in what precision the models train: ``utils.compute.resolve_compute(device, precision)``, which
        measures now whether bf16 pays on this CPU and falls back to float32 (printing why) where it does not."""
        return resolve_compute(self.device, self.precision)

    @property
    def settings(self) -> ProbeSettings:
        """How every checkpoint is probed."""
        return ProbeSettings(eval_corpus=self.eval_corpus, window_length=self.probe_window_length,
                             n_tokens=self.probe_n_tokens, seed=self.probe_seed, sample_seed=self.sample_seed)

    @property
    def pythia(self) -> list[CheckpointRef] | None:
        """The Pythia checkpoints to probe, in step order, or None when ``pythia_model`` is None."""
        return pythia_refs(self.pythia_model, self.pythia_revisions) if self.pythia_model is not None else None

    @property
    def main_size(self) -> str:
        """The size that carries the headline numbers: the last (largest) of ``model_sizes``."""
        return self.model_sizes[-1]

    @property
    def small_size(self) -> str:
        """The first (smallest) of ``model_sizes``."""
        return self.model_sizes[0]
