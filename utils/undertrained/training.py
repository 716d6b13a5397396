"""Under-trained tokens through training (chapter 6): chapter 4's checkpoints, tokens training never showed, and
whether training creates or removes unargmaxable tokens.

Chapter 4 records its last checkpoint folders in its results (``final_checkpoints``); every checkpoint of a run
lies next to the last one (``<run>/step<N>``), and the run's ``run.json`` holds the fingerprint of its training
text, which :func:`training_counts` checks before counting tokens.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..argmax.verdicts import find_unargmaxable
from ..corpora import read_corpus
from ..dynamics.parameters import DynamicsParameters
from ..dynamics.training import encode_text, run_key, tokenizer_fingerprint
from ..encoding.fit import token_counts
from ..head import output_head
from ..parameters import literal_defaults
from ..paths import cache_dir
from ..tokenizers import gpt2_tokenizer
from ..validation import check_int, check_positive_int
from .geometry import duplicate_rows
from .indicators import magikarp_distance, unused_reference

if TYPE_CHECKING:
    pass


STAGES = ("initialisation", "early", "end")


def chapter4_results(folders: Sequence[Path]) -> dict[str, Any] | None:
    """Chapter 4's results from the first of ``folders`` that holds ``04_dynamics.json`` (None when none does)."""
    for folder in folders:
        path = Path(folder) / "04_dynamics.json"
        if path.exists():
            return json.loads(path.read_text())
    return None


def locate_trained_runs(folders: Sequence[Path]) -> tuple[dict[str, Path], list[str], str] | None:
    """Chapter 4's trained runs: (size -> last checkpoint folder, the training corpora, where they were found).

    First chapter 4's results in ``folders`` (``final_checkpoints``, when its folders exist), else the runs of
    chapter 4's default parameters when they are complete in the cache (never trains). None when neither is there.
    """
    results = chapter4_results(folders)
    if results is not None:
        finals = (results.get("final_checkpoints") or {}).get("value") or {}
        corpora = results.get("_run", {}).get("parameters", {}).get("train_corpora")
        finals = {size: Path(folder) for size, folder in finals.items()}
        if finals and corpora and all((folder / "model.safetensors").is_file() for folder in finals.values()):
            return finals, list(corpora), "chapter 4's results of this build"

    defaults = DynamicsParameters.from_namespace(literal_defaults("04_dynamics"))
    text = "\n".join(read_corpus(name, "train") for name in defaults.train_corpora)
    sha, tokenizer = hashlib.sha256(text.encode()).hexdigest()[:16], tokenizer_fingerprint(gpt2_tokenizer())
    finals = {size: cache_dir() / "dynamics" / run_key(config, sha, tokenizer) / f"step{config.steps}"
              for size, config in defaults.configs.items()}
    if all((folder / "model.safetensors").is_file() for folder in finals.values()):
        return finals, list(defaults.train_corpora), "the cached runs of chapter 4's default parameters"
    return None


def run_checkpoints(final_folder: str | Path) -> dict[int, Path]:
    """Every checkpoint of the run whose last checkpoint is ``final_folder``: step -> folder, in step order."""
    run_dir = Path(final_folder).parent
    steps = {}
    for folder in run_dir.glob("step*"):
        if folder.name[4:].isdigit() and (folder / "model.safetensors").is_file():
            steps[int(folder.name[4:])] = folder
    if not steps:
        raise ValueError(f"no checkpoint (step<N>/model.safetensors) next to {final_folder}")
    return dict(sorted(steps.items()))


def pick_stages(steps: Sequence[int], early_step: int) -> dict[str, int]:
    """The checkpoints read as initialisation (the first), end (the last) and early (the step nearest
    ``early_step`` strictly between them; the last when there is none between)."""
    early_step = check_int("early_step", early_step, minimum=1)
    steps = sorted(int(s) for s in steps)
    if not steps:
        raise ValueError("steps must hold at least one checkpoint step")
    between = steps[1:-1]
    early = min(between, key=lambda s: (abs(s - early_step), s)) if between else steps[-1]
    return {"initialisation": steps[0], "early": early, "end": steps[-1]}


