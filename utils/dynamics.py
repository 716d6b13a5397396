"""Training dynamics: when does the output embedding learn token frequency?

Cho et al. probe Pythia checkpoints and find that the output embedding encodes corpus token frequency early in
pre-training, before the parameters converge.  This module trains small GPT-NeoX models (Pythia's architecture,
untied output embedding) from scratch on the book's corpora, saving checkpoints on a Pythia-like grid of steps
(0, 1, 2, 4, ..., 512, then evenly to the end), and probes every checkpoint:

- the frequency probe: a least-squares regression of log corpus frequency on the rows of ``E`` (V, d), scored on
  held-out tokens (R²), and the Spearman correlation of the fitted direction with log frequency;
- the log-linear encoding of chapter 1 (``fit_encoding(E, alpha).r2`` with the checkpoint's own ``alpha``);
- convergence: distance of ``E`` (and of all parameters) to the final checkpoint, and held-out loss;
- tokens never seen in training: how close together their output embeddings end up and where the probe places them.

The same probe runs on real Pythia checkpoints (``EleutherAI/pythia-*`` at revisions ``stepN``) where the hub or a
local cache is reachable; identical checkpoints (same hash of ``E``) are detected and reported.

Training is deterministic from the seed (weights initialised under ``torch.manual_seed(seed)``, batches drawn from
per-epoch permutations of non-overlapping windows seeded by ``(seed, epoch)``, no dropout) and resumable: each
checkpoint folder is written atomically with ``save_pretrained`` and never changed afterwards; the optimizer state,
RNG state and training losses of the newest checkpoint live in one ``resume.pt`` file next to the checkpoints.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from scipy import stats
from tqdm.auto import tqdm
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from . import cache
from .encoding import ols, r2_score, token_counts
from .models import hub_offline, hub_reachable
from .paths import cache_dir
from .validation import check_choice, check_float, check_int, check_positive_int

# bump whenever training (resp. probing) changes in a way that changes results, so old caches are not reused
TRAINING_VERSION = "2"  # 2: the streamed loss takes one exp per logit
PROBE_VERSION = "4"  # 4: the held-out pass is drawn with ProbeSettings.sample_seed and described

ARCHITECTURES: tuple[str, ...] = ("gpt_neox",)
LOG_GRID_END = 512  # checkpoints at 0, 1, 2, 4, ..., 512 (as Pythia), then evenly spaced

# Pythia's published checkpoints: step0, the powers of two up to 512, then every 1000 steps up to 143000
PYTHIA_STEPS: frozenset[int] = frozenset([0] + [2**k for k in range(10)] + list(range(1000, 143001, 1000)))
PYTHIA_REVISION = re.compile(r"^step(\d+)$")


@dataclass(frozen=True)
class ModelSize:
    """A GPT-NeoX shape.  Parameters are dominated by the two V x d embeddings (input and output, untied)."""

    d_model: int
    n_layers: int
    n_heads: int
    n_ctx: int

    @property
    def d_ff(self) -> int:
        return 4 * self.d_model

    def n_parameters(self, vocab_size: int) -> int:
        """Parameters of the GPT-NeoX model: two V x d embeddings, the layers and the final norm."""
        d, f = self.d_model, self.d_ff
        per_layer = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d)
        return 2 * vocab_size * d + self.n_layers * per_layer + 2 * d


MODEL_SIZES: dict[str, ModelSize] = {
    "tiny": ModelSize(d_model=16, n_layers=1, n_heads=2, n_ctx=32),  # for the tests
    "d64": ModelSize(d_model=64, n_layers=2, n_heads=4, n_ctx=64),
    "d128": ModelSize(d_model=128, n_layers=4, n_heads=4, n_ctx=64),
}


def checkpoint_steps(steps: int, every: int, log_until: int = LOG_GRID_END) -> list[int]:
    """The checkpoint grid: 0, the powers of two up to ``min(log_until, steps)``, then every ``every`` steps after
    ``log_until``, and always ``steps`` itself (the final checkpoint).

    >>> checkpoint_steps(768, 128)
    [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 640, 768]
    """
    steps = check_positive_int("steps", steps)
    every = check_positive_int("checkpoint_every", every)
    log_until = check_positive_int("log_until", log_until)
    grid = {0, steps}
    power = 1
    while power <= min(log_until, steps):
        grid.add(power)
        power *= 2
    grid.update(range(log_until + every, steps + 1, every))
    return sorted(grid)


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that determines a training run (with the corpus text and the tokenizer).

    Attributes:
        architecture: only ``"gpt_neox"`` (Pythia's).
        size: a key of :data:`MODEL_SIZES`.
        steps: optimizer steps (>= 1).
        batch_size: windows of ``n_ctx`` tokens per step.
        lr: peak learning rate of AdamW (betas 0.9/0.95, as Pythia), linear warm-up then cosine decay to lr/10.
        warmup_fraction: share of the steps spent warming up (Pythia: 1%).
        weight_decay: AdamW weight decay on matrices (Pythia: 0.01); biases and norms are not decayed.
        grad_clip: gradient-norm clipping (Pythia: 1.0).
        checkpoint_every: spacing of the checkpoints after step 512.
        seed: seeds the initial weights and the data order.
    """

    architecture: str = "gpt_neox"
    size: str = "d64"
    steps: int = 768
    batch_size: int = 8
    lr: float = 2e-3
    warmup_fraction: float = 0.01
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    checkpoint_every: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("size", self.size, MODEL_SIZES)
        check_positive_int("steps", self.steps)
        check_positive_int("batch_size", self.batch_size)
        check_float("lr", self.lr, low=0.0, high=1.0, low_inclusive=False)
        check_float("warmup_fraction", self.warmup_fraction, low=0.0, high=1.0)
        check_float("weight_decay", self.weight_decay, low=0.0, high=1.0)
        check_float("grad_clip", self.grad_clip, low=0.0, low_inclusive=False)
        check_positive_int("checkpoint_every", self.checkpoint_every)
        check_int("seed", self.seed, minimum=0)

    @property
    def shape(self) -> ModelSize:
        return MODEL_SIZES[self.size]

    @property
    def grid(self) -> list[int]:
        return checkpoint_steps(self.steps, self.checkpoint_every)

    @property
    def warmup_steps(self) -> int:
        return max(1, round(self.warmup_fraction * self.steps))

    def lr_at(self, step: int) -> float:
        """Learning rate of the update that takes the weights from ``step`` to ``step + 1``."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return self.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def build_model(config: TrainingConfig, vocab_size: int, eos_token_id: int) -> GPTNeoXForCausalLM:
    """A freshly initialised GPT-NeoX (untied output embedding, no dropout), seeded by ``config.seed``."""
    shape = config.shape
    neox_config = GPTNeoXConfig(
        vocab_size=vocab_size,
        hidden_size=shape.d_model,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        intermediate_size=shape.d_ff,
        max_position_embeddings=shape.n_ctx,
        rotary_pct=0.25,
        use_parallel_residual=True,
        tie_word_embeddings=False,
        attention_dropout=0.0,
        hidden_dropout=0.0,
        initializer_range=0.02,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
    )
    torch.manual_seed(config.seed)
    return GPTNeoXForCausalLM(neox_config)


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``h @ W.T`` against targets, streamed over chunks of positions.

    The (positions x V) logits are never held whole: each chunk's softmax gradient is formed and folded into the
    gradients of ``h`` and ``W`` during the forward pass (the loss is a scalar, so the backward pass only scales).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, W: torch.Tensor, targets: torch.Tensor, chunk_size: int):
        n = h.shape[0]
        grad_h = torch.empty_like(h)
        grad_W = torch.zeros_like(W)
        total = torch.zeros((), dtype=torch.float64)
        buffer = torch.empty((min(chunk_size, n), W.shape[0]), dtype=h.dtype)  # one (chunk, V) block, reused
        for start in range(0, n, chunk_size):
            h_chunk = h[start : start + chunk_size]
            t_chunk = targets[start : start + chunk_size]
            rows = torch.arange(len(t_chunk))
            logits = torch.mm(h_chunk, W.T, out=buffer[: len(t_chunk)])  # (n_chunk, V)
            target_logits = logits[rows, t_chunk]
            peak = logits.amax(dim=1, keepdim=True)
            probs = logits.sub_(peak).exp_()  # unnormalised softmax, in place (one exp per logit)
            norm = probs.sum(dim=1, keepdim=True)
            probs.div_(norm)
            lse = (peak + norm.log()).squeeze(1)
            total += (lse - target_logits).sum().double()
            probs[rows, t_chunk] -= 1.0  # d loss_i / d logits_i
            grad_h[start : start + chunk_size] = probs @ W
            grad_W.addmm_(probs.T, h_chunk)
        ctx.save_for_backward(grad_h, grad_W)
        ctx.n = n
        return (total / n).to(h.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_h, grad_W = ctx.saved_tensors
        scale = grad_output / ctx.n
        return grad_h * scale, grad_W * scale, None, None


def linear_cross_entropy(
    h: torch.Tensor, W: torch.Tensor, targets: torch.Tensor, chunk_size: int = 64
) -> torch.Tensor:
    """Mean next-token loss of logits ``h @ W.T``: h (N, d), W (V, d), targets (N,) int64 -> scalar.

    Equal to ``cross_entropy(h @ W.T, targets)`` (and so to the model's own loss), with the same gradients, but
    streamed over chunks of ``chunk_size`` positions, which is faster on a CPU for V = 50,257.
    """
    return _LinearCrossEntropy.apply(h, W, targets, check_positive_int("chunk_size", chunk_size))


def encode_text(tokenizer: PreTrainedTokenizerBase, text: str, piece_chars: int = 1 << 16) -> np.ndarray:
    """Tokenize a long text without special tokens: -> (n_tokens,) int64.

    The text is cut just before a newline that follows a non-space character (no pre-token of a byte-level BPE
    spans that point), into pieces of about ``piece_chars`` characters, and the pieces are encoded in one batch;
    the result equals encoding the whole text at once (tested).
    """
    pieces = _text_pieces(text, piece_chars)
    if not pieces:
        return np.zeros(0, dtype=np.int64)
    encoded = tokenizer([piece for _, piece in pieces], add_special_tokens=False, verbose=False)["input_ids"]
    return np.fromiter((token for piece in encoded for token in piece), dtype=np.int64)


def _text_pieces(text: str, piece_chars: int) -> list[tuple[int, str]]:
    """``(start offset, piece)`` cuts of ``text`` for :func:`encode_text`."""
    pieces, start = [], 0
    while start < len(text):
        cut = start + piece_chars
        while cut < len(text) and not (text[cut] == "\n" and not text[cut - 1].isspace()):
            cut += 1
        pieces.append((start, text[start:cut]))
        start = cut
    return pieces


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """sha256 of the tokenizer's full serialisation (vocabulary, merges, normalisation)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class WindowSchedule:
    """Which windows each step trains on: the token stream is cut into non-overlapping windows of ``n_ctx``
    tokens; epoch ``e`` visits them in the order ``default_rng((seed, e)).permutation``, and step ``s`` takes the
    windows ``s * batch_size ... (s + 1) * batch_size - 1`` of the concatenated epochs.  A pure function of
    ``(seed, step)``: resuming needs no data-loader state.
    """

    def __init__(self, token_ids: np.ndarray, n_ctx: int, batch_size: int, seed: int) -> None:
        self.n_ctx, self.batch_size, self.seed = n_ctx, batch_size, seed
        self.n_windows = len(token_ids) // n_ctx
        if self.n_windows < 1:
            raise ValueError(f"the training text holds {len(token_ids)} tokens, fewer than one window of {n_ctx}")
        self.windows = torch.from_numpy(token_ids[: self.n_windows * n_ctx].reshape(self.n_windows, n_ctx).copy())
        self._orders: dict[int, np.ndarray] = {}

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders[epoch] = np.random.default_rng((self.seed, epoch)).permutation(self.n_windows)
        return self._orders[epoch]

    def window_indices(self, step: int) -> np.ndarray:
        """(batch_size,) indices of the windows of ``step``."""
        flat = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        epochs, positions = np.divmod(flat, self.n_windows)
        return np.array([self._order(int(e))[int(p)] for e, p in zip(epochs, positions)])

    def batch(self, step: int) -> torch.Tensor:
        """(batch_size, n_ctx) int64 token ids of ``step``."""
        return self.windows[torch.from_numpy(self.window_indices(step))]

    def epochs(self, steps: int) -> float:
        """How many passes over the windows ``steps`` steps make."""
        return steps * self.batch_size / self.n_windows


@dataclass
class TrainingRun:
    """A finished (or partly finished) training run on disk.

    Attributes:
        config: what was trained.
        directory: the run folder ``cache_dir()/dynamics/<key>``.
        checkpoints: step -> checkpoint folder (each loadable with ``utils.models.load_model``).
        train_loss: (completed steps,) training loss of each step.
        token_counts: (V,) int64 occurrences of each token in the training text (0: never seen).
        n_train_tokens: tokens in the training text.
        epochs: passes over the training text that the steps make.
        train_seconds: wall-clock time spent training (summed over resumed sessions).
        complete: every checkpoint of the grid is on disk.
    """

    config: TrainingConfig
    directory: Path
    checkpoints: dict[int, Path]
    train_loss: np.ndarray
    token_counts: np.ndarray
    n_train_tokens: int
    epochs: float
    train_seconds: float
    complete: bool
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def final_step(self) -> int:
        return max(self.checkpoints)

    def refs(self) -> list[CheckpointRef]:
        """One :class:`CheckpointRef` per checkpoint, in step order."""
        return [
            CheckpointRef(step=step, name_or_path=str(path), revision=None, label=f"{self.config.size} step {step}")
            for step, path in sorted(self.checkpoints.items())
        ]


def run_key(config: TrainingConfig, text_sha: str, tokenizer_sha: str) -> str:
    """The run folder's name: a hash of everything that determines the weights."""
    payload = {
        "config": asdict(config),
        "shape": asdict(config.shape),
        "text_sha": text_sha,
        "tokenizer": tokenizer_sha,
        "code_version": TRAINING_VERSION,
        "torch": torch.__version__.split("+")[0],
    }
    return f"{config.architecture}-{config.size}-{cache.key_of(payload)[:16]}"


def _step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / f"step{step}"


def _is_checkpoint(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def _save_checkpoint(run_dir: Path, step: int, model: GPTNeoXForCausalLM, tokenizer: PreTrainedTokenizerBase) -> Path:
    """``save_pretrained`` the model and tokenizer into a temporary folder, then move it into place."""
    target = _step_dir(run_dir, step)
    staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=f".step{step}."))
    bars_were_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one bar per save would drown the training bar
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    finally:
        if bars_were_enabled:
            hf_logging.enable_progress_bar()
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def _optimizer(model: GPTNeoXForCausalLM, config: TrainingConfig) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)


