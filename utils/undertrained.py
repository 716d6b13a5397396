"""Under-trained tokens: indicators read off the output head, and verification by prompting (chapter 6).

A token the model has (almost) never been trained to predict keeps an output-embedding row that training barely
moved. Land & Bartolo ("Fishing for Magikarp", 2024) rank tokens by how close their row is to the mean row of
tokens known to be unused, after removing the first principal component of the rows, and verify candidates by
prompting the model to repeat the token. This module gives:

- :func:`unused_reference`: the known-unused tokens of a tokenizer, computed (tokens whose bytes never occur in
  UTF-8 text, so that encoding text never produces them);
- :func:`magikarp_distance`: the distance of every row to the reference mean, first principal component removed;
- :func:`repetition_probabilities`: the probability the model gives a token when asked to repeat it (batched; the
  prompt is built from token ids, so the token itself is never re-encoded);
- precision at the top of each indicator, rank agreement and overlap among indicators.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .argmax.verdicts import find_unargmaxable
from .head import output_head
from .uncertainty import Check, exact, percentile_interval
from .validation import check_int, check_positive_int

#: few-shot copy prompt around the candidate token: prefix + [token] + suffix -> the model should say the token
REPEAT_EXAMPLES = (("hello", "hello"), ("2023", "2023"), (" river", " river"))
REPEAT_HEADER = "Repeat each input exactly.\n"
#: the indicator whose top list the chapter scores (Land & Bartolo's)
CLOSENESS = "closeness to unused mean"


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


def unused_reference(tokenizer: Any) -> tuple[np.ndarray, str]:
    """Tokens known to be unused, and the rule that chose them: -> ((n,) int64 sorted, rule in words).

    Tokens whose bytes include a byte that no UTF-8 text contains (so encoding text never produces them); if the
    tokenizer has none, its added special tokens. Raises ``ValueError`` when neither rule finds a token.
    """
    global _IMPOSSIBLE
    if _IMPOSSIBLE is None:
        _IMPOSSIBLE = utf8_impossible_bytes()
    impossible = _IMPOSSIBLE
    tokens = [i for i, raw in enumerate(token_bytes(tokenizer)) if raw is not None and impossible & set(raw)]
    if tokens:
        return np.asarray(tokens, dtype=np.int64), (
            f"the {len(tokens)} tokens whose bytes include one of the {len(impossible)} byte values that no UTF-8 "
            "text contains, so that encoding text never produces them")
    added = sorted(int(i) for i in (getattr(tokenizer, "added_tokens_decoder", None) or {}))
    if added:
        return np.asarray(added, dtype=np.int64), (
            f"the tokenizer's {len(added)} added tokens (markup outside its BPE vocabulary, which ordinary text "
            "never produces; the tokenizer has no byte that UTF-8 text never contains)")
    raise ValueError("the tokenizer has no token that encoding text never produces, and no added token: "
                     "no unused reference set")


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


def magikarp_distance(E: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Euclidean distance of every row to the mean of the ``reference`` rows, after :func:`remove_first_component`:
    -> (V,) float64 (small: the row looks like an unused token's)."""
    reference = np.asarray(reference, dtype=np.int64)
    if reference.size == 0:
        raise ValueError("reference must hold at least one token")
    X = remove_first_component(E)
    return np.linalg.norm(X - X[reference].mean(axis=0), axis=1)