def checkpoint_head(folder: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The output head of a saved checkpoint: E (V, d) float32 and b (V,) or None."""


    model = AutoModelForCausalLM.from_pretrained(Path(folder), dtype=torch.float32)
    head = output_head(model)
    return head.E.numpy(), None if head.b is None else head.b.numpy()


def checkpoint_tokenizer(folder: str | Path) -> Any:
    """The tokenizer saved with a checkpoint."""

    return AutoTokenizer.from_pretrained(Path(folder))


def training_counts(final_folder: str | Path, train_corpora: Sequence[str]) -> np.ndarray:
    """(V,) int64 count of every token in the run's training text (the train splits of ``train_corpora``, joined
    as chapter 4 joins them). Raises ``ValueError`` when that text is not the one the run recorded."""

    run = json.loads((Path(final_folder).parent / "run.json").read_text())
    text = "\n".join(read_corpus(name, "train") for name in train_corpora)
    sha = hashlib.sha256(text.encode()).hexdigest()[:16]
    if sha != run["text_sha"]:
        raise ValueError(f"train_corpora={list(train_corpora)} do not give the text of run {Path(final_folder).parent}"
                         f" (fingerprint {sha}, the run recorded {run['text_sha']})")
    return token_counts(encode_text(checkpoint_tokenizer(final_folder), text), int(run["vocab_size"]))


def seen_unseen_sample(counts: np.ndarray, n: int, seed: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """A seeded sample of at most ``n`` tokens, half never seen in training (count 0) and half seen, as far as
    each group allows (the other group fills the rest): -> sorted int64 token ids (``exclude`` left out)."""
    n = check_positive_int("n", n)
    counts = np.asarray(counts)
    rng = np.random.default_rng(seed)
    pool = np.arange(len(counts))
    if exclude is not None:
        pool = pool[~np.isin(pool, exclude)]
    unseen, seen = pool[counts[pool] == 0], pool[counts[pool] > 0]
    n_unseen = min(len(unseen), max(n // 2, n - len(seen)))
    n_seen = min(len(seen), n - n_unseen)
    picked = np.concatenate([rng.choice(unseen, n_unseen, replace=False), rng.choice(seen, n_seen, replace=False)])
    return np.sort(picked.astype(np.int64))


def reachability_frame(verdicts_by_stage: dict[str, Any], counts: np.ndarray):
    """One row per (stage, group): tokens tested, unargmaxable and duplicate, and the mean reflections the fast test
    needed, for tokens never seen in training and tokens seen. ``verdicts_by_stage``: stage -> Verdicts."""

    rows = []
    for stage, verdicts in verdicts_by_stage.items():
        seen = np.asarray(counts)[verdicts.tokens] > 0
        for group, mask in (("unseen", ~seen), ("seen", seen)):
            steps = verdicts.braid_steps[mask & (verdicts.braid_steps >= 0)]
            rows.append({"stage": stage, "group": group, "tested": int(mask.sum()),
                         "unargmaxable": int((verdicts.status[mask] == "unargmaxable").sum()),
                         "duplicate": int((verdicts.status[mask] == "duplicate").sum()),
                         "mean_braid_steps": float(steps.mean()) if steps.size else float("nan")})
    return pd.DataFrame(rows)


def created_removed(first: Any, last: Any) -> dict[str, int]:
    """Tokens tested in both: how many became unargmaxable (or duplicate) between ``first`` and ``last`` verdicts
    ("created"), how many stopped being so ("removed"), how many were tested, and the head's vocabulary ("V")."""
    if not np.array_equal(first.tokens, last.tokens):
        raise ValueError("first and last must be verdicts of the same tokens")
    lost_before = first.status != "argmaxable"
    lost_after = last.status != "argmaxable"
    return {"created": int((lost_after & ~lost_before).sum()), "removed": int((lost_before & ~lost_after).sum()),
            "tested": len(first.tokens), "V": int(last.meta["V"])}


