"""One streamed pass of a model over a corpus: the averaged output distribution ``alpha`` and the final hidden states.

The windows are a seeded sample spread over every document of a corpus split (:func:`utils.corpora.sample_windows`).
``alpha_w`` is the probability of token ``w`` averaged over every position of every window (the paper's
``alpha_w`` for dataset D); each window's own sum is kept too, so that a bootstrap over texts
(:mod:`utils.uncertainty`) re-averages alpha without running the model again.  Softmax is taken chunk by chunk
over positions and accumulated in the log domain in
float64 (``log alpha_w = logsumexp_n log p_n(w) - log N``), so rare tokens never underflow to zero and no
(positions × vocabulary) array is held whole.  The hidden states are kept so that every later chapter can rebuild
any head's output distribution without running the model again.

Results are cached on disk under a key of everything that determines them and written atomically; a cache file
that does not load, or whose contents do not match its key, is rebuilt. A pass does not store the output head
(113 MB for the default model): every reader has the model loaded, so the head is taken from it, and the pass keeps
the head's fingerprint, so that a pass made with another head is rebuilt rather than read.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import budget, cache
from .compute import scratch_block
from .corpora import corpus_fingerprint, read_corpus, sample_windows
from .head import OutputHead, final_hidden_states, iter_logits, output_head
from .models import LoadedModel
from .validation import check_int, check_positive_int

# bump whenever the computation below changes, so that old caches are not read back
CODE_VERSION = "3"  # 2: windows sampled over every document; per-window sums kept; 3: the head stored once


@dataclass
class Activations:
    """The cached result of one pass.

    Attributes:
        token_ids: (n_windows, T) int64, the windows fed to the model (seeded random order).
        hidden: (n_windows, T, d) float32, final hidden states after the final norm.
        log_alpha: (V,) float64, log of the mean softmax over all n_windows * T positions.
        window_log_sums: (n_windows, V) float32, log of each window's sum over its T positions of softmax.
        document: (n_windows,) int64, the document of the split each window comes from.
        head: the model's output head at the time of the pass.
        meta: what determined the pass (model, corpus, sizes, sampling, key) and what it covers.
    """

    token_ids: torch.Tensor
    hidden: torch.Tensor
    log_alpha: torch.Tensor
    window_log_sums: torch.Tensor
    document: torch.Tensor
    head: OutputHead
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def alpha(self) -> torch.Tensor:
        """(V,) float64 averaged output distribution."""
        return self.log_alpha.exp()

    @property
    def hidden_flat(self) -> torch.Tensor:
        """(N, d) hidden states of all positions, N = n_windows * T."""
        return self.hidden.reshape(-1, self.hidden.shape[-1])

    @property
    def n_positions(self) -> int:
        return int(self.token_ids.numel())

    def coverage(self) -> dict[str, Any]:
        """What the pass's text D is: documents covered out of the split's, tokens, and share of the vocabulary seen.

        Returns:
            ``corpus``, ``split``, ``documents_covered``, ``documents`` (in the split), ``windows``,
            ``window_length``, ``tokens``, ``split_tokens``, ``vocabulary_seen`` (share of the V tokens that occur
            in the windows) and ``sample_seed``.
        """
        seen = torch.zeros(self.head.V, dtype=torch.bool)
        seen[self.token_ids.reshape(-1)] = True
        return {
            "corpus": self.meta.get("corpus"),
            "split": self.meta.get("split"),
            "documents_covered": int(torch.unique(self.document).numel()),
            "documents": self.meta.get("documents"),
            "windows": int(self.token_ids.shape[0]),
            "window_length": int(self.token_ids.shape[1]),
            "tokens": self.n_positions,
            "split_tokens": self.meta.get("split_tokens"),
            "vocabulary_seen": float(seen.double().mean()),
            "sample_seed": self.meta.get("sample_seed"),
        }

    def describe(self) -> str:
        """One sentence for a chapter's text: the windows, tokens and documents behind this pass."""
        c = self.coverage()
        return (f"{c['windows']:,} windows of {c['window_length']} tokens ({c['tokens']:,} tokens, "
                f"{c['tokens'] / c['split_tokens']:.0%} of the split) drawn from {c['documents_covered']} of the "
                f"{c['documents']} documents of the {c['corpus']} {c['split']} split (sampling seed "
                f"{c['sample_seed']}); {c['vocabulary_seen']:.0%} of the vocabulary occurs in them")


def log_mean_softmax(h: torch.Tensor, head: OutputHead, chunk_size: int = 1024) -> torch.Tensor:
    """log of the mean over positions of softmax(h @ E.T + b): h (N, d) -> (V,) float64.

    Streams over chunks of positions; each chunk's log-softmax is reduced with logsumexp over its positions and
    merged into a float64 accumulator.
    """
    if h.shape[0] == 0:
        raise ValueError("h holds no positions")
    log_total = torch.full((head.V,), -math.inf, dtype=torch.float64)
    for _, logits in iter_logits(h, head, chunk_size):
        chunk_log_probs = torch.log_softmax(logits, dim=-1)
        log_total = torch.logaddexp(log_total, torch.logsumexp(chunk_log_probs, dim=0).to(torch.float64))
    return log_total - math.log(h.shape[0])