def _resume_point(run_dir: Path, grid: Sequence[int]) -> dict[str, Any] | None:
    """The saved resume state if it is readable and its checkpoint folder is complete; otherwise None."""
    path = run_dir / "resume.pt"
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        step = int(state["step"])
    except Exception as error:  # noqa: BLE001 - an unreadable resume file means: start again
        print(f"resume.pt is unreadable ({type(error).__name__}); training from step 0")
        return None
    missing = [s for s in grid if s <= step and not _is_checkpoint(_step_dir(run_dir, s))]
    if step not in grid or missing:
        print(f"checkpoints {missing or [step]} of this run are missing; training from step 0")
        return None
    return state


def train_run(
    config: TrainingConfig,
    text: str,
    tokenizer: PreTrainedTokenizerBase,
    *,
    root: Path | None = None,
    stop_after: int | None = None,
    loss_chunk_size: int = 64,
    progress: bool = True,
) -> TrainingRun:
    """Train (or reuse, or resume) the run determined by ``config``, ``text`` and ``tokenizer``.

    Checkpoints land in ``root/<run_key>/step<N>`` (``root`` defaults to ``cache_dir()/"dynamics"``).  A run whose
    checkpoints are all on disk is returned without training; an interrupted run resumes from its newest complete
    checkpoint and gives bit-identical weights to an uninterrupted one.

    Args:
        text: the training text (the train splits of the corpora).
        stop_after: stop once the checkpoint of this grid step is saved (simulates an interruption; for tests).
        loss_chunk_size: positions per chunk of the streamed output-layer loss (speed only).
    """
    if stop_after is not None:
        check_choice("stop_after", stop_after, config.grid)
    root = Path(root) if root is not None else cache_dir() / "dynamics"
    text_sha = hashlib.sha256(text.encode()).hexdigest()[:16]
    run_dir = root / run_key(config, text_sha, tokenizer_fingerprint(tokenizer))
    run_dir.mkdir(parents=True, exist_ok=True)
    for leftover in run_dir.glob(".step*"):  # staging folders of an interrupted save
        shutil.rmtree(leftover, ignore_errors=True)
    vocab_size = len(tokenizer)
    token_ids = encode_text(tokenizer, text)
    counts = token_counts(token_ids, vocab_size)
    schedule = WindowSchedule(token_ids, config.shape.n_ctx, config.batch_size, config.seed)
    meta = {"config": asdict(config), "text_sha": text_sha, "vocab_size": vocab_size,
            "n_train_tokens": int(len(token_ids)), "n_windows": schedule.n_windows, "code_version": TRAINING_VERSION}
    cache.write(run_dir / "run.json", cache.save_json(meta))
    grid = config.grid
    last = stop_after if stop_after is not None else config.steps

    state = _resume_point(run_dir, grid)
    if state is not None and state["step"] >= last:
        return _collect(run_dir, config, counts, schedule, state, meta)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else vocab_size - 1
    if state is None:
        model = build_model(config, vocab_size, eos)
        optimizer = _optimizer(model, config)
        start, losses, seconds = 0, [], 0.0
        _save_checkpoint(run_dir, 0, model, tokenizer)
        state = _write_resume(run_dir, 0, optimizer, losses, seconds)
    else:
        try:
            model = GPTNeoXForCausalLM.from_pretrained(_step_dir(run_dir, state["step"]), dtype=torch.float32)
        except (OSError, ValueError, RuntimeError, SafetensorError) as error:  # a damaged checkpoint: start again
            print(f"checkpoint step{state['step']} does not load ({type(error).__name__}); training from step 0")
            (run_dir / "resume.pt").unlink()
            return train_run(config, text, tokenizer, root=root, stop_after=stop_after,
                             loss_chunk_size=loss_chunk_size, progress=progress)
        optimizer = _optimizer(model, config)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start, losses, seconds = state["step"], list(state["train_loss"]), float(state["train_seconds"])
    model.train()
    began = time.perf_counter()
    bar = tqdm(range(start, last), desc=f"train {config.size}", unit="step", disable=not progress,
               initial=start, total=last)
    for step in bar:
        batch = schedule.batch(step)  # (batch_size, n_ctx)
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step)
        hidden = model.gpt_neox(input_ids=batch, use_cache=False).last_hidden_state  # (B, T, d)
        h = hidden[:, :-1].reshape(-1, hidden.shape[-1])
        loss = linear_cross_entropy(h, model.get_output_embeddings().weight, batch[:, 1:].reshape(-1),
                                    loss_chunk_size)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
        if step + 1 in grid:
            _save_checkpoint(run_dir, step + 1, model, tokenizer)
            state = _write_resume(run_dir, step + 1, optimizer, losses, seconds + time.perf_counter() - began)
    bar.close()
    model.eval()
    return _collect(run_dir, config, counts, schedule, state, meta)


