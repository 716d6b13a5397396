"""Under-trained tokens read off the output head (chapter 6, after Land & Bartolo, "Fishing for Magikarp", 2024).

A token the model has (almost) never been trained to predict keeps an output-embedding row that training barely
moved. The indicators rank tokens by how close their row is to the mean row of tokens known to be unused, after
removing the first principal component of the rows:

- :func:`unused_reference`: the known-unused tokens of a tokenizer, computed: tokens that ordinary text cannot
  produce (their text, re-encoded as plain text, gives other ids, or their bytes include one that no UTF-8 text
  contains), chat and end-of-text markers left out;
- :func:`magikarp_distance`: the Euclidean or cosine distance of every row to the reference mean, first principal
  component removed;
- precision at the top of each indicator, rank agreement and overlap among indicators.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from ..uncertainty import percentile_interval
from ..validation import check_choice, check_int, check_positive_int

if TYPE_CHECKING:
    from .prompting import Prompting

#: the indicator whose top list the chapter scores (Land & Bartolo's, by Euclidean distance), and its cosine twin
CLOSENESS = "closeness to unused mean"


COSINE = "cosine closeness to unused mean"


METRICS = ("euclidean", "cosine")


def utf8_impossible_bytes() -> frozenset[int]:
    """Byte values that occur in the UTF-8 encoding of no character (computed over every code point)."""
    seen: set[int] = set()
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:  # surrogates have no UTF-8 encoding
            continue
        seen.update(chr(code).encode("utf-8"))
    return frozenset(set(range(256)) - seen)


_IMPOSSIBLE: frozenset[int] | None = None


def _byte_decoder() -> dict[str, int]:
    """Byte-level BPE's printable stand-in for every byte (GPT-2's table): character -> byte value."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(256 + extra)
            extra += 1
    return {char: byte for byte, char in chars.items()}


def token_bytes(tokenizer: Any) -> list[bytes | None]:
    """The bytes each vocabulary entry stands for (None where unknown): byte-level BPE pieces (GPT-2 style) and
    byte-fallback pieces ``<0xNN>`` (SentencePiece style)."""
    decoder = _byte_decoder()
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    out: list[bytes | None] = []
    for piece in pieces:
        if piece is None:
            out.append(None)
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            out.append(bytes([int(piece[3:5], 16)]))
        elif all(char in decoder for char in piece):
            out.append(bytes(decoder[char] for char in piece))
        else:
            out.append(None)
    return out


#: the special-token roles whose tokens mark the start or end of a text or a turn (never in the reference set)
MARKER_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def marker_tokens(tokenizer: Any) -> np.ndarray:
    """Chat and end-of-text markers: the tokens of the tokenizer's special-token roles (:data:`MARKER_ROLES`) and the
    added tokens whose text appears in its chat template: -> (n,) int64 sorted. A chat model is trained to say them."""
    ids = {getattr(tokenizer, f"{role}_id", None) for role in MARKER_ROLES if getattr(tokenizer, role, None)}
    template = getattr(tokenizer, "chat_template", None) or ""
    template = template if isinstance(template, str) else " ".join(map(str, dict(template).values()))
    ids |= {int(i) for i, added in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items()
            if str(added) and str(added) in template}
    return np.array(sorted(int(i) for i in ids if i is not None), dtype=np.int64)


def token_texts(tokenizer: Any) -> dict[int, str]:
    """Token id -> the text it stands for, for the tokens whose text is known: byte-level pieces whose bytes are
    valid UTF-8 on their own (a piece of a character has no text of its own) and the added tokens."""
    texts = {}
    for token, raw in enumerate(token_bytes(tokenizer)):
        if raw is not None:
            try:
                texts[token] = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
    texts.update({int(i): str(added) for i, added in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items()})
    return texts


def plain_text_unreachable(tokenizer: Any) -> np.ndarray:
    """Tokens whose text (:func:`token_texts`), encoded as plain text (special-token markup not parsed), gives other
    ids than the token itself: -> (n,) int64 sorted. Ordinary text never produces them."""
    texts = token_texts(tokenizer)
    tokens = list(texts)
    encoded = tokenizer([texts[t] for t in tokens], add_special_tokens=False, split_special_tokens=True)["input_ids"]
    return np.array(sorted(t for t, ids in zip(tokens, encoded) if list(ids) != [t]), dtype=np.int64)


