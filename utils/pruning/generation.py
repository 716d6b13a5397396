"""Generation with a real pruned model: sampled continuations and their on-disk cache, MAUVE, text statistics.

The cache key of :func:`sample_continuations` is pinned by a test: changing it silently would orphan the cached texts.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import mauve
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import budget, cache
from ..head import final_hidden_states, output_head, with_output_head
from ..validation import check_choice, check_float, check_int, check_positive_int
from .heads import pruned_output_head

#: bump when generation or its cache format changes
GENERATION_VERSION = "1"



@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run a block with ``num_threads`` intra-op threads (None: leave the setting alone), then restore it.

    Token-by-token generation is a long series of small products: on cores shared with other work every parallel
    region waits for a descheduled thread, so one thread can beat several (timings: ``benchmarks/bench_pruning.py``).
    """
    if num_threads is None:
        yield
        return
    num_threads = check_positive_int("num_threads", num_threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)



def _generation_key(loaded, keep: torch.Tensor | None, prompt_ids: torch.Tensor, settings: dict) -> str:

    return cache.key_of({"model": loaded.identity, "revision": loaded.revision, "version": GENERATION_VERSION,
                         "prompts": cache.fingerprint(prompt_ids.to(torch.int64)),
                         "keep": "full" if keep is None else cache.fingerprint(torch.as_tensor(keep,
                                                                                               dtype=torch.int64)),
                         **settings})



