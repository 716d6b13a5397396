"""Under-trained tokens: indicators read off the output head, and verification by prompting (chapter 6).

A token the model has (almost) never been trained to predict keeps an output-embedding row that training barely
moved. Land & Bartolo ("Fishing for Magikarp", 2024) rank tokens by how close their row is to the mean row of
tokens known to be unused, after removing the first principal component of the rows, and verify candidates by
prompting the model to repeat the token. This module gives:

- :func:`unused_reference`: the known-unused tokens of a tokenizer, computed: tokens that ordinary text cannot
  produce (their text, re-encoded as plain text, gives other ids, or their bytes include one that no UTF-8 text
  contains), chat and end-of-text markers left out;
- :func:`magikarp_distance`: the Euclidean or cosine distance of every row to the reference mean, first principal
  component removed;
- :func:`copy_probabilities`: the probability the model gives a token when asked to repeat it, in each of several
  prompt templates (batched; the prompts are built from token ids, so the token itself is never re-encoded); a token
  is under-trained when the largest of them is below a threshold, as Magikarp verifies;
- precision at the top of each indicator, rank agreement and overlap among indicators;
- :func:`share_bound`: the exact binomial interval of a share counted on a sample of tokens (with no hit, the rule
  of three); :func:`quantisation_grid` and :func:`nearest_distinct_steps`: whether a head is stored on a GGUF Q8_0
  grid, and how far a duplicated row is from the nearest row stored differently.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .argmax.verdicts import find_unargmaxable
from .head import output_head
from .uncertainty import percentile_interval
from .validation import check_choice, check_int, check_positive_int

#: the indicator whose top list the chapter scores (Land & Bartolo's, by Euclidean distance), and its cosine twin
CLOSENESS = "closeness to unused mean"
COSINE = "cosine closeness to unused mean"
METRICS = ("euclidean", "cosine")


@dataclass(frozen=True)
class CopyTemplate:
    """A copy prompt: ``prefix`` text, then ``tail`` text whose ``{token}`` slots receive the candidate as an id
    (never re-encoded); after the tail the model should say the token."""

    name: str
    prefix: str
    tail: str


REPEAT_EXAMPLES = (("hello", "hello"), ("2023", "2023"), (" river", " river"))
#: this book's copy prompts (three, as Magikarp uses three; the wording is this book's): a token is under-trained
#: when the largest of its probabilities over the templates is below the threshold
TEMPLATES = (
    CopyTemplate("input-output", "Repeat each input exactly.\n"
                 + "".join(f"Input:{a}\nOutput:{b}\n" for a, b in REPEAT_EXAMPLES) + "Input:", "{token}\nOutput:"),
    CopyTemplate("quoted", 'Each answer repeats the quoted word.\nSay "apple".\n"apple"\nSay "42".\n"42"\nSay "',
                 '{token}".\n"'),
    CopyTemplate("repeated", "The same piece of text, over and over:\n", "{token}" * 8),
)


# ------------------------------------------------------------------------------------------------------------------
# the unused reference set
# ------------------------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------------------------
# indicators read off the head
# ------------------------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------------------------
# verification by prompting
# ------------------------------------------------------------------------------------------------------------------


def template_ids(tokenizer: Any, template: CopyTemplate = TEMPLATES[0]) -> tuple[list[int], list[list[int]]]:
    """Token ids of a copy prompt: (the prefix, the tail's pieces between its ``{token}`` slots). The pieces are
    encoded text; the candidate goes between them as an id."""
    prefix = list(tokenizer(template.prefix, add_special_tokens=False)["input_ids"])
    pieces = [list(tokenizer(piece, add_special_tokens=False)["input_ids"]) if piece else []
              for piece in template.tail.split("{token}")]
    if not prefix or len(pieces) < 2:
        raise ValueError(f"template {template.name!r} needs a non-empty prefix and at least one {{token}} slot")
    return prefix, pieces


def copy_prompts(tokens: np.ndarray, prefix: Sequence[int], pieces: Sequence[Sequence[int]]) -> torch.Tensor:
    """(n, len(prefix) + tail) int64 prompts, one per token: prefix, then the pieces with the token between each
    two (all the same length: no padding)."""
    tokens = torch.as_tensor(np.asarray(tokens, dtype=np.int64))[:, None]
    n = len(tokens)
    parts = [torch.tensor(list(prefix) + list(pieces[0]), dtype=torch.int64).expand(n, -1)]
    for piece in pieces[1:]:
        parts += [tokens, torch.tensor(list(piece), dtype=torch.int64).expand(n, -1)]
    return torch.cat(parts, dim=1)


@torch.no_grad()
def repetition_probabilities(loaded: Any, tokens: Any, template: CopyTemplate = TEMPLATES[0], *,
                             batch_size: int = 32) -> np.ndarray:
    """The probability the model gives each token after the tail of its copy prompt in one ``template``: -> (n,)
    float64.

    The shared prefix runs once and its key/value cache is repeated over each batch, so only the tail runs per
    prompt (the result equals a full forward pass of the prompt; a test checks it). Logits are ``h @ E.T + b`` at
    the last position only, one (batch, V) block at a time."""
    tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
    batch_size = check_positive_int("batch_size", batch_size)
    head = output_head(loaded.model)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= head.V):
        raise ValueError(f"tokens must lie in [0, {head.V}); got ids from {tokens.min()} to {tokens.max()}")
    prefix, pieces = template_ids(loaded.tokenizer, template)
    tails = copy_prompts(tokens, [], pieces)  # (n, tail length)
    body, device = loaded.model.base_model, loaded.model.device
    with loaded.compute.autocast():
        shared = body(input_ids=torch.tensor([prefix], device=device), use_cache=True).past_key_values
    out = np.empty(len(tokens), dtype=np.float64)
    for start in range(0, len(tokens), batch_size):
        block, ids = tails[start:start + batch_size], torch.as_tensor(tokens[start:start + batch_size])
        cache = copy.deepcopy(shared)
        cache.batch_repeat_interleave(len(block))
        with loaded.compute.autocast():
            h = body(input_ids=block.to(device), past_key_values=cache, use_cache=True).last_hidden_state
        log_p = torch.log_softmax(head.logits(h[:, -1].to("cpu", torch.float32)).double(), dim=-1)  # (B, V)
        out[start:start + batch_size] = log_p.gather(1, ids[:, None]).squeeze(1).exp().numpy()
    return out


def copy_probabilities(loaded: Any, tokens: Any, templates: Sequence[CopyTemplate] = TEMPLATES, *,
                       batch_size: int = 32) -> np.ndarray:
    """:func:`repetition_probabilities` of every token in every template: -> (n, len(templates)) float64."""
    if not templates:
        raise ValueError("templates must hold at least one copy template")
    return np.stack([repetition_probabilities(loaded, tokens, t, batch_size=batch_size) for t in templates], axis=1)


@dataclass
class Prompting:
    """The tokens chapter 6 prompts and what the copy prompt said of each.

    Attributes:
        tops: indicator -> (k,) int64, its top tokens (the reference left out).
        control: (n_control,) int64, random tokens outside the reference (the base rate).
        reference: (n_reference,) int64, the unused reference tokens.
        probability: token id -> the largest probability at the answer position over the copy templates, for
            every prompted token.
        threshold: under-trained means a probability below this.
        templates: the names of the copy templates (empty when only the largest probability is known).
        per_template: token id -> (len(templates),) its probability in each template.
    """

    tops: dict[str, np.ndarray]
    control: np.ndarray
    reference: np.ndarray
    probability: dict[int, float]
    threshold: float
    templates: tuple[str, ...] = ()
    per_template: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def prompted(self) -> np.ndarray:
        """(n,) int64 sorted distinct tokens: every top list, the control and the reference."""
        return prompted_tokens(self.tops, self.control, self.reference)

    @property
    def verified(self) -> dict[int, bool]:
        """Token id -> under-trained (probability below the threshold), in the order of :attr:`prompted`."""
        return {token: p < self.threshold for token, p in self.probability.items()}

    @property
    def candidates(self) -> np.ndarray:
        """(n,) int64 sorted distinct tokens of the top lists."""
        return np.unique(np.concatenate(list(self.tops.values())))

    @property
    def under(self) -> np.ndarray:
        """(n,) int64 the candidates verified as under-trained, sorted."""
        return np.array([t for t in self.candidates if self.probability[int(t)] < self.threshold], dtype=np.int64)

    def hits(self, tokens: Any) -> np.ndarray:
        """(n,) bool: whether each of ``tokens`` was verified as under-trained (each must have been prompted)."""
        missing = [int(t) for t in tokens if int(t) not in self.probability]
        if missing:
            raise ValueError(f"tokens {missing[:5]} were not prompted")
        return np.array([self.probability[int(t)] < self.threshold for t in tokens], dtype=bool)

    def lift(self, *, seed: int = 0, indicator: str = CLOSENESS):
        """Precision of an ``indicator``'s top list (by default the closeness one) minus the control's verified
        share, with its interval over tokens (:func:`precision_lift_interval`): -> (lift, Interval)."""
        return precision_lift_interval(self.hits(self.tops[indicator]), self.hits(self.control), seed=seed)


def prompted_tokens(tops: Mapping[str, np.ndarray], control: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The tokens to prompt: every top list, the control and the reference, sorted and distinct: -> (n,) int64."""
    return np.unique(np.concatenate([*tops.values(), control, reference])).astype(np.int64)


def verify_by_prompting(loaded: Any, tops: Mapping[str, np.ndarray], control: np.ndarray, reference: np.ndarray,
                        threshold: float, *, templates: Sequence[CopyTemplate] = TEMPLATES,
                        batch_size: int = 32) -> Prompting:
    """Prompt every top token, control token and reference token once in each template (:func:`copy_probabilities`)
    and keep the largest probability of each (Magikarp's verification): -> :class:`Prompting`."""
    prompted = prompted_tokens(tops, control, reference)
    matrix = copy_probabilities(loaded, prompted, templates, batch_size=batch_size)  # (n, len(templates))
    return Prompting(dict(tops), np.asarray(control), np.asarray(reference),
                     dict(zip(prompted.tolist(), matrix.max(axis=1).tolist())), threshold,
                     tuple(t.name for t in templates), dict(zip(prompted.tolist(), matrix)))


# ------------------------------------------------------------------------------------------------------------------
# reading the indicators together
# ------------------------------------------------------------------------------------------------------------------


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


def ranking_wording(table) -> str:
    """Which indicator's top list holds the most verified tokens (a :func:`precision_table`), in words; ties are
    named together."""
    if len(table) == 0:
        raise ValueError("table must hold at least one indicator")
    best = table.precision.max()
    names = list(table.indicator[table.precision == best])
    lead = " and ".join(f"the {name}" for name in names)
    verb, whose = ("tie", "each top") if len(names) > 1 else ("ranks best", "its top")
    return f"{lead} {verb}, with {best:.0%} of {whose} {int(table.k.iloc[0])} verified"


def lift_wording(lift: float, interval: Any) -> str:
    """Whether a candidate list beats random tokens, from the lift and its interval (three-valued)."""
    if interval.low > 0:
        return "more often under-trained than random tokens"
    if interval.high < 0:
        return "less often under-trained than random tokens"
    return "not distinguishable from random tokens at this sample size"


def geometry_wording(n_unargmaxable: int, n_duplicate: int, quantised: bool = False) -> str:
    """What the head's geometry says of the verified under-trained tokens, in words (the counts are stated apart);
    ``quantised``: the head is stored on a Q8_0 grid, so its duplicate rows may be rounding ties."""
    n_unargmaxable = check_int("n_unargmaxable", n_unargmaxable, minimum=0)
    n_duplicate = check_int("n_duplicate", n_duplicate, minimum=0)
    if n_unargmaxable == 0 and n_duplicate == 0:
        return ("the head's geometry forbids none of them: the model can hardly say them, yet some input makes "
                "each one win")
    if quantised and n_unargmaxable == 0:
        return ("none is unargmaxable; the duplicates can at best tie with their twins in the head as stored, but the "
                "stored head is quantised, so whether their rows are identical before rounding is not known")
    return ("the geometry itself forbids a strict argmax to those (a duplicate row can at best tie with its twin), "
            "while the other verified tokens could win for some input")


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


def relative_margin(verdicts: Any, V: int) -> np.ndarray:
    """Each tested token's margin at its witness over the witness's length, NaN for untested tokens: -> (V,)
    float64 (small: a thin argmax region). ``verdicts``: :class:`utils.argmax.verdicts.Verdicts` of one head."""
    margin = np.full(check_positive_int("V", V), np.nan)
    margin[verdicts.tokens] = verdicts.margin / np.maximum(np.linalg.norm(verdicts.witness, axis=1), 1e-300)
    return margin


def strict_win_losses(tokens: np.ndarray, verdicts: Any, E: np.ndarray, b: np.ndarray | None = None, *,
                      box: float, patience: int, start: str) -> tuple[int, int]:
    """How many of ``tokens`` cannot win the argmax strictly: -> (unargmaxable, duplicate rows).

    Verdicts come from ``verdicts`` (a :class:`utils.argmax.verdicts.Verdicts` of the head ``E`` (V, d), ``b``)
    where it tested the token, and from :func:`utils.argmax.verdicts.find_unargmaxable` with the same settings for
    the others."""

    tokens = np.asarray(tokens, dtype=np.int64)
    status = dict(zip(verdicts.tokens.tolist(), verdicts.status.tolist()))
    missing = np.array([t for t in tokens if int(t) not in status], dtype=np.int64)  # outside the verdicts' sample
    if len(missing):
        status.update(zip(missing.tolist(), find_unargmaxable(E, b, tokens=missing, box=box, patience=patience,
                                                              start=start, progress=False).status.tolist()))
    token_status = np.array([status[int(t)] for t in tokens], dtype=str)
    return int((token_status == "unargmaxable").sum()), int((token_status == "duplicate").sum())


# ------------------------------------------------------------------------------------------------------------------
# duplicate rows and the quantisation of the head
# ------------------------------------------------------------------------------------------------------------------

#: GGUF Q8_0: each block of 32 consecutive values of a row is stored as a step (the block's largest |value| / 127)
#: times integers in [-127, 127]
Q8_0_BLOCK, Q8_0_LEVELS = 32, 127


def quantisation_steps(E: np.ndarray, block: int = Q8_0_BLOCK, levels: int = Q8_0_LEVELS) -> np.ndarray:
    """The step of every block of every row, read as Q8_0 stores it (largest |value| of the block / ``levels``):
    -> (V, d // block) float64. Raises ``ValueError`` when ``d`` is not a multiple of ``block``."""
    E = np.asarray(E, dtype=np.float64)
    V, d = E.shape
    if d % check_positive_int("block", block):
        raise ValueError(f"block={block} must divide the head's dimension d={d}")
    return np.abs(E.reshape(V, d // block, block)).max(axis=2) / check_positive_int("levels", levels)


def quantisation_grid(E: np.ndarray, block: int = Q8_0_BLOCK, levels: int = Q8_0_LEVELS) -> dict[str, float]:
    """Whether the head ``E`` (V, d) lies on a Q8_0 grid: the share of blocks whose every value is an integer
    multiple of the block's step (to 1e-3 of a step), the median step over those blocks (NaN when none is), and d.
    A head stored in Q8_0 and de-quantised has every block on the grid; a float head has almost none."""
    E = np.asarray(E, dtype=np.float64)
    if E.shape[1] % block:
        return {"on_grid": 0.0, "median_step": float("nan"), "d": E.shape[1]}
    steps = quantisation_steps(E, block, levels)
    blocks = E.reshape(E.shape[0], -1, block) / np.where(steps > 0, steps, 1.0)[..., None]
    on = (np.abs(blocks - np.round(blocks)).max(axis=2) < 1e-3) & (steps > 0)
    return {"on_grid": float(on.mean()), "median_step": float(np.median(steps[on])) if on.any() else float("nan"),
            "d": E.shape[1]}


def nearest_distinct_steps(E: np.ndarray, tokens: Any, block: int = Q8_0_BLOCK,
                           levels: int = Q8_0_LEVELS) -> pd.DataFrame:
    """For each of ``tokens``, the nearest row of ``E`` (V, d) stored differently (not an exact twin), measured in
    the token's own Q8_0 steps: a DataFrame with token, twins (other rows identical to it), nearest (that row),
    max_steps (the largest difference over the values, in steps) and n_differ (values that differ). A duplicate
    whose nearest distinct row is one step away in a few values is a rounding tie candidate: the float rows behind
    two such stored rows could have been as close as the stored twins. Empty when ``tokens`` is, or when ``d`` is not
    a multiple of ``block`` (no Q8_0 steps to measure in)."""
    E = np.asarray(E, dtype=np.float64)
    tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
    if tokens.size == 0 or E.shape[1] % block:
        return pd.DataFrame(columns=["token", "twins", "nearest", "max_steps", "n_differ"])
    step_per_value = np.repeat(quantisation_steps(E, block, levels), block, axis=1)  # (V, d)
    rows = []
    for token in tokens:
        diff = np.abs(E - E[token]) / np.where(step_per_value[token] > 0, step_per_value[token], 1.0)  # (V, d)
        worst = diff.max(axis=1)
        identical = worst == 0
        worst[identical] = np.inf
        nearest = int(np.argmin(worst))
        rows.append({"token": int(token), "twins": int(identical.sum()) - 1, "nearest": nearest,
                     "max_steps": float(worst[nearest]), "n_differ": int((diff[nearest] > 1e-9).sum())})
    return pd.DataFrame(rows, columns=["token", "twins", "nearest", "max_steps", "n_differ"])


def duplicate_rows(E: np.ndarray) -> np.ndarray:
    """The tokens whose row of ``E`` (V, d) is identical to another token's: -> (n,) int64 sorted."""
    _, inverse, counts = np.unique(np.asarray(E), axis=0, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse.reshape(-1)] > 1).astype(np.int64)