def top_tokens(score: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """The ``k`` tokens of largest ``score`` (V,), ties broken by token id, ``exclude`` left out: -> (k,) int64."""
    score = np.asarray(score, dtype=np.float64)
    k = check_int("k", k, minimum=1, maximum=len(score))
    order = np.lexsort((np.arange(len(score)), -score))
    if exclude is not None and len(exclude):
        order = order[~np.isin(order, exclude)]
    return order[:k].astype(np.int64)


def head_indicators(E: np.ndarray, distance: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """The three indicators read off the head, each (V,) and oriented so that larger is more suspicious: closeness
    to the unused mean (minus ``distance``), a small row norm (minus the norm of each row of ``E`` (V, d)), and the
    encoding's ``predicted`` -log alpha."""
    return {CLOSENESS: -np.asarray(distance), "small row norm": -np.linalg.norm(E, axis=1),
            "predicted -log alpha": np.asarray(predicted)}


def control_tokens(V: int, n: int, reference: np.ndarray, seed: int) -> np.ndarray:
    """``n`` random tokens outside ``reference`` (all of them when fewer remain), drawn with ``seed``: -> sorted
    (n,) int64, the base rate's sample."""
    pool = np.setdiff1d(np.arange(check_positive_int("V", V)), reference)
    n = check_positive_int("n", n)
    return np.sort(np.random.default_rng(seed).choice(pool, min(n, len(pool)), replace=False))


# ------------------------------------------------------------------------------------------------------------------
# verification by prompting
# ------------------------------------------------------------------------------------------------------------------


def repetition_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Token ids of the copy prompt around the candidate: ``prefix + [token] + suffix``, after which the model should
    say the token. The examples are encoded text; the candidate is inserted as an id, never re-encoded."""
    text = REPEAT_HEADER + "".join(f"Input:{a}\nOutput:{b}\n" for a, b in REPEAT_EXAMPLES) + "Input:"
    prefix = tokenizer(text, add_special_tokens=False)["input_ids"]
    suffix = tokenizer("\nOutput:", add_special_tokens=False)["input_ids"]
    return list(prefix), list(suffix)


def repetition_prompts(tokens: np.ndarray, prefix: Sequence[int], suffix: Sequence[int]) -> torch.Tensor:
    """(n, len(prefix) + 1 + len(suffix)) int64 prompts, one per token (all the same length: no padding)."""
    tokens = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    n = len(tokens)
    return torch.cat([torch.tensor(prefix, dtype=torch.int64).expand(n, -1), tokens[:, None],
                      torch.tensor(suffix, dtype=torch.int64).expand(n, -1)], dim=1)


@torch.no_grad()
def repetition_probabilities(loaded: Any, tokens: Any, *, batch_size: int = 32) -> np.ndarray:
    """The probability the model gives each token at the answer position of its copy prompt: -> (n,) float64.

    The shared prefix runs once and its key/value cache is repeated over each batch, so only ``[token] + suffix``
    runs per prompt (the result equals a full forward pass of the prompt; a test checks it). Logits are
    ``h @ E.T + b`` at the last position only, one (batch, V) block at a time."""


    tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
    batch_size = check_positive_int("batch_size", batch_size)
    head = output_head(loaded.model)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= head.V):
        raise ValueError(f"tokens must lie in [0, {head.V}); got ids from {tokens.min()} to {tokens.max()}")
    prefix, suffix = repetition_template(loaded.tokenizer)
    tails = repetition_prompts(tokens, [], suffix)  # (n, 1 + len(suffix))
    body, device = loaded.model.base_model, loaded.model.device
    with loaded.compute.autocast():
        shared = body(input_ids=torch.tensor([prefix], device=device), use_cache=True).past_key_values
    out = np.empty(len(tokens), dtype=np.float64)
    for start in range(0, len(tokens), batch_size):
        block = tails[start:start + batch_size]
        cache = copy.deepcopy(shared)
        cache.batch_repeat_interleave(len(block))
        with loaded.compute.autocast():
            h = body(input_ids=block.to(device), past_key_values=cache, use_cache=True).last_hidden_state
        log_p = torch.log_softmax(head.logits(h[:, -1].to("cpu", torch.float32)).double(), dim=-1)  # (B, V)
        out[start:start + batch_size] = log_p.gather(1, block[:, :1]).squeeze(1).exp().numpy()
    return out


@dataclass
class Prompting:
    """The tokens chapter 6 prompts and what the copy prompt said of each.

    Attributes:
        tops: indicator -> (k,) int64, its top tokens (the reference left out).
        control: (n_control,) int64, random tokens outside the reference (the base rate).
        reference: (n_reference,) int64, the unused reference tokens.
        probability: token id -> probability at the answer position of its copy prompt, for every prompted token.
        threshold: under-trained means a probability below this.
    """

    tops: dict[str, np.ndarray]
    control: np.ndarray
    reference: np.ndarray
    probability: dict[int, float]
    threshold: float

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

    def lift(self, *, seed: int = 0):
        """Precision of the closeness indicator's top list minus the control's verified share, with its interval
        over tokens (:func:`precision_lift_interval`): -> (lift, Interval)."""
        return precision_lift_interval(self.hits(self.tops[CLOSENESS]), self.hits(self.control), seed=seed)


def prompted_tokens(tops: Mapping[str, np.ndarray], control: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The tokens to prompt: every top list, the control and the reference, sorted and distinct: -> (n,) int64."""
    return np.unique(np.concatenate([*tops.values(), control, reference])).astype(np.int64)


def verify_by_prompting(loaded: Any, tops: Mapping[str, np.ndarray], control: np.ndarray, reference: np.ndarray,
                        threshold: float, *, batch_size: int = 32) -> Prompting:
    """Prompt every top token, control token and reference token once (:func:`repetition_probabilities`) and keep
    what the copy prompt said of each: -> :class:`Prompting`."""
    prompted = prompted_tokens(tops, control, reference)
    probability = repetition_probabilities(loaded, prompted, batch_size=batch_size)
    return Prompting(dict(tops), np.asarray(control), np.asarray(reference),
                     dict(zip(prompted.tolist(), probability)), threshold)


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
    verb = "tie" if len(names) > 1 else "ranks best"
    return f"{lead} {verb}, with {best:.0%} of its top {int(table.k.iloc[0])} verified"


def lift_wording(lift: float, interval: Any) -> str:
    """Whether a candidate list beats random tokens, from the lift and its interval (three-valued)."""
    if interval.low > 0:
        return "more often under-trained than random tokens"
    if interval.high < 0:
        return "less often under-trained than random tokens"
    return "not distinguishable from random tokens at this sample size"


def geometry_wording(n_unargmaxable: int, n_duplicate: int) -> str:
    """What the head's geometry says of the verified under-trained tokens, in words (the counts are stated apart)."""
    n_unargmaxable = check_int("n_unargmaxable", n_unargmaxable, minimum=0)
    n_duplicate = check_int("n_duplicate", n_duplicate, minimum=0)
    if n_unargmaxable == 0 and n_duplicate == 0:
        return ("the head's geometry forbids none of them: the model can hardly say them, yet some input makes "
                "each one win")
    return ("the geometry itself forbids a strict argmax to those (a duplicate row can at best tie with its twin), "
            "while the other verified tokens could win for some input")


def token_table(tokenizer: Any, tokens: Any, per_token: Mapping[str, np.ndarray] | None = None,
                prompting: Prompting | None = None):
    """One row per token: its id, its decoded text (``repr``), each (V,) array of ``per_token`` read at the token,
    and, with ``prompting``, its probability in the copy prompt and whether it is under-trained: a DataFrame."""

    tokens = np.asarray(tokens, dtype=np.int64)
    columns = {"token": tokens, "text": [repr(tokenizer.decode([int(t)])) for t in tokens]}
    columns.update({name: np.asarray(values)[tokens] for name, values in (per_token or {}).items()})
    if prompting is not None:
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
# what the chapter records
# ------------------------------------------------------------------------------------------------------------------


def prompting_records(prompting: Prompting, reference_rule: str, table: Any, lift: float,
                      lift_interval: Any) -> dict[str, tuple[Any, str | None, str]]:
    """Section 6.1's numbers for :func:`utils.results.record_many`: ``{name: (value, fmt, description)}``.
    ``table``: the :func:`precision_table`; ``lift``, ``lift_interval``: :meth:`Prompting.lift`."""
    return {
        "reference_rule": (reference_rule, None, "how the unused reference set was chosen"),
        "n_reference": (len(prompting.reference), ",", "tokens in the unused reference set"),
        "n_candidates": (int(table.k.iloc[0]), ",", "top tokens of each indicator prompted"),
        "n_control": (len(prompting.control), ",", "random control tokens prompted"),
        "threshold": (prompting.threshold, "g", "probability below which a prompted token counts as under-trained"),
        "n_prompted": (len(prompting.prompted), ",", "distinct tokens prompted"),
        "n_verified": (int(prompting.hits(prompting.candidates).sum()), ",",
                       "distinct candidates verified as under-trained"),
        "control_rate": (float(prompting.hits(prompting.control).mean()), ".0%",
                         "share of random control tokens verified (base rate)"),
        "reference_rate": (float(np.mean(prompting.hits(prompting.reference))), ".0%",
                           "share of the reference tokens verified"),
        "ranking": (ranking_wording(table), None, "which indicator's top list holds most verified tokens"),
        "lift": (lift, ".0%", "precision of the closeness indicator minus the base rate"),
        "lift_interval": (lift_interval.label(".0%"), None, "its interval (token-level bootstrap)"),
        "lift_wording": (lift_wording(lift, lift_interval), None, "the lift in words"),
    }


def agreement_records(correlations: Any, overlap: Any, n_under: int, n_unargmaxable: int, n_duplicate: int,
                      n_verdict_tokens: int) -> dict[str, tuple[Any, str | None, str]]:
    """Section 6.2's numbers for :func:`utils.results.record_many`: ``{name: (value, fmt, description)}``, from the
    :func:`rank_agreement` and :func:`top_overlap` of the views and the verdicts of the verified candidates."""
    return {
        "rho_closeness_predicted": (correlations.loc[CLOSENESS, "predicted -log alpha"], ".2f",
                                    "rank correlation: closeness to unused mean vs predicted -log alpha"),
        "rho_predicted_measured": (correlations.loc["predicted -log alpha", "measured -log alpha"], ".2f",
                                   "rank correlation: predicted vs measured -log alpha"),
        "rho_closeness_margin": (correlations.loc[CLOSENESS, "thin argmax margin"], ".2f",
                                 "rank correlation: closeness vs thin argmax margin"),
        "overlap_closeness_predicted": (int(overlap.loc[CLOSENESS, "predicted -log alpha"]), ",",
                                        "tokens shared by the two top lists"),
        "n_under": (n_under, ",", "verified under-trained candidates"),
        "under_unargmaxable": (n_unargmaxable, ",", "verified under-trained candidates that are unargmaxable"),
        "under_duplicate": (n_duplicate, ",", "verified under-trained candidates whose row has an identical twin"),
        "under_geometry": (geometry_wording(n_unargmaxable, n_duplicate), None, "what the geometry says, in words"),
        "verdict_tokens": (n_verdict_tokens, ",", "tokens with chapter 5's verdicts"),
    }


def scorecard_checks(lift: float, lift_interval: Any, n_cannot_win: int, created: int | None = None) -> list:
    """The chapter's checks (:class:`utils.uncertainty.Check`): the closeness lift above 0 (interval over tokens),
    the verified under-trained tokens that cannot win strictly at most 0 (exact), and, when chapter 4's models were
    tested (``created`` not None), the tokens training made unargmaxable at most 0 (exact for the sample)."""

    n_cannot_win = check_int("n_cannot_win", n_cannot_win, minimum=0)
    checks = [
        Check("closeness to the unused mean: precision of its top list minus the random base rate", lift,
              lift_interval, 0.0, "above", ".2f"),
        Check("verified under-trained tokens that cannot win strictly (unargmaxable or duplicate rows)",
              float(n_cannot_win), exact(n_cannot_win), 0.0, "below", ".0f"),
    ]
    if created is not None:
        created = check_int("created", created, minimum=0)
        checks.append(Check("tokens made unargmaxable by training (chapter 4's models, sample)", float(created),
                            exact(created), 0.0, "below", ".0f"))
    return checks


def scorecard_figure(model: str, prompting: Prompting, n_unargmaxable: int, n_duplicate: int) -> str:
    """The chapter's figure for the scorecard, in words, from the prompting and the verdicts of its candidates."""
    n_verified = int(prompting.hits(prompting.candidates).sum())
    return (f"{n_verified} of {len(prompting.candidates)} candidates of {model} under-trained "
            f"(random tokens: {prompting.hits(prompting.control).mean():.0%}); of those, "
            f"{n_unargmaxable} unargmaxable, {n_duplicate} duplicate rows")