def _write_resume(run_dir: Path, step: int, optimizer: torch.optim.Optimizer, losses: list[float],
                  seconds: float) -> dict[str, Any]:
    state = {"step": step, "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
             "train_loss": list(losses), "train_seconds": seconds}
    cache.write(run_dir / "resume.pt", cache.save_torch(state))
    return state


def _collect(run_dir: Path, config: TrainingConfig, counts: np.ndarray, schedule: WindowSchedule,
             state: Mapping[str, Any], meta: dict[str, Any]) -> TrainingRun:
    reached = int(state["step"])
    checkpoints = {step: _step_dir(run_dir, step) for step in config.grid if step <= reached}
    missing = [step for step, path in checkpoints.items() if not _is_checkpoint(path)]
    if missing:
        raise RuntimeError(f"checkpoints {missing} of {run_dir.name} are missing; delete the folder and retrain")
    return TrainingRun(
        config=config,
        directory=run_dir,
        checkpoints=checkpoints,
        train_loss=np.asarray(state["train_loss"], dtype=np.float64),
        token_counts=counts,
        n_train_tokens=meta["n_train_tokens"],
        epochs=schedule.epochs(reached),
        train_seconds=float(state["train_seconds"]),
        complete=reached == config.steps,
        meta=meta,
    )