def unseen_recovery(distance: np.ndarray, counts: np.ndarray, reference: np.ndarray, k: int) -> dict[str, float]:
    """How well closeness to the unused mean finds the tokens training never showed (the reference tokens left
    out): precision of the ``k`` closest rows, the share of unseen tokens among all (the base rate), and the
    probability that a random unseen token is closer than a random seen one (ROC AUC)."""

    keep = np.setdiff1d(np.arange(len(counts)), reference)
    k = check_int("k", k, minimum=1, maximum=len(keep))
    unseen = np.asarray(counts)[keep] == 0
    closeness = -np.asarray(distance, float)[keep]
    order = np.lexsort((keep, -closeness))[:k]
    if unseen.all() or not unseen.any():
        auc = float("nan")
    else:
        ranks = stats.rankdata(closeness)
        n_u, n_s = int(unseen.sum()), int((~unseen).sum())
        auc = float((ranks[unseen].sum() - n_u * (n_u + 1) / 2) / (n_u * n_s))
    return {"k": k, "precision": float(unseen[order].mean()), "base_rate": float(unseen.mean()), "auc": auc}


def size_reachability(checkpoints: dict[int, Path], counts: np.ndarray, reference: np.ndarray, *, early_step: int,
                      n_tokens: int, seed: int, box: float, patience: int, start: str, k: int):
    """Argmax verdicts of one trained run at initialisation, early and at the end, and how well closeness to the
    unused mean finds the tokens it never saw.

    Args:
        checkpoints: step -> checkpoint folder (:func:`run_checkpoints`).
        counts: (V,) occurrences of every token in the run's training text (:func:`training_counts`).
        reference: the unused reference tokens of the run's tokenizer
            (:func:`utils.undertrained.indicators.unused_reference`).
        n_tokens, seed: the sample of tested tokens (:func:`seen_unseen_sample`).
        box, patience, start: settings of :func:`utils.argmax.verdicts.find_unargmaxable`.
        k: closest rows scored by :func:`unseen_recovery`.

    Returns:
        (:func:`reachability_frame` of the three stages, :func:`created_removed` from initialisation to the end,
        :func:`unseen_recovery` of the last checkpoint's head with "duplicates", the tokens whose row in that float32
        head is identical to another's).
    """

    stages = pick_stages(list(checkpoints), early_step)
    E_end = checkpoint_head(checkpoints[stages["end"]])[0]
    sample = seen_unseen_sample(counts, n_tokens, seed)
    verdicts = {stage: find_unargmaxable(*checkpoint_head(checkpoints[step]), tokens=sample, box=box,
                                         patience=patience, start=start, progress=False)
                for stage, step in stages.items()}
    recovery = {**unseen_recovery(magikarp_distance(E_end, reference), counts, reference, k),
                "duplicates": len(duplicate_rows(E_end))}
    return (reachability_frame(verdicts, counts), created_removed(verdicts["initialisation"], verdicts["end"]),
            recovery)


def reachability(located: tuple[dict[str, Path], list[str], str] | None, *, early_step: int, n_tokens: int,
                 seed: int, box: float, patience: int, start: str, k: int):
    """:func:`size_reachability` for every size of chapter 4's runs (``located``: :func:`locate_trained_runs`, or
    None when there are none).

    Returns:
        (one DataFrame of every size's :func:`reachability_frame` with a ``size`` column, size ->
        :func:`created_removed`, a DataFrame of every size's :func:`unseen_recovery` with a ``size`` column); empty
        when ``located`` is None. The training counts come from the first size's run (all sizes share the text).
    """


    finals, corpora = ({}, []) if located is None else located[:2]
    counts = training_counts(next(iter(finals.values())), corpora) if finals else None
    frames, changes, recovery = [], {}, []
    for size, final in finals.items():
        reference, _ = unused_reference(checkpoint_tokenizer(final))
        frame, changes[size], found = size_reachability(
            run_checkpoints(final), counts, reference, early_step=early_step, n_tokens=n_tokens, seed=seed, box=box,
            patience=patience, start=start, k=k)
        frames.append(frame.assign(size=size))
        recovery.append({"size": size, **found})
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), changes, pd.DataFrame(recovery))