@torch.no_grad()
def sample_continuations(
    loaded,
    prompt_ids: torch.Tensor,
    keep: torch.Tensor | None = None,
    *,
    max_new_tokens: int = 32,
    seed: int = 0,
    top_p: float = 1.0,
    temperature: float = 1.0,
    batch_size: int = 16,
    num_threads: int | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """Sample continuations of each prompt from the full model (``keep=None``) or from a real pruned copy.

    The pruned copy is :func:`utils.head.with_output_head` with :func:`pruned_output_head` (head cloned, input
    embedding untouched).  Sampling is seeded per batch (``seed + batch index``), so two heads sampled with the same
    seed share their random numbers: their texts stay identical until the distributions differ enough to change a
    draw.  Exactly ``max_new_tokens`` tokens are drawn (end-of-sequence is not allowed to stop a row early).
    Results are cached on disk under a key of the model, prompts, kept dimensions and sampling settings.
    ``num_threads`` intra-op threads are used while sampling (see :func:`torch_threads`).

    Args:
        prompt_ids: (B, P) int64 prompts of equal length.
        keep: (k,) kept dimensions, or None for the full head.

    Returns:
        (B, max_new_tokens) int64 sampled token ids.
    """


    max_new_tokens = check_positive_int("max_new_tokens", max_new_tokens)
    seed = check_int("seed", seed, minimum=0)
    check_float("top_p", top_p, low=0.0, high=1.0, low_inclusive=False)
    check_float("temperature", temperature, low=0.0, low_inclusive=False)
    batch_size = check_positive_int("batch_size", batch_size)
    if prompt_ids.ndim != 2 or prompt_ids.shape[1] == 0:
        raise ValueError(f"prompt_ids must be (B, P) with P >= 1; got {tuple(prompt_ids.shape)}")
    if prompt_ids.shape[1] + max_new_tokens > loaded.n_ctx:
        raise ValueError(f"prompt length {prompt_ids.shape[1]} + max_new_tokens={max_new_tokens} exceeds the "
                         f"model's context of {loaded.n_ctx}")
    settings = {"max_new_tokens": max_new_tokens, "seed": seed, "top_p": top_p, "temperature": temperature,
                "batch_size": batch_size, "num_threads": num_threads}
    key = _generation_key(loaded, keep, prompt_ids, settings)
    path = cache.path_of("pruning", f"generation-{key}", ".pt")
    saved = cache.read(path, cache.load_torch, lambda saved: saved["key"] == key and tuple(saved["tokens"].shape)
                       == (prompt_ids.shape[0], max_new_tokens)) if use_cache else None
    if saved is not None:
        return saved["tokens"]
    model = loaded.model if keep is None else with_output_head(loaded.model, pruned_output_head(
        output_head(loaded.model), keep))
    eos = loaded.tokenizer.eos_token_id
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else eos
    pieces = []
    batches = range(0, prompt_ids.shape[0], batch_size)
    with torch_threads(num_threads):
        for index, start in enumerate(tqdm(batches, desc="sampling", unit="batch", disable=not progress)):
            batch = prompt_ids[start : start + batch_size]
            torch.manual_seed(seed + index)
            output = model.generate(
                input_ids=batch, attention_mask=torch.ones_like(batch), do_sample=True, top_k=0, top_p=top_p,
                temperature=temperature, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                pad_token_id=pad, eos_token_id=eos,
            )
            pieces.append(output[:, batch.shape[1] :].to(torch.int64))
    tokens = torch.cat(pieces)
    budget.charge("generation", budget.generation_flops(model, tokens.shape[0], prompt_ids.shape[1], max_new_tokens),
                  tokens=tokens.numel(), detail=f"{loaded.name} sampling")
    if model is not loaded.model:
        del model
    cache.write(path, cache.save_torch({"key": key, "tokens": tokens}))
    return tokens



@torch.no_grad()
def continuation_features(
    loaded,
    prompt_ids: torch.Tensor,
    continuations: torch.Tensor,
    *,
    pooling: str = "mean",
    batch_size: int = 16,
    num_threads: int | None = None,
) -> np.ndarray:
    """Features for MAUVE from the model's own final hidden states over prompt + continuation.

    The body of a pruned model is the full model's, so the features of every head's text come from one featuriser.

    Args:
        prompt_ids: (B, P); continuations: (B, T).
        pooling: ``"mean"`` over the continuation's positions, or ``"last"`` (its last token).

    Returns:
        (B, d) float32 array.
    """

    check_choice("pooling", pooling, ("mean", "last"))
    batch_size = check_positive_int("batch_size", batch_size)
    if prompt_ids.shape[0] != continuations.shape[0]:
        raise ValueError(f"{prompt_ids.shape[0]} prompts but {continuations.shape[0]} continuations")
    ids = torch.cat([prompt_ids, continuations], dim=1)
    start = prompt_ids.shape[1]
    features = []
    with torch_threads(num_threads):
        for first in range(0, ids.shape[0], batch_size):
            hidden = final_hidden_states(loaded.model, ids[first : first + batch_size])[:, start:]
            features.append(hidden.mean(dim=1) if pooling == "mean" else hidden[:, -1])
    budget.charge("pass", budget.body_flops_per_token(loaded.model) * ids.numel(), tokens=ids.numel(),
                  detail=f"{loaded.name} MAUVE features (body only)")
    return torch.cat(features).numpy()



def text_statistics(continuations: torch.Tensor, *, n_values=(1, 2, 3), repetition_n: int = 4) -> dict[str, float]:
    """Diversity and repetition of sampled token sequences (B, T).

    ``distinct-n``: distinct n-grams over all n-grams of all sequences (higher = more diverse).
    ``rep-n``: mean over sequences of 1 - distinct n-grams / n-grams within the sequence (seq-rep-n of Welleck et
    al.; 0 = no n-gram repeats inside a sequence, near 1 = a loop).
    """
    sequences = [row.tolist() for row in continuations]
    stats = {}
    for n in n_values:
        grams = [tuple(s[i : i + n]) for s in sequences for i in range(len(s) - n + 1)]
        stats[f"distinct-{n}"] = len(set(grams)) / len(grams) if grams else float("nan")
    repetition = []
    for s in sequences:
        grams = [tuple(s[i : i + repetition_n]) for i in range(len(s) - repetition_n + 1)]
        if grams:
            repetition.append(1.0 - len(set(grams)) / len(grams))
    stats[f"rep-{repetition_n}"] = float(np.mean(repetition)) if repetition else float("nan")
    return stats



def mauve_score(p_features: np.ndarray, q_features: np.ndarray, *, seed: int = 0, num_buckets="auto") -> float:
    """MAUVE (Pillutla et al.) between two sets of feature vectors (n, d), quantised by k-means (``mauve-text``)."""

    if len(p_features) < 2 or len(q_features) < 2:
        raise ValueError("MAUVE needs at least 2 samples on each side")
    result = mauve.compute_mauve(p_features=np.asarray(p_features, dtype=np.float32),
                                 q_features=np.asarray(q_features, dtype=np.float32),
                                 num_buckets=num_buckets, seed=seed, verbose=False)
    return float(result.mauve)



def generation_study(
    loaded,
    prompt_ids: torch.Tensor,
    conditions: dict,
    *,
    reference_seed: int = 0,
    sample_seed: int = 1,
    max_new_tokens: int = 32,
    top_p: float = 1.0,
    temperature: float = 1.0,
    pooling: str = "mean",
    mauve_seeds=(0, 1, 2),
    batch_size: int = 16,
    num_threads: int | None = None,
    progress: bool = True,
):
    """Sample from the full model and from pruned copies, score the texts with MAUVE and repetition statistics.

    The reference set is the full model sampled with ``reference_seed``; every condition (including the full model
    itself, which gives MAUVE's noise floor at this sample size) is sampled with ``sample_seed`` and compared with
    it.  MAUVE is averaged over k-means seeds ``mauve_seeds`` (its spread is reported).

    Args:
        prompt_ids: (B, P) int64 prompts.
        conditions: {label: dict(criterion=..., fraction=..., keep=(k,) tensor or None for the full head)}.

    Returns:
        (table, continuations): a DataFrame with one row per condition plus ``"reference"`` (criterion, fraction,
        mauve, mauve_spread, distinct-n, rep-4) and {label: (B, T) token ids}.
    """

    if not conditions:
        raise ValueError("conditions must hold at least one condition")
    if not list(mauve_seeds):
        raise ValueError("mauve_seeds must hold at least one seed")
    sampling = {"max_new_tokens": max_new_tokens, "top_p": top_p, "temperature": temperature,
                "batch_size": batch_size, "num_threads": num_threads, "progress": progress}
    continuations = {"reference": sample_continuations(loaded, prompt_ids, None, seed=reference_seed, **sampling)}
    featurise = {"pooling": pooling, "batch_size": batch_size, "num_threads": num_threads}
    reference_features = continuation_features(loaded, prompt_ids, continuations["reference"], **featurise)
    rows = [{"condition": "reference", "criterion": "full", "fraction": 0.0, "mauve": float("nan"),
             "mauve_spread": float("nan"), **text_statistics(continuations["reference"])}]
    for label, condition in conditions.items():
        tokens = sample_continuations(loaded, prompt_ids, condition.get("keep"), seed=sample_seed, **sampling)
        continuations[label] = tokens
        features = continuation_features(loaded, prompt_ids, tokens, **featurise)
        scores = [mauve_score(reference_features, features, seed=s) for s in mauve_seeds]
        rows.append({"condition": label, "criterion": condition.get("criterion", "full"),
                     "fraction": float(condition.get("fraction", 0.0)), "mauve": float(np.mean(scores)),
                     "mauve_spread": float(np.max(scores) - np.min(scores)), **text_statistics(tokens)})
    return pd.DataFrame(rows), continuations


def example_texts(tokenizer, prompt_ids: torch.Tensor, continuations: dict, labels, n_examples: int):
    """The first ``n_examples`` prompts, each followed by every head's continuation of it, decoded on one line.

    Args:
        prompt_ids: (B, P) int64 prompts.
        continuations: {label: (B, T) token ids}, as returned by :func:`generation_study`.
        labels: the heads to show, in order (keys of ``continuations``).

    Returns:
        A DataFrame with columns ``head`` ("prompt" or a label) and ``text`` (special tokens kept, newlines shown as
        spaces), ``1 + len(labels)`` rows per prompt.
    """

    n_examples = check_int("n_examples", n_examples, minimum=0, maximum=len(prompt_ids))
    labels = [check_choice("labels", label, continuations) for label in labels]

    def one_line(token_ids) -> str:
        return tokenizer.decode(token_ids, skip_special_tokens=False).replace("\n", " ")

    rows = []
    for i in range(n_examples):
        rows.append({"head": "prompt", "text": one_line(prompt_ids[i])})
        rows.extend({"head": label, "text": one_line(continuations[label][i])} for label in labels)
    return pd.DataFrame(rows, columns=["head", "text"])



def mauve_buckets(n_texts: int) -> int:
    """The number of k-means clusters ``mauve-text`` quantises features into with ``num_buckets="auto"``:
    ``max(2, round(n_texts / 10))`` (n_texts: the smaller side)."""
    return max(2, int(round(check_positive_int("n_texts", n_texts) / 10)))



def mauve_is_saturated(scores: dict, saturation: float = 0.95) -> bool:
    """Whether every MAUVE score in ``scores`` ({head label: MAUVE}, NaNs ignored; the full model against itself
    included) is at least ``saturation``: then the measure cannot separate the heads at this sample size."""
    saturation = check_float("saturation", saturation, low=0.0, high=1.0)
    values = [float(v) for v in scores.values() if v == v]
    if not values:
        raise ValueError("scores must hold at least one MAUVE value")
    return min(values) >= saturation



def mauve_saturation_text(scores: dict, n_texts: int, saturation: float = 0.95) -> str:
    """Whether MAUVE is saturated, in words, from the scores of every compared head (the full model against itself
    included): saturated when every score is at least ``saturation``.

    Args:
        scores: {head label: MAUVE}; n_texts: texts per side.
    """
    saturation = check_float("saturation", saturation, low=0.0, high=1.0)
    values = {label: float(v) for label, v in scores.items() if v == v}
    if not values:
        raise ValueError("scores must hold at least one MAUVE value")
    low_label = min(values, key=values.get)
    low, high = values[low_label], max(values.values())
    buckets = mauve_buckets(n_texts)
    if mauve_is_saturated(values, saturation):
        return (f"saturated: every head, the full model against itself included, scores between {low:.3f} and "
                f"{high:.3f} (at least {saturation:g}); with {n_texts} texts per side quantised into {buckets} "
                "k-means clusters MAUVE cannot tell these heads apart, so its values are not a finding")
    return (f"not saturated: the scores range from {low:.3f} ({low_label}) to {high:.3f}, below {saturation:g} for "
            f"at least one head; with {n_texts} texts per side ({buckets} k-means clusters) and no interval over "
            "texts, the differences are still exploratory")
