"""Training small GPT-NeoX models from scratch, deterministically and resumably, with checkpoints on disk.

Training is deterministic from the seed (weights initialised under ``torch.manual_seed(seed)``, batches drawn from
per-epoch permutations of non-overlapping windows seeded by ``(seed, epoch)``, no dropout) and resumable: each
checkpoint folder is written atomically with ``save_pretrained`` and never changed afterwards; the optimizer state,
RNG state and training losses of the newest checkpoint live in one ``resume.pt`` file next to the checkpoints.
Checkpoints are saved on a Pythia-like grid of steps (0, 1, 2, 4, ..., 512, then evenly to the end).

Where and in what precision a run trains is a :class:`utils.compute.Compute` (resolved once by
:func:`utils.compute.resolve_compute`, which measures whether bf16 pays and falls back to float32 when it does not).
Under bfloat16 only the model body's forward pass runs under ``Compute.autocast()``; the master weights, the
optimizer state, the output layer's product and its loss reduction, and the saved checkpoints stay float32. The
precision and device are part of the run's key only when they differ from float32 on the CPU, so float32 CPU runs
keep the keys (and the cached checkpoints) they had before precision was a setting.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from tqdm.auto import tqdm
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from .. import budget, cache
from ..compute import CPU_FLOAT32, Compute, scratch_block
from ..encoding.fit import token_counts
from ..paths import cache_dir
from ..validation import check_choice, check_float, check_int, check_positive_int
from .checkpoints import CheckpointRef

# bump whenever training changes in a way that changes results, so old caches are not reused (it is part of
# run_key and of the seen-count cache key of utils.dynamics.control)
TRAINING_VERSION = "3"  # 2: the streamed loss takes one exp per logit; 3: it takes a whole batch per chunk

ARCHITECTURES: tuple[str, ...] = ("gpt_neox",)
LOG_GRID_END = 512  # checkpoints at 0, 1, 2, 4, ..., 512 (as Pythia), then evenly spaced


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
        total = torch.zeros((), dtype=torch.float64, device=h.device)
        buffer = scratch_block("loss logits", min(chunk_size, n), W.shape[0], h.dtype, h.device)  # (chunk, V)
        for start in range(0, n, chunk_size):
            h_chunk = h[start : start + chunk_size]
            t_chunk = targets[start : start + chunk_size]
            rows = torch.arange(len(t_chunk), device=h.device)
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
        return grad_h.mul_(scale), grad_W.mul_(scale), None, None  # in place: the backward runs once


def linear_cross_entropy(
    h: torch.Tensor, W: torch.Tensor, targets: torch.Tensor, chunk_size: int = 512
) -> torch.Tensor:
    """Mean next-token loss of logits ``h @ W.T``: h (N, d), W (V, d), targets (N,) int64 -> scalar, all on one device.

    Equal to ``cross_entropy(h @ W.T, targets)`` (and so to the model's own loss), with the same gradients, but
    streamed over chunks of ``chunk_size`` positions, which is faster on a CPU for V = 50,257
    (``benchmarks/bench_dynamics.py`` measures both). The default of 512 takes the chapter's whole batch (8 windows
    of 63 predicted positions) in one chunk, a (504, V) float32 block of 101 MB: about twice as fast on a 2-core CPU as
    chunks of 64 positions, whose skinny products waste the matrix units. The chunking changes only the order of
    the float32 sums of ``grad_W``, hence the last bits of the weights, so it is part of ``TRAINING_VERSION``.
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


def training_schedule(config: TrainingConfig, token_ids: np.ndarray) -> WindowSchedule:
    """The :class:`WindowSchedule` :func:`train_run` draws its batches from, rebuilt without training.

    ``token_ids`` is the encoded training text, ``encode_text(tokenizer, text)`` as :func:`train_run` encodes it;
    the schedule is built with the same arguments as there, so ``training_schedule(config, ids).batch(step)`` is the
    (batch_size, n_ctx) batch that step ``step`` trained on (tested against the batches a run draws).
    """
    return WindowSchedule(np.asarray(token_ids, dtype=np.int64), config.shape.n_ctx, config.batch_size, config.seed)



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
        compute: the device and precision it trained in (part of its key unless float32 on the CPU).
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
    compute: Compute = CPU_FLOAT32

    @property
    def final_step(self) -> int:
        return max(self.checkpoints)

    def refs(self) -> list[CheckpointRef]:
        """One :class:`~utils.dynamics.checkpoints.CheckpointRef` per checkpoint, in step order."""
        return [
            CheckpointRef(step=step, name_or_path=str(path), revision=None, label=f"{self.config.size} step {step}")
            for step, path in sorted(self.checkpoints.items())
        ]