def impossible_byte_tokens(tokenizer: Any) -> np.ndarray:
    """Tokens whose bytes include a byte value that no UTF-8 text contains: -> (n,) int64 sorted."""
    global _IMPOSSIBLE
    if _IMPOSSIBLE is None:
        _IMPOSSIBLE = utf8_impossible_bytes()
    return np.array([i for i, raw in enumerate(token_bytes(tokenizer)) if raw is not None and _IMPOSSIBLE & set(raw)],
                    dtype=np.int64)


def unused_reference(tokenizer: Any) -> tuple[np.ndarray, str]:
    """Tokens known to be unused, and the rule that chose them: -> ((n,) int64 sorted, rule in words).

    The tokens that ordinary text cannot produce (:func:`plain_text_unreachable` and :func:`impossible_byte_tokens`),
    less the chat and end-of-text markers (:func:`marker_tokens`), which a chat model is trained to say. Raises
    ``ValueError`` when no token is left.
    """
    unreachable, impossible = plain_text_unreachable(tokenizer), impossible_byte_tokens(tokenizer)
    markers = marker_tokens(tokenizer)
    candidates = np.union1d(unreachable, impossible)
    left_out = np.intersect1d(candidates, markers)
    reference = np.setdiff1d(candidates, markers).astype(np.int64)
    if reference.size == 0:
        raise ValueError(f"the tokenizer has no token that ordinary text cannot produce, other than its "
                         f"{len(left_out)} chat and end-of-text markers: no unused reference set")
    names = ", ".join(repr(tokenizer.convert_ids_to_tokens(int(t))) for t in left_out)
    return reference, (
        f"the {len(reference)} tokens that ordinary text cannot produce ({np.setdiff1d(unreachable, markers).size} "
        f"whose text, encoded as plain text, gives other ids; {np.setdiff1d(impossible, markers).size} with a byte "
        f"that no UTF-8 text contains), less {len(left_out)} chat and end-of-text marker"
        f"{'' if len(left_out) == 1 else 's'}"
        + (f" ({names})" if len(left_out) else ""))


def remove_first_component(E: np.ndarray) -> np.ndarray:
    """Rows of E (V, d) centred, with their component along the first principal direction removed: -> (V, d)."""
    E = np.asarray(E, dtype=np.float64)
    if E.ndim != 2:
        raise ValueError(f"E must be 2-d (V, d); got shape {E.shape}")
    centred = E - E.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    first = vectors[:, -1]
    return centred - np.outer(centred @ first, first)