# ----------------------------------------------------------------------------------------------------------------
# Probes


@dataclass
class FrequencyProbe:
    """Least-squares regression of log corpus frequency on output-embedding rows.

    Attributes:
        direction: (d,) fitted coefficients: the "frequency direction" of ``E``.
        intercept: fitted intercept.
        predicted: (V,) predicted log relative frequency ``E @ direction + intercept`` for every token, unseen ones
            included.
        target: (V,) log relative frequency (``-inf`` for unseen tokens unless they were included).
        train_tokens, test_tokens: token ids used to fit and to score.
        r2: held-out R² over ``test_tokens``.
        spearman: Spearman correlation of ``E @ direction`` with log frequency over ``test_tokens``.
    """

    direction: np.ndarray
    intercept: float
    predicted: np.ndarray
    target: np.ndarray
    train_tokens: np.ndarray
    test_tokens: np.ndarray
    r2: float
    spearman: float


def log_frequency(counts: np.ndarray, unseen_count: float | None = None) -> np.ndarray:
    """(V,) log relative frequency ``log(count / total)``; unseen tokens get ``log(unseen_count / total)`` or -inf."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("counts are all zero: no token was seen")
    filled = counts if unseen_count is None else np.where(counts > 0, counts, unseen_count)
    with np.errstate(divide="ignore"):
        return np.log(filled / total)


def frequency_probe(
    E: np.ndarray | torch.Tensor,
    counts: np.ndarray,
    *,
    include_unseen: bool = False,
    unseen_count: float = 0.5,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> FrequencyProbe:
    """Regress log corpus frequency on the rows of ``E`` and score the fit on held-out tokens.

    Args:
        E: (V, d) output embedding.
        counts: (V,) token counts of the training corpus.
        include_unseen: also fit and score tokens that never occur, at a pseudo-count of ``unseen_count``.
        test_fraction: share of the (seen, or all) tokens held out for scoring, split at random from ``seed``.
    """
    E = E.detach().cpu().numpy() if isinstance(E, torch.Tensor) else np.asarray(E)
    E = E.astype(np.float64)
    counts = np.asarray(counts)
    if E.ndim != 2 or counts.shape != (E.shape[0],):
        raise ValueError(f"E (V, d) and counts (V,) must agree; got E {E.shape} and counts {counts.shape}")
    check_float("test_fraction", test_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    check_float("unseen_count", unseen_count, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    target = log_frequency(counts, unseen_count if include_unseen else None)
    tokens = np.arange(E.shape[0]) if include_unseen else np.flatnonzero(counts > 0)
    order = np.random.default_rng(seed).permutation(tokens)
    n_test = int(round(len(tokens) * test_fraction))
    if n_test < 3 or len(tokens) - n_test <= E.shape[1] + 1:
        raise ValueError(f"{len(tokens)} tokens are too few to fit {E.shape[1]} dimensions and hold out "
                         f"test_fraction={test_fraction}")
    train, test = np.sort(order[n_test:]), np.sort(order[:n_test])
    direction, intercept = ols(E[train], target[train])
    predicted = E @ direction + intercept
    return FrequencyProbe(
        direction=direction,
        intercept=intercept,
        predicted=predicted,
        target=target,
        train_tokens=train,
        test_tokens=test,
        r2=r2_score(target[test], predicted[test]),
        spearman=float(stats.spearmanr(E[test] @ direction, target[test])[0]),
    )


def embedding_hash(E: torch.Tensor | np.ndarray) -> str:
    """sha256 of an output embedding's float32 bytes and shape: equal iff the matrices are bit-identical."""
    array = E.detach().cpu().numpy() if isinstance(E, torch.Tensor) else np.asarray(E)
    array = np.ascontiguousarray(array, dtype=np.float32)
    digest = hashlib.sha256(repr(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def duplicate_checkpoints(hashes: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Checkpoints whose output embedding is identical to an earlier one's.

    Args:
        hashes: label -> :func:`embedding_hash`, in checkpoint order.

    Returns:
        label -> label of the first earlier checkpoint with the same hash (labels that are the first of their hash
        do not appear).
    """
    items = hashes.items() if isinstance(hashes, Mapping) else hashes
    first: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    for label, digest in items:
        if digest in first:
            duplicates[label] = first[digest]
        else:
            first[digest] = label
    return duplicates


def collapse(rows: np.ndarray) -> float:
    """``||mean row||² / mean ||row||²`` of a set of rows (n, d): the share of the rows' squared norm that is one
    shared offset.  1 when all rows are equal, about 1/n for independent random rows around the origin."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape[0] == 0:
        return float("nan")
    return float(np.sum(rows.mean(0) ** 2) / np.mean(np.sum(rows**2, axis=1)))


def spread(rows: np.ndarray) -> float:
    """Root-mean-square distance of rows (n, d) to their own mean row (NaN for no rows)."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape[0] == 0:
        return float("nan")
    return float(np.sqrt(np.mean(np.sum((rows - rows.mean(0)) ** 2, axis=1))))


def centred_distance(E: torch.Tensor, F: torch.Tensor) -> float:
    """Frobenius distance between two output embeddings (V, d) after removing each one's mean row.

    Adding one vector ``c`` to every row of ``E`` adds ``h · c`` to every logit of a position, which the softmax
    ignores; this distance ignores it too, and so measures only the part of ``E`` that shapes output distributions.
    """
    return float(torch.linalg.norm((E - E.mean(0)) - (F - F.mean(0))))


@torch.no_grad()
def heldout_loss(hidden: torch.Tensor, token_ids: torch.Tensor, head: Any, chunk_size: int = 1024) -> float:
    """Mean next-token loss (nats): hidden (n_windows, T, d) final hidden states, token_ids (n_windows, T), head an
    :class:`utils.head.OutputHead`.  Streams over chunks of positions (the last position of a window has no target).
    """
    d = hidden.shape[-1]
    h = hidden[:, :-1].reshape(-1, d)
    targets = token_ids[:, 1:].reshape(-1)
    total = 0.0
    for start in range(0, h.shape[0], chunk_size):
        logits = head.logits(h[start : start + chunk_size].to(torch.float32))
        chosen = logits.gather(1, targets[start : start + chunk_size, None]).squeeze(1)
        total += float((torch.logsumexp(logits, dim=1) - chosen).double().sum())
    return total / h.shape[0]


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints to probe: our own runs, or Pythia revisions


class CheckpointUnavailableError(ValueError):
    """The checkpoints to probe cannot be loaded on this machine (hub unreachable and not in a local cache)."""


@dataclass(frozen=True)
class CheckpointRef:
    """One checkpoint: a folder or hub id (``name_or_path``) with an optional hub ``revision``."""

    step: int
    name_or_path: str
    revision: str | None
    label: str


def check_pythia_revision(revision: str) -> int:
    """The step of a Pythia revision ``"stepN"``; raises ``ValueError`` unless N is one of Pythia's checkpoints."""
    match = PYTHIA_REVISION.match(revision) if isinstance(revision, str) else None
    if match is None:
        raise ValueError(f"pythia_revisions: revision={revision!r} must look like 'step1000' (step<N>)")
    step = int(match.group(1))
    if step not in PYTHIA_STEPS:
        raise ValueError(
            f"pythia_revisions: revision={revision!r} does not exist: Pythia has step0, step1, step2, step4, ..., "
            f"step512 and every 1000 steps from step1000 to step143000"
        )
    return step


def pythia_refs(model: str, revisions: Sequence[str]) -> list[CheckpointRef]:
    """Validated references to Pythia checkpoints, in step order (no network access)."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"pythia_model={model!r} must be a hub id such as 'EleutherAI/pythia-70m' or None")
    if isinstance(revisions, str) or len(revisions) == 0:
        raise ValueError(f"pythia_revisions={revisions!r} must be a non-empty list such as ['step0', 'step1000']")
    steps = {revision: check_pythia_revision(revision) for revision in revisions}
    if len(set(steps.values())) != len(steps) or len(steps) != len(revisions):
        raise ValueError(f"pythia_revisions={list(revisions)!r} repeats a revision")
    return [CheckpointRef(step=step, name_or_path=model, revision=revision, label=f"{model}@{revision}")
            for revision, step in sorted(steps.items(), key=lambda item: item[1])]


def is_hub_ref(ref: CheckpointRef) -> bool:
    """True when the checkpoint is a hub id rather than a local folder."""
    return not Path(ref.name_or_path).expanduser().is_dir()


_TOKENIZERS: dict[str, PreTrainedTokenizerBase] = {}


def _load_own_checkpoint(folder: Path):
    """A checkpoint written by :func:`train_run`, as a ``utils.models.LoadedModel`` (what ``load_model(folder)``
    returns, but the tokenizer, identical in every checkpoint of a run, is read once per process)."""
    from .head import check_head_identity
    from .models import LoadedModel

    tokenizer_file = folder / "tokenizer.json"
    tokenizer_key = hashlib.sha256(tokenizer_file.read_bytes()).hexdigest()
    if tokenizer_key not in _TOKENIZERS:
        from transformers import AutoTokenizer

        _TOKENIZERS[tokenizer_key] = AutoTokenizer.from_pretrained(folder)
    model = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    weights = (folder / "model.safetensors").stat()
    identity = hashlib.sha256(f"{folder.resolve()}:{weights.st_size}:{weights.st_mtime_ns}".encode()).hexdigest()
    loaded = LoadedModel(model, _TOKENIZERS[tokenizer_key], str(folder), None, model.config.max_position_embeddings,
                         f"dynamics-checkpoint:{identity[:16]}")
    check_head_identity(loaded)
    return loaded


def load_checkpoint(ref: CheckpointRef):
    """The checkpoint as a ``utils.models.LoadedModel``: ``utils.models.load_model(name_or_path, revision)``, with a
    shortcut for the folders of :func:`train_run`."""
    from .models import load_model

    folder = Path(ref.name_or_path).expanduser()
    if ref.revision is None and (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") == "gpt_neox":
            return _load_own_checkpoint(folder)
    return load_model(ref.name_or_path, revision=ref.revision)


def try_load_checkpoint(ref: CheckpointRef, *, offline: bool = False) -> tuple[Any | None, str | None]:
    """``(loaded, None)``, or ``(None, reason)`` when the checkpoint cannot be had on this machine.

    Args:
        offline: read hub checkpoints only from the local cache (use when :func:`hub_reachable` is False: the hub
            client would otherwise retry for minutes per file).
    """
    try:
        with hub_offline(offline and is_hub_ref(ref)):
            return load_checkpoint(ref), None
    except (ValueError, OSError) as error:
        return None, str(error).splitlines()[0]


# ----------------------------------------------------------------------------------------------------------------
# Probing a sequence of checkpoints


@dataclass(frozen=True)
class ProbeSettings:
    """How every checkpoint is probed.

    Attributes:
        eval_corpus: corpus whose test split gives the held-out loss and the checkpoint's ``alpha``.
        window_length, n_tokens: size of that pass (``utils.activations.compute_activations``).
        test_fraction, seed: the held-out token split of the frequency and encoding fits.
        unseen_count: pseudo-count of unseen tokens in the "all tokens" frequency probe.
        sample_seed: seed of the windows drawn across the held-out split (the same windows at every checkpoint).
    """

    eval_corpus: str = "wikipedia"
    window_length: int = 64
    n_tokens: int = 2048
    test_fraction: float = 0.2
    seed: int = 0
    unseen_count: float = 0.5
    sample_seed: int = 0

    def __post_init__(self) -> None:
        from .corpora import CORPORA

        check_choice("eval_corpus", self.eval_corpus, CORPORA)
        check_positive_int("window_length", self.window_length)
        check_positive_int("n_tokens", self.n_tokens)
        if self.n_tokens < self.window_length:
            raise ValueError(f"n_tokens={self.n_tokens} must be at least window_length={self.window_length}")
        check_float("test_fraction", self.test_fraction, low=0.0, high=1.0, low_inclusive=False,
                    high_inclusive=False)
        check_int("seed", self.seed, minimum=0)
        check_int("sample_seed", self.sample_seed, minimum=0)


def _flat_parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().to(torch.float32).clone() for name, p in model.named_parameters()}


def probe_checkpoint(loaded: Any, counts: np.ndarray, settings: ProbeSettings) -> dict[str, Any]:
    """Every per-checkpoint number except the distances to the final checkpoint.

    Args:
        loaded: a ``utils.models.LoadedModel``.
        counts: (V,) training-corpus token counts under the checkpoint's tokenizer (V = rows of ``E``).
    """
    from .activations import compute_activations
    from .encoding import fit_encoding
    from .head import output_head

    E = output_head(loaded.model).E  # (V, d)
    if counts.shape != (E.shape[0],):
        raise ValueError(f"counts must have shape ({E.shape[0]},), one per row of E; got {counts.shape}")
    seen = counts > 0
    seen_probe = frequency_probe(E, counts, test_fraction=settings.test_fraction, seed=settings.seed)
    all_probe = frequency_probe(E, counts, include_unseen=True, unseen_count=settings.unseen_count,
                                test_fraction=settings.test_fraction, seed=settings.seed)
    activations = compute_activations(loaded, settings.eval_corpus, "test", window_length=settings.window_length,
                                      n_tokens=settings.n_tokens, sample_seed=settings.sample_seed)
    encoding = fit_encoding(E.numpy(), activations.alpha.numpy(), test_fraction=settings.test_fraction,
                            seed=settings.seed)
    E_np = E.numpy().astype(np.float64)
    centred = E_np - E_np.mean(axis=0)
    once = math.log(1.0 / counts.sum())  # log relative frequency of a token seen once
    unseen_predicted = seen_probe.predicted[~seen]
    return {
        "e_hash": embedding_hash(E),
        "heldout_text": activations.describe(),
        "freq_r2": seen_probe.r2,
        "freq_spearman": seen_probe.spearman,
        "freq_r2_all_tokens": all_probe.r2,
        "encoding_r2": encoding.r2,
        "encoding_spearman": encoding.spearman,
        "heldout_loss": heldout_loss(activations.hidden, activations.token_ids, activations.head),
        "e_norm_seen": float(np.linalg.norm(E_np[seen], axis=1).mean()),
        "e_norm_unseen": float(np.linalg.norm(E_np[~seen], axis=1).mean()) if (~seen).any() else float("nan"),
        # rows measured from the mean row of all of E, which the softmax ignores (see centred_distance)
        "shared_unseen": collapse(centred[~seen]),
        "shared_once": collapse(centred[counts == 1]),
        "shared_frequent": collapse(centred[counts >= 100]),
        "spread_unseen": spread(E_np[~seen]),
        "spread_once": spread(E_np[counts == 1]),
        "offset_unseen": float(np.linalg.norm(centred[~seen].mean(0))) if (~seen).any() else float("nan"),
        "unseen_below_once": float(np.mean(unseen_predicted < once)) if unseen_predicted.size else float("nan"),
        "unseen_predicted_median": float(np.median(unseen_predicted)) if unseen_predicted.size else float("nan"),
        "once_predicted_median": float(np.median(seen_probe.predicted[counts == 1])) if (counts == 1).any()
        else float("nan"),
    }


def _ref_fingerprint(ref: CheckpointRef) -> str:
    folder = Path(ref.name_or_path)
    if folder.is_dir():
        weights = folder / "model.safetensors"
        stat = weights.stat() if weights.exists() else None
        return f"{folder.resolve()}:{stat.st_size if stat else 0}:{stat.st_mtime_ns if stat else 0}"
    return f"hub:{ref.name_or_path}@{ref.revision}"


def probe_checkpoints(
    refs: Sequence[CheckpointRef],
    count_text: str,
    settings: ProbeSettings = ProbeSettings(),
    *,
    use_cache: bool = True,
    progress: bool = True,
):
    """Probe every checkpoint; one row per checkpoint that could be loaded, as a ``pandas.DataFrame``.

    Columns: ``step``, ``label``, ``revision``, the numbers of :func:`probe_checkpoint`, and
    ``e_distance`` / ``param_distance``: Frobenius distance of ``E`` / of all parameters to the last checkpoint of
    ``refs``, as a fraction of the first checkpoint's distance; ``e_centred_distance``: the same for ``E`` minus its
    mean row (the part the softmax sees: adding one vector to every row leaves every output distribution unchanged);
    ``e_mean_row_norm``: the norm of that mean row; ``duplicate_of``: the label of an earlier checkpoint with a
    bit-identical ``E`` (or ``""``); ``heldout_text``: :meth:`utils.activations.Activations.describe` of the held-out
    pass.  ``attrs["unavailable"]`` maps labels that could not be loaded to why.

    Args:
        refs: checkpoints in step order; the last one is "final".
        count_text: the training text; token counts are taken under each checkpoint's tokenizer.
    """
    import pandas as pd

    if len(refs) < 2:
        raise ValueError(f"need at least two checkpoints to probe dynamics; got {len(refs)}")
    steps = [ref.step for ref in refs]
    if steps != sorted(steps):
        raise ValueError(f"checkpoints must be in step order; got steps {steps}")
    key_payload = {"refs": [_ref_fingerprint(ref) for ref in refs], "settings": asdict(settings),
                   "text_sha": hashlib.sha256(count_text.encode()).hexdigest()[:16], "code_version": PROBE_VERSION}
    key = cache.key_of(key_payload)
    path = cache.path_of("dynamics/probes", key, ".json")
    saved = cache.read(path, cache.load_json, lambda saved: saved.get("key") == key and "rows" in saved
                       and "unavailable" in saved) if use_cache else None
    if saved is not None:
        frame = pd.DataFrame(saved["rows"])
        frame.attrs["unavailable"] = saved["unavailable"]
        return frame

    offline = any(is_hub_ref(ref) for ref in refs) and not hub_reachable()
    final, reason = try_load_checkpoint(refs[-1], offline=offline)
    if final is None:
        raise CheckpointUnavailableError(f"the final checkpoint {refs[-1].label} cannot be loaded: {reason}")
    from .head import output_head

    final_E = output_head(final.model).E
    final_params = _flat_parameters(final.model)
    del final
    counts_by_tokenizer: dict[str, np.ndarray] = {}
    rows, unavailable = [], {}
    for ref in tqdm(refs, desc="probe checkpoints", unit="ckpt", disable=not progress):
        loaded, reason = try_load_checkpoint(ref, offline=offline)
        if loaded is None:
            unavailable[ref.label] = reason
            continue
        E = output_head(loaded.model).E
        fingerprint = f"{tokenizer_fingerprint(loaded.tokenizer)}:{E.shape[0]}"
        if fingerprint not in counts_by_tokenizer:
            counts_by_tokenizer[fingerprint] = token_counts(encode_text(loaded.tokenizer, count_text), E.shape[0])
        row = {"step": ref.step, "label": ref.label, "revision": ref.revision or ""}
        row.update(probe_checkpoint(loaded, counts_by_tokenizer[fingerprint], settings))
        params = _flat_parameters(loaded.model)
        if params.keys() != final_params.keys() or E.shape != final_E.shape:
            raise ValueError(f"{ref.label} has a different architecture from the final checkpoint {refs[-1].label}")
        row["e_distance_abs"] = float(torch.linalg.norm(E - final_E))
        row["e_centred_distance_abs"] = centred_distance(E, final_E)
        row["e_mean_row_norm"] = float(torch.linalg.norm(E.mean(0)))
        row["param_distance_abs"] = math.sqrt(sum(float(torch.sum((params[name] - final_params[name]) ** 2))
                                                  for name in params))
        rows.append(row)
        del loaded, params
    if len(rows) == 0:
        raise CheckpointUnavailableError(f"none of the checkpoints could be loaded: {unavailable}")
    duplicates = duplicate_checkpoints([(row["label"], row["e_hash"]) for row in rows])
    for row in rows:
        row["duplicate_of"] = duplicates.get(row["label"], "")
        for name in ("e_distance", "e_centred_distance", "param_distance"):
            first = rows[0][f"{name}_abs"]
            row[name] = row[f"{name}_abs"] / first if first > 0 else float("nan")
    path.parent.mkdir(parents=True, exist_ok=True)
    cache.write(path, cache.save_json({"key": key, "rows": rows, "unavailable": unavailable}))
    frame = pd.DataFrame(rows)
    frame.attrs["unavailable"] = unavailable
    return frame


def first_step_reaching(steps: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The first step whose value is at least ``threshold`` and stays at least ``threshold`` at every later
    checkpoint; None if the last value is below it."""
    steps, values = list(steps), list(values)
    if len(steps) != len(values):
        raise ValueError(f"steps ({len(steps)}) and values ({len(values)}) differ in length")
    reached = None
    for step, value in zip(steps, values):
        if value >= threshold:
            if reached is None:
                reached = step
        else:
            reached = None
    return reached



def value_text(value: Any, fmt: str, missing: str = "not reached") -> str:
    """``format(value, fmt)``, or ``missing`` for None or NaN (a milestone the run never reached)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, fmt)


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


# ----------------------------------------------------------------------------------------------------------------
# The scorecard's checks, with intervals over the probe's held-out tokens


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
    settings: ProbeSettings = ProbeSettings(),
    r2_threshold: float = 0.5,
    final_fraction: float = 0.9,
    e_left_threshold: float = 0.5,
    n_boot: int = 200,
    boot_seed: int = 0,
) -> list:
    """The scorecard's checks of "frequency is encoded in the output embedding early", with intervals over tokens.

    Checks (:class:`utils.uncertainty.Check`) on one probed run (``frame`` from :func:`probe_checkpoints`):

    - encoded: the frequency probe's held-out R² at the final checkpoint is at least ``r2_threshold``;
    - early: when the R² first stays at or above ``final_fraction`` of its final value, the output embedding is
      still at least ``e_left_threshold`` of its initial distance away from its final value (``e_distance``; a run
      whose final R² is not positive counts as reaching it only at the end, distance 0).

    Intervals resample the probe's held-out tokens (:func:`probe_r2_bootstrap`), not texts. The probe's target is
    the count of each token over the *whole* training text, the text the model learned from: no sample of text is
    involved, and recounting a resampled corpus against a model trained on the original one would measure their
    mismatch, not uncertainty. The first interval is the percentile interval of the final R²; the second is that of
    ``e_distance`` at each sample's own first step (the distances are fixed properties of the checkpoints). What
    these intervals cannot cover is the variation between training runs (other seeds, other texts).

    Args:
        frame: the probes of one run; duplicates (``duplicate_of``) are dropped as in :func:`summarize_dynamics`.
        embeddings: (V, d) output embeddings of the frame's distinct checkpoints, in step order.
        counts: (V,) training-corpus token counts.
    """
    from .uncertainty import Check, percentile_interval

    check_float("e_left_threshold", e_left_threshold, low=0.0, high=1.0)
    summary = summarize_dynamics(frame, r2_threshold, final_fraction)
    distinct = frame[frame["duplicate_of"] == ""].reset_index(drop=True)
    if len(embeddings) != len(distinct):
        raise ValueError(f"embeddings holds {len(embeddings)} checkpoints; the frame has {len(distinct)} distinct ones")
    samples = probe_r2_bootstrap(embeddings, counts, test_fraction=settings.test_fraction, seed=settings.seed,
                                 n_boot=n_boot, boot_seed=boot_seed)
    steps = distinct["step"].tolist()
    e_distance = dict(zip(steps, distinct["e_distance"].to_numpy(dtype=np.float64)))
    e_left_samples = []
    for curve in samples:
        step = first_step_reaching(steps, curve, final_fraction * curve[-1]) if curve[-1] > 0 else None
        e_left_samples.append(e_distance[step] if step is not None else 0.0)
    e_left = summary["e_distance_at_first_step_fraction"]
    e_left = 0.0 if math.isnan(e_left) else e_left
    return [
        Check("encoded: held-out R² of the frequency probe at the final checkpoint", summary["final_freq_r2"],
              percentile_interval(samples[:, -1], estimate=summary["final_freq_r2"], unit="token"), r2_threshold,
              "above", ".2f"),
        Check(f"early: ||E - E_final|| (share of its initial value) when the R² first stays at or above "
              f"{final_fraction:.0%} of its final value", e_left,
              percentile_interval(e_left_samples, estimate=e_left, unit="token"),
              e_left_threshold, "above", ".0%"),
    ]


def checkpoint_embeddings(frame: Any, refs: Sequence[CheckpointRef]) -> list[np.ndarray]:
    """(V, d) output embeddings of the frame's distinct checkpoints, in step order, loaded from their refs."""
    from .head import output_head

    by_label = {ref.label: ref for ref in refs}
    distinct = frame[frame["duplicate_of"] == ""]
    missing = [label for label in distinct["label"] if label not in by_label]
    if missing:
        raise ValueError(f"refs lack the checkpoints {missing} of the frame")
    return [output_head(load_checkpoint(by_label[label]).model).E.numpy() for label in distinct["label"]]


COUNT_GROUPS: tuple[tuple[str, int, float], ...] = (
    ("unseen", 0, 0),
    ("1", 1, 1),
    ("2-9", 2, 9),
    ("10-99", 10, 99),
    ("100-999", 100, 999),
    ("1000+", 1000, math.inf),
)


def predictions_by_count(E: torch.Tensor | np.ndarray, counts: np.ndarray, **probe_kwargs: Any):
    """Where the frequency probe (fitted on seen tokens) places tokens, grouped by their training count.

    Returns:
        a ``pandas.DataFrame`` with one row per token: ``token``, ``count``, ``group`` (see :data:`COUNT_GROUPS`),
        ``predicted`` log relative frequency, ``actual`` log relative frequency (-inf when unseen).
    """
    import pandas as pd

    probe = frequency_probe(E, counts, **probe_kwargs)
    counts = np.asarray(counts)
    group = np.empty(len(counts), dtype=object)
    for name, low, high in COUNT_GROUPS:
        group[(counts >= low) & (counts <= high)] = name
    return pd.DataFrame({"token": np.arange(len(counts)), "count": counts, "group": group,
                         "predicted": probe.predicted, "actual": probe.target})


# ----------------------------------------------------------------------------------------------------------------
# Figures


def _step_axis(ax: Any, max_step: int) -> None:
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, max_step * 1.05)
    ax.set_xlabel("training step (symmetric log scale; 0 = initialisation)")


def plot_losses(runs: Mapping[str, TrainingRun], frames: Mapping[str, Any], smooth: int = 16):
    """Training loss (running mean over ``smooth`` steps) and held-out loss at every checkpoint, per size."""
    import matplotlib.pyplot as plt

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
    _step_axis(ax, max(run.final_step for run in runs.values()))
    ax.set_ylabel("next-token loss (nats)")
    ax.legend()
    return fig


def plot_probes(frames: Mapping[str, Any]):
    """Frequency probe (held-out R², Spearman) and the log-linear encoding's held-out R², per size."""
    import matplotlib.pyplot as plt

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
        _step_axis(ax, max_step)
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
    import matplotlib.pyplot as plt

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
        _step_axis(ax, int(frame["step"].max()))
        ax.set_title(size)
    axes[0][0].set_ylabel("fraction")
    axes[0][0].legend(loc="center left")
    return fig


def plot_unseen(frames: Mapping[str, Any], groups: Any, size: str):
    """Left: the share of a token group's (centred) output-embedding norm that is one shared offset, for tokens never
    seen in training, seen once, and seen at least 100 times.  Right: where the frequency probe of ``size``'s final
    checkpoint places tokens, grouped by training count."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for index, (name, frame) in enumerate(frames.items()):
        color = f"C{index}"
        axes[0].plot(frame["step"], frame["shared_unseen"], "o-", color=color, ms=4, label=f"{name}: unseen")
        axes[0].plot(frame["step"], frame["shared_once"], "s--", color=color, ms=3, label=f"{name}: seen once")
        axes[0].plot(frame["step"], frame["shared_frequent"], "^:", color=color, ms=3,
                     label=f"{name}: seen ≥ 100 times")
    _step_axis(axes[0], max(int(frame["step"].max()) for frame in frames.values()))
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
    import textwrap

    import matplotlib.pyplot as plt

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
    _step_axis(ax, int(frame["step"].max()))
    ax.set_ylabel("fraction / score")
    ax.set_title(model + (" (red: checkpoints identical to an earlier one)" if len(duplicates) else ""))
    ax.legend()
    return fig