def compute_key(compute: Compute) -> dict[str, str]:
    """What of ``compute`` enters a run's key: the precision used when it is bfloat16, the device type when it is
    not the CPU; nothing for float32 on the CPU (the runs trained before these were settings)."""
    if not isinstance(compute, Compute):
        raise TypeError(f"compute={compute!r} must be a utils.compute.Compute (see utils.compute.resolve_compute)")
    fields = {"precision": compute.precision} if compute.precision != "float32" else {}
    if compute.device.type != "cpu":
        fields["device"] = compute.device.type
    return fields


def run_key(config: TrainingConfig, text_sha: str, tokenizer_sha: str, compute: Compute = CPU_FLOAT32) -> str:
    """The run folder's name: a hash of everything that determines the weights (see :func:`compute_key`)."""
    payload = {
        "config": asdict(config),
        "shape": asdict(config.shape),
        "text_sha": text_sha,
        "tokenizer": tokenizer_sha,
        "code_version": TRAINING_VERSION,
        "torch": torch.__version__.split("+")[0],
        **compute_key(compute),
    }
    return f"{config.architecture}-{config.size}-{cache.key_of(payload)[:16]}"


def _step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / f"step{step}"


def _is_checkpoint(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def _run_tokenizer(run_dir: Path, tokenizer: PreTrainedTokenizerBase) -> Path:
    """The run's one saved copy of its tokenizer (``run_dir/tokenizer``), written atomically on first use; the run's
    key includes the tokenizer's fingerprint, so one copy serves every checkpoint."""
    shared = run_dir / "tokenizer"
    if not (shared / "tokenizer_config.json").is_file():
        staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=".tokenizer."))
        tokenizer.save_pretrained(staging)
        if shared.exists():
            shutil.rmtree(shared)
        os.replace(staging, shared)
    return shared