def magikarp_distance(E: np.ndarray, reference: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distance of every row to the mean of the ``reference`` rows, after :func:`remove_first_component`: -> (V,)
    float64 (small: the row looks like an unused token's). ``metric``: "euclidean", or "cosine" (one minus the
    cosine of the angle, the distance Magikarp ranks by)."""
    check_choice("metric", metric, METRICS)
    reference = np.asarray(reference, dtype=np.int64)
    if reference.size == 0:
        raise ValueError("reference must hold at least one token")
    X = remove_first_component(E)
    mean = X[reference].mean(axis=0)
    if metric == "euclidean":
        return np.linalg.norm(X - mean, axis=1)
    return 1.0 - X @ mean / np.maximum(np.linalg.norm(X, axis=1) * np.linalg.norm(mean), 1e-300)


def top_tokens(score: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """The ``k`` tokens of largest ``score`` (V,), ties broken by token id, ``exclude`` left out: -> (k,) int64."""
    score = np.asarray(score, dtype=np.float64)
    k = check_int("k", k, minimum=1, maximum=len(score))
    order = np.lexsort((np.arange(len(score)), -score))
    if exclude is not None and len(exclude):
        order = order[~np.isin(order, exclude)]
    return order[:k].astype(np.int64)


def head_indicators(E: np.ndarray, distance: np.ndarray, predicted: np.ndarray,
                    cosine: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The indicators read off the head, each (V,) and oriented so that larger is more suspicious: closeness to the
    unused mean (minus the Euclidean ``distance``), with ``cosine`` the same by cosine distance, a small row norm
    (minus the norm of each row of ``E`` (V, d)), and the encoding's ``predicted`` -log alpha."""
    out = {CLOSENESS: -np.asarray(distance)}
    if cosine is not None:
        out[COSINE] = -np.asarray(cosine)
    return {**out, "small row norm": -np.linalg.norm(E, axis=1), "predicted -log alpha": np.asarray(predicted)}


def control_tokens(V: int, n: int, reference: np.ndarray, seed: int) -> np.ndarray:
    """``n`` random tokens outside ``reference`` (all of them when fewer remain), drawn with ``seed``: -> sorted
    (n,) int64, the base rate's sample."""
    pool = np.setdiff1d(np.arange(check_positive_int("V", V)), reference)
    n = check_positive_int("n", n)
    return np.sort(np.random.default_rng(seed).choice(pool, min(n, len(pool)), replace=False))


def precision_table(indicators: Mapping[str, np.ndarray], verified: Mapping[int, bool], k: int,
                    exclude: np.ndarray | None = None):
    """Per indicator (higher score = more suspicious), the share of its top ``k`` tokens that prompting verified as
    under-trained: a DataFrame with indicator, k, verified, precision."""

    rows = []
    for name, score in indicators.items():
        top = top_tokens(score, k, exclude)
        missing = [int(t) for t in top if int(t) not in verified]
        if missing:
            raise ValueError(f"tokens {missing[:5]} of {name!r}'s top {k} were not verified")
        hits = int(sum(verified[int(t)] for t in top))
        rows.append({"indicator": name, "k": k, "verified": hits, "precision": hits / k})
    return pd.DataFrame(rows)


def rank_agreement(indicators: Mapping[str, np.ndarray]):
    """Spearman rank correlation between every pair of indicators (over tokens where both are finite): a square
    DataFrame."""

    names = list(indicators)
    matrix = np.eye(len(names))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            x, y = np.asarray(indicators[a], float), np.asarray(indicators[names[j]], float)
            keep = np.isfinite(x) & np.isfinite(y)
            matrix[i, j] = matrix[j, i] = float(stats.spearmanr(x[keep], y[keep])[0])
    return pd.DataFrame(matrix, index=names, columns=names)


def top_overlap(indicators: Mapping[str, np.ndarray], k: int, exclude: np.ndarray | None = None):
    """How many tokens the top ``k`` of every pair of indicators share: a square DataFrame of counts."""

    names = list(indicators)
    tops = {name: set(top_tokens(indicators[name], k, exclude).tolist()) for name in names}
    return pd.DataFrame([[len(tops[a] & tops[b]) for b in names] for a in names], index=names, columns=names)


def precision_lift_interval(hits: np.ndarray, control_hits: np.ndarray, *, n_boot: int = 1000, seed: int = 0):
    """Precision of a candidate list minus the verified share of random control tokens, with a percentile interval
    over tokens (both lists resampled): -> (lift, Interval with unit "token")."""

    hits, control_hits = np.asarray(hits, float), np.asarray(control_hits, float)
    if hits.size == 0 or control_hits.size == 0:
        raise ValueError("hits and control_hits must each hold at least one token")
    rng = np.random.default_rng(seed)
    samples = (hits[rng.integers(0, hits.size, (n_boot, hits.size))].mean(axis=1)
               - control_hits[rng.integers(0, control_hits.size, (n_boot, control_hits.size))].mean(axis=1))
    lift = float(hits.mean() - control_hits.mean())
    return lift, percentile_interval(samples, estimate=lift, unit="token")


def sample_tokens(V: int, n: int | None, seed: int) -> np.ndarray | None:
    """Chapter 5's token sample: None for all tokens, else ``n`` sorted tokens drawn with ``seed`` (the same draw,
    so that the verdicts come from chapter 5's cache)."""
    if n is None or n >= V:
        return None
    return np.sort(np.random.default_rng(seed).choice(V, n, replace=False))


def token_table(tokenizer: Any, tokens: Any, per_token: Mapping[str, np.ndarray] | None = None,
                prompting: Prompting | None = None, *, per_template: bool = False):
    """One row per token: its id, its decoded text (``repr``), each (V,) array of ``per_token`` read at the token,
    and, with ``prompting``, its probability in the copy prompts (the largest over the templates; with
    ``per_template``, each template's too) and whether it is under-trained: a DataFrame."""

    tokens = np.asarray(tokens, dtype=np.int64)
    columns = {"token": tokens, "text": [repr(tokenizer.decode([int(t)])) for t in tokens]}
    columns.update({name: np.asarray(values)[tokens] for name, values in (per_token or {}).items()})
    if prompting is not None:
        if per_template:
            for j, name in enumerate(prompting.templates):
                columns[f"p({name})"] = [float(prompting.per_template[int(t)][j]) for t in tokens]
        columns["p(repeat)"] = [prompting.probability[int(t)] for t in tokens]
        columns["under-trained"] = prompting.hits(tokens).tolist()
    return pd.DataFrame(columns)
