"""Probing checkpoints: the frequency probe of the output embedding, and every per-checkpoint number of chapter 4.

- the frequency probe: a least-squares regression of log corpus frequency on the rows of ``E`` (V, d), scored on
  held-out tokens (R²), and the Spearman correlation of the fitted direction with log frequency;
- the log-linear encoding of chapter 1 (``fit_encoding(E, alpha).r2`` with the checkpoint's own ``alpha``);
- convergence: distance of ``E`` (and of all parameters) to the final checkpoint, and held-out loss;
- tokens never seen in training: how close together their output embeddings end up and where the probe places them.

:func:`probe_checkpoints` runs them over a sequence of checkpoints and caches the table on disk.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from sklearn.metrics import r2_score
from tqdm.auto import tqdm

from .. import cache
from ..activations import compute_activations
from ..corpora import CORPORA
from ..encoding.fit import fit_encoding, ols, split_tokens, token_counts
from ..head import output_head
from ..models import hub_reachable
from ..validation import check_choice, check_float, check_int, check_positive_int
from .checkpoints import (
    CheckpointRef,
    CheckpointUnavailableError,
    duplicate_checkpoints,
    embedding_hash,
    is_hub_ref,
    try_load_checkpoint,
)
from .training import encode_text, tokenizer_fingerprint

# bump whenever probing changes in a way that changes results, so old caches are not reused
PROBE_VERSION = "4"  # 4: the held-out pass is drawn with ProbeSettings.sample_seed and described


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


def probe_split(counts: np.ndarray, n_dims: int, *, include_unseen: bool = False, test_fraction: float = 0.2,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The frequency probe's token split: ``(train tokens, held-out tokens)``, sorted int64 ids.

    A random ``test_fraction`` of the seen tokens (or of all tokens with ``include_unseen``), drawn from ``seed``
    by the encoding's split (:func:`utils.encoding.fit.split_tokens` over those tokens); raises ``ValueError`` when too
    few tokens remain to fit ``n_dims`` dimensions.
    """
    counts = np.asarray(counts)
    tokens = np.arange(len(counts)) if include_unseen else np.flatnonzero(counts > 0)  # (n,) sorted ids
    n_test = int(round(len(tokens) * test_fraction))
    if n_test < 3 or len(tokens) - n_test <= n_dims + 1:
        raise ValueError(f"{len(tokens)} tokens are too few to fit {n_dims} dimensions and hold out "
                         f"test_fraction={test_fraction}")
    train, test = split_tokens(len(tokens), test_fraction, seed)  # sorted positions into ``tokens``
    return tokens[train], tokens[test]


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
    train, test = probe_split(counts, E.shape[1], include_unseen=include_unseen, test_fraction=test_fraction,
                              seed=seed)
    direction, intercept = ols(E[train], target[train])
    predicted = E @ direction + intercept
    return FrequencyProbe(
        direction=direction,
        intercept=intercept,
        predicted=predicted,
        target=target,
        train_tokens=train,
        test_tokens=test,
        r2=float(r2_score(target[test], predicted[test])),
        spearman=float(stats.spearmanr(E[test] @ direction, target[test])[0]),
    )


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

    E = output_head(loaded.model).E  # (V, d)
    if counts.shape != (E.shape[0],):
        raise ValueError(f"counts must have shape ({E.shape[0]},), one per row of E; got {counts.shape}")
    seen = counts > 0
    seen_probe = frequency_probe(E, counts, test_fraction=settings.test_fraction, seed=settings.seed)
    all_probe = frequency_probe(E, counts, include_unseen=True, unseen_count=settings.unseen_count,
                                test_fraction=settings.test_fraction, seed=settings.seed)
    activations = compute_activations(loaded, settings.eval_corpus, "test", window_length=settings.window_length,
                                      n_tokens=settings.n_tokens, sample_seed=settings.sample_seed,
                                      store=False)  # the probe's numbers are cached (probe_checkpoints), not the pass
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


def probe_cache_key(refs: Sequence[CheckpointRef], count_text: str, settings: ProbeSettings) -> str:
    """The cache key of :func:`probe_checkpoints`: a hash of each checkpoint (folder, size and time of its weights,
    or hub id and revision), the settings, the counted text and :data:`PROBE_VERSION` (a test pins its value for
    fixed inputs: changing it makes every cached probe be recomputed)."""
    return cache.key_of({"refs": [_ref_fingerprint(ref) for ref in refs], "settings": asdict(settings),
                         "text_sha": hashlib.sha256(count_text.encode()).hexdigest()[:16],
                         "code_version": PROBE_VERSION})


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

    if len(refs) < 2:
        raise ValueError(f"need at least two checkpoints to probe dynamics; got {len(refs)}")
    steps = [ref.step for ref in refs]
    if steps != sorted(steps):
        raise ValueError(f"checkpoints must be in step order; got steps {steps}")
    key = probe_cache_key(refs, count_text, settings)
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

    probe = frequency_probe(E, counts, **probe_kwargs)
    counts = np.asarray(counts)
    group = np.empty(len(counts), dtype=object)
    for name, low, high in COUNT_GROUPS:
        group[(counts >= low) & (counts <= high)] = name
    return pd.DataFrame({"token": np.arange(len(counts)), "count": counts, "group": group,
                         "predicted": probe.predicted, "actual": probe.target})


def probe_pythia(refs: Sequence[CheckpointRef] | None, count_text: str, settings: ProbeSettings) -> tuple[Any, str]:
    """:func:`probe_checkpoints` on Pythia checkpoints, and a sentence saying what happened: ``(frame, status)``.

    ``frame`` is None when ``refs`` is None (the chapter's default: skipped) or when the checkpoints cannot be loaded
    on this machine (:class:`~utils.dynamics.checkpoints.CheckpointUnavailableError`); ``status`` then says why, and
    otherwise how many checkpoints were probed, which ones are identical to an earlier one and which were unavailable.

    Args:
        refs: from :func:`~utils.dynamics.checkpoints.pythia_refs`, or None.
    """
    if refs is None:
        return None, "skipped: pythia_model is None (the default; set it where the hub or a local cache is reachable)"
    try:
        frame = probe_checkpoints(refs, count_text, settings)
    except CheckpointUnavailableError as error:
        return None, f"not available on this machine ({error})"
    duplicates = frame[frame["duplicate_of"] != ""]
    status = (f"probed {len(frame)} of {len(refs)} checkpoints of {refs[0].name_or_path}; "
              f"{len(duplicates)} identical to an earlier checkpoint"
              + "".join(f"; {row.revision} = {row.duplicate_of}" for row in duplicates.itertuples())
              + "".join(f"; {label} unavailable" for label in frame.attrs["unavailable"]))
    return frame, status