def _save_checkpoint(run_dir: Path, step: int, model: GPTNeoXForCausalLM, tokenizer: PreTrainedTokenizerBase) -> Path:
    """``save_pretrained`` the model into a temporary folder, add the run's tokenizer files as hard links to its one
    copy (a copy where the file system has no links: 3.5 MB a checkpoint), then move the folder into place. Each
    checkpoint stays a loadable ``save_pretrained`` folder."""
    target = _step_dir(run_dir, step)
    staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=f".step{step}."))
    bars_were_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one bar per save would drown the training bar
    try:
        model.save_pretrained(staging)
        for source in _run_tokenizer(run_dir, tokenizer).iterdir():
            try:
                os.link(source, staging / source.name)
            except OSError:
                shutil.copy2(source, staging / source.name)
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
    compute: Compute = CPU_FLOAT32,
    root: Path | None = None,
    stop_after: int | None = None,
    loss_chunk_size: int = 512,
    progress: bool = True,
) -> TrainingRun:
    """Train (or reuse, or resume) the run determined by ``config``, ``text`` and ``tokenizer``.

    Checkpoints land in ``root/<run_key>/step<N>`` (``root`` defaults to ``cache_dir()/"dynamics"``).  A run whose
    checkpoints are all on disk is returned without training; an interrupted run resumes from its newest complete
    checkpoint and gives bit-identical weights to an uninterrupted one.

    Args:
        text: the training text (the train splits of the corpora).
        compute: the device and precision to train in (``utils.compute.resolve_compute(device, precision)``);
            bfloat16 runs the model body's forward pass under autocast, everything else stays float32.
        stop_after: stop once the checkpoint of this grid step is saved (simulates an interruption; for tests).
        loss_chunk_size: positions per chunk of the streamed output-layer loss (speed, and the last bits of the
            weights: the summation order of its gradient).
    """
    if stop_after is not None:
        check_choice("stop_after", stop_after, config.grid)
    root = Path(root) if root is not None else cache_dir() / "dynamics"
    text_sha = hashlib.sha256(text.encode()).hexdigest()[:16]
    run_dir = root / run_key(config, text_sha, tokenizer_fingerprint(tokenizer), compute)
    run_dir.mkdir(parents=True, exist_ok=True)
    for leftover in [*run_dir.glob(".step*"), *run_dir.glob(".tokenizer*")]:  # staging of an interrupted save
        shutil.rmtree(leftover, ignore_errors=True)
    vocab_size = len(tokenizer)
    token_ids = encode_text(tokenizer, text)
    counts = token_counts(token_ids, vocab_size)
    schedule = training_schedule(config, token_ids)
    meta = {"config": asdict(config), "text_sha": text_sha, "vocab_size": vocab_size,
            "n_train_tokens": int(len(token_ids)), "n_windows": schedule.n_windows, "code_version": TRAINING_VERSION,
            "precision": compute.precision, "device": compute.device.type}
    cache.write(run_dir / "run.json", cache.save_json(meta))
    grid = config.grid
    last = stop_after if stop_after is not None else config.steps

    state = _resume_point(run_dir, grid)
    if state is not None and state["step"] >= last:
        return _collect(run_dir, config, counts, schedule, state, meta, compute)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else vocab_size - 1
    if state is None:
        model = build_model(config, vocab_size, eos).to(compute.device)  # float32 master weights
        optimizer = _optimizer(model, config)
        start, losses, seconds = 0, [], 0.0
        _save_checkpoint(run_dir, 0, model, tokenizer)
        state = _write_resume(run_dir, 0, optimizer, losses, seconds)
    else:
        try:
            model = GPTNeoXForCausalLM.from_pretrained(_step_dir(run_dir, state["step"]), dtype=torch.float32)
            model.to(compute.device)  # before the optimizer state is loaded onto its parameters
        except (OSError, ValueError, RuntimeError, SafetensorError) as error:  # a damaged checkpoint: start again
            print(f"checkpoint step{state['step']} does not load ({type(error).__name__}); training from step 0")
            (run_dir / "resume.pt").unlink()
            return train_run(config, text, tokenizer, compute=compute, root=root, stop_after=stop_after,
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
        batch = schedule.batch(step).to(compute.device)  # (batch_size, n_ctx)
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step)
        with compute.autocast():  # bf16 autocast of the body, or nothing under float32
            hidden = model.gpt_neox(input_ids=batch, use_cache=False).last_hidden_state  # (B, T, d)
        h = hidden[:, :-1].reshape(-1, hidden.shape[-1]).float()  # (B * (T - 1), d): the head and loss in float32
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
            state = _write_resume(run_dir, step + 1, None if step + 1 == config.steps else optimizer, losses,
                                  seconds + time.perf_counter() - began)
    bar.close()
    shape = config.shape
    budget.charge("training", (last - start) * budget.training_flops_per_step(
        model, config.batch_size * shape.n_ctx, config.batch_size * (shape.n_ctx - 1)),
        tokens=(last - start) * config.batch_size * shape.n_ctx, detail=f"{config.size} steps {start}-{last}")
    model.eval()
    return _collect(run_dir, config, counts, schedule, state, meta, compute)


def _write_resume(run_dir: Path, step: int, optimizer: torch.optim.Optimizer | None, losses: list[float],
                  seconds: float) -> dict[str, Any]:
    """Write ``resume.pt``: the step reached, the losses and seconds so far, and, unless ``optimizer`` is None (a
    finished run, which never resumes: its optimizer state would only take twice the weights' room on disk), the
    optimizer and RNG states to resume from."""
    state = {"step": step, "train_loss": list(losses), "train_seconds": seconds}
    if optimizer is not None:
        state |= {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
    cache.write(run_dir / "resume.pt", cache.save_torch(state))
    return state


def _collect(run_dir: Path, config: TrainingConfig, counts: np.ndarray, schedule: WindowSchedule,
             state: Mapping[str, Any], meta: dict[str, Any], compute: Compute) -> TrainingRun:
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
        compute=compute,
    )