def mean_softmax(h: torch.Tensor, head: OutputHead, chunk_size: int = 1024) -> torch.Tensor:
    """Mean over positions of softmax(h @ E.T + b): h (N, d) -> alpha (V,) float64."""
    return log_mean_softmax(h, head, chunk_size).exp()


def activation_key(
    loaded: LoadedModel, corpus: str, split: str, window_length: int, n_tokens: int, sample_seed: int
) -> str:
    """The cache key: a hash of everything that determines a pass, the sampling of its windows included."""
    payload = {
        "model": loaded.identity,
        "revision": loaded.revision,
        "corpus": corpus,
        "split": split,
        "corpus_sha": corpus_fingerprint(corpus, split),
        "window_length": window_length,
        "n_tokens": n_tokens,
        "sample_seed": sample_seed,
        "code_version": CODE_VERSION,
    }
    return cache.key_of(payload)


def _activations_path(key: str) -> Path:
    return cache.path_of("activations", key, ".pt")


def head_fingerprint(head: OutputHead) -> str:
    """The fingerprint of an output head (of ``E`` and ``b``), kept in each cached pass to say which head it saw."""
    return cache.fingerprint(head.E) + ("" if head.b is None else cache.fingerprint(head.b))


def _load(path: Path, head: OutputHead) -> Activations:
    """A cached pass, with ``head`` (the loaded model's own) as its head; a pass saved with another head raises."""
    saved = cache.load_torch(path)
    if saved["head"] != head_fingerprint(head):
        raise ValueError("the cached pass was made with another output head than the loaded model's")
    return Activations(
        token_ids=saved["token_ids"],
        hidden=saved["hidden"],
        log_alpha=saved["log_alpha"],
        window_log_sums=saved["window_log_sums"],
        document=saved["document"],
        head=head,
        meta=json.loads(saved["meta"]),
    )


def _read_cache(path: Path, key: str, head: OutputHead) -> Activations | None:
    """The cached pass, or None when the file is missing, unreadable, made with another head or does not match its
    key."""
    return cache.read(path, lambda target: _load(target, head), lambda activations: _consistent(activations, key))


def _consistent(activations: Activations, key: str) -> bool:
    n_windows, window_length = activations.token_ids.shape
    return (
        activations.meta.get("key") == key
        and activations.hidden.shape[:2] == (n_windows, window_length)
        and activations.hidden.shape[2] == activations.head.d
        and activations.log_alpha.shape == (activations.head.V,)
        and activations.window_log_sums.shape == (n_windows, activations.head.V)
        and activations.document.shape == (n_windows,)
        # float32 log-softmax leaves alpha's sum a few 1e-6 off 1 on real models (7.9e-6 for smollm2-135m)
        and abs(float(activations.alpha.sum()) - 1.0) < 1e-4
    )


def _write_cache(path: Path, activations: Activations) -> None:
    payload = {
        "token_ids": activations.token_ids,
        "hidden": activations.hidden,
        "log_alpha": activations.log_alpha,
        "window_log_sums": activations.window_log_sums,
        "document": activations.document,
        "head": head_fingerprint(activations.head),
        "meta": json.dumps(activations.meta),
    }
    cache.write(path, cache.save_torch(payload))


def window_log_sums(hidden: torch.Tensor, head: OutputHead, chunk_size: int = 1024) -> torch.Tensor:
    """log of each window's sum over its positions of softmax(h @ E.T + b): hidden (n, T, d) -> (n, V) float64.

    Windows are streamed in groups of about ``chunk_size`` positions, so no (positions × V) array is held whole. One
    (group positions, V) block is written and reused in place for the logits, their log-softmax and the per-window
    log-sum-exp (the same operations as ``torch.log_softmax`` and ``torch.logsumexp``, bit for bit, tested), and
    kept for the next call (:func:`utils.compute.scratch_block`): fresh blocks of 200 MB per group would make the
    operating system map and zero new pages several times a group.
    """
    n_windows, window_length, _ = hidden.shape
    per_chunk = max(1, chunk_size // window_length)
    sums = torch.empty((n_windows, head.V), dtype=torch.float64, device=hidden.device)
    E_T = head.E.to(hidden.device).T
    block = scratch_block("pass log-softmax", per_chunk * window_length, head.V, torch.float32, hidden.device)
    for start in range(0, n_windows, per_chunk):
        group = hidden[start : start + per_chunk].reshape(-1, head.d).to(torch.float32)
        logits = torch.mm(group, E_T, out=block[: group.shape[0]])  # (positions, V)
        if head.b is not None:
            logits.add_(head.b.to(hidden.device))
        torch.log_softmax(logits, dim=-1, out=logits)
        log_probs = logits.view(-1, window_length, head.V)  # (windows, T, V)
        peaks = log_probs.amax(dim=1, keepdim=True)  # as torch.logsumexp: an infinite peak counts as 0
        peaks.masked_fill_(peaks.abs() == math.inf, 0.0)
        window_sums = log_probs.sub_(peaks).exp_().sum(dim=1).log_().add_(peaks.squeeze(1))
        sums[start : start + log_probs.shape[0]] = window_sums.to(torch.float64)
    return sums


def run_pass(
    loaded: LoadedModel, token_ids: torch.Tensor, *, batch_size: int = 8, chunk_size: int = 1024, desc: str = "pass"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the model over windows and stream the averaged output distribution.

    The body and the chunked softmax run on ``loaded.compute`` (device and precision); hidden states and sums come
    back to the CPU.

    Args:
        token_ids: (n_windows, T) int64.

    Returns:
        hidden (n_windows, T, d) float32, log_alpha (V,) float64 and window_log_sums (n_windows, V) float32 (each
        window's log of its summed softmax).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    head = output_head(loaded.model).to(loaded.compute.device)  # the chunked softmax runs where the body runs
    n_windows, window_length = token_ids.shape
    hidden = torch.empty((n_windows, window_length, head.d), dtype=torch.float32)
    sums = torch.empty((n_windows, head.V), dtype=torch.float64)
    with tqdm(total=n_windows * window_length, desc=desc, unit="tok") as progress:
        for start in range(0, n_windows, batch_size):
            batch_hidden = final_hidden_states(loaded.model, token_ids[start : start + batch_size],
                                               compute=loaded.compute)
            hidden[start : start + batch_hidden.shape[0]] = batch_hidden.cpu()
            sums[start : start + batch_hidden.shape[0]] = window_log_sums(batch_hidden, head, chunk_size).cpu()
            progress.update(batch_hidden.shape[0] * window_length)
    log_alpha = torch.logsumexp(sums, dim=0) - math.log(n_windows * window_length)
    budget.charge("pass", budget.forward_flops_per_token(loaded.model) * n_windows * window_length,
                  tokens=n_windows * window_length, detail=f"{loaded.name} {desc}")
    return hidden, log_alpha, sums.to(torch.float32)


def compute_activations(
    loaded: LoadedModel,
    corpus: str,
    split: str = "train",
    *,
    window_length: int = 128,
    n_tokens: int,
    sample_seed: int = 0,
    batch_size: int = 8,
    use_cache: bool = True,
    store: bool = True,
) -> Activations:
    """The pass of ``loaded`` over ``n_tokens // window_length`` windows drawn across every document of a corpus split.

    The windows are :func:`utils.corpora.sample_windows` with ``sample_seed``. Cached under a key of (model
    identity, revision, corpus, split, corpus bytes, window_length, n_tokens, sample_seed, code version);
    ``batch_size`` only changes speed. ``n_tokens`` has no default: the chapters share caches only when
    they ask for the same size (32,768 train tokens, 8,192 per test split), so every call states it.
    ``use_cache=False`` ignores a cached pass; ``store=False`` does not write the pass to the cache (for small passes
    whose results are cached elsewhere: chapter 4's per-checkpoint probes).

    Raises:
        ValueError: a size is not positive, the window is longer than the model's context, the seed is not a
            non-negative integer, or the split holds fewer windows than asked for.
    """
    check_int("window_length", window_length, minimum=1, maximum=loaded.n_ctx)
    check_positive_int("n_tokens", n_tokens)
    check_int("sample_seed", sample_seed, minimum=0)
    key = activation_key(loaded, corpus, split, window_length, n_tokens, sample_seed)
    path = _activations_path(key)
    if use_cache:
        cached = _read_cache(path, key, output_head(loaded.model))
        if cached is not None:
            return cached
    try:
        sample = sample_windows(loaded.tokenizer, read_corpus(corpus, split), window_length, n_tokens, sample_seed)
    except ValueError as error:
        raise ValueError(f"{corpus}/{split}: {error}") from None
    hidden, log_alpha, sums = run_pass(loaded, sample.token_ids, batch_size=batch_size, desc=f"{corpus}/{split}")
    meta = {
        "key": key,
        "model": loaded.name,
        "model_identity": loaded.identity,
        "revision": loaded.revision,
        "corpus": corpus,
        "split": split,
        "window_length": window_length,
        "n_tokens": n_tokens,
        "n_positions": int(sample.token_ids.numel()),
        "sample_seed": sample_seed,
        "precision": loaded.compute.precision,
        "documents": sample.n_documents,
        "split_tokens": sample.split_tokens,
        "code_version": CODE_VERSION,
    }
    activations = Activations(sample.token_ids, hidden, log_alpha, sums, sample.document, output_head(loaded.model),
                              meta)
    if store:
        _write_cache(path, activations)
    return activations


@torch.no_grad()
def position_entropy(h: torch.Tensor, head: OutputHead, chunk_size: int = 1024) -> torch.Tensor:
    """Entropy (nats) of each position's output distribution: h (N, d) -> (N,) float64."""
    entropies = torch.empty(h.shape[0], dtype=torch.float64)
    for start, logits in iter_logits(h, head, chunk_size):
        log_probs = torch.log_softmax(logits, dim=-1)
        entropies[start : start + logits.shape[0]] = -(log_probs.exp() * log_probs).sum(-1).double()
    return entropies
