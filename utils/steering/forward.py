"""Cross-checks with the real model: the cache shortcut against a forward pass of the edited model, and
greedy generation under edited heads.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import budget
from ..head import OutputHead, with_output_head
from ..models import LoadedModel
from ..validation import check_positive_int, check_token_ids
from .edits import Edit, edited_head
from .measure import BaseStatistics, base_statistics, steering_sweep


@torch.no_grad()
def forward_log_alpha(
    loaded: LoadedModel, head: OutputHead, token_ids: torch.Tensor, tokens: Sequence[int]
) -> np.ndarray:
    """log alpha of ``tokens`` from the model's own logits with its head replaced by ``head``.

    Args:
        token_ids: (n_windows, T) int64 windows.

    Returns:
        (m,) float64 log of the mean over all positions of the model's softmax probabilities of ``tokens``.
    """
    tokens = check_token_ids("tokens", list(tokens), head.V)
    model = with_output_head(loaded.model, head)
    log_total = torch.full((len(tokens),), -math.inf, dtype=torch.float64)
    for window in token_ids:
        logits = model(input_ids=window[None, :], use_cache=False).logits[0].to(torch.float64)
        log_probs = torch.log_softmax(logits, dim=-1)[:, torch.as_tensor(tokens)]
        log_total = torch.logaddexp(log_total, torch.logsumexp(log_probs, dim=0))
    budget.charge("pass", budget.forward_flops_per_token(model) * token_ids.numel(), tokens=token_ids.numel(),
                  detail=f"{loaded.name} forward check of an edited head")
    del model
    return (log_total - math.log(token_ids.numel())).numpy()


def shortcut_log_alpha(base: BaseStatistics, token: int, r: float, edit: Edit) -> float:
    """log alpha of ``token`` after the edit, by the shortcut (the quantity :func:`forward_log_alpha` checks)."""
    sweep = steering_sweep(base, [token], [r], [edit], progress=False)
    return float(sweep.log_alpha_after[0, 0, 0])


@torch.no_grad()
def generate_steered(
    loaded: LoadedModel,
    prompts: Sequence[str],
    heads: dict[str, OutputHead],
    token: int,
    *,
    max_new_tokens: int = 24,
    do_sample: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Continue each prompt with the model under each head; count how often ``token`` is generated.

    Returns:
        one row per (prompt, head label): ``prompt``, ``head``, ``continuation`` (text), ``n_steered`` (count of
        ``token`` among the generated tokens), ``n_generated``.
    """
    max_new_tokens = check_positive_int("max_new_tokens", max_new_tokens)
    rows = []
    for label, head in heads.items():
        model = with_output_head(loaded.model, head)
        for prompt in prompts:
            torch.manual_seed(seed)
            encoded = loaded.tokenizer(prompt, return_tensors="pt")
            output = model.generate(
                **encoded, max_new_tokens=max_new_tokens, do_sample=do_sample, top_k=0 if do_sample else None,
                top_p=None, temperature=1.0 if do_sample else None, pad_token_id=loaded.tokenizer.pad_token_id,
            )
            generated = output[0, encoded["input_ids"].shape[1]:]
            budget.charge("generation", budget.generation_flops(model, 1, encoded["input_ids"].shape[1],
                                                                 generated.numel()),
                          tokens=generated.numel(), detail=f"{loaded.name} steered generation")
            rows.append({
                "prompt": prompt,
                "head": label,
                "continuation": loaded.tokenizer.decode(generated, skip_special_tokens=True),
                "n_steered": int((generated == token).sum()),
                "n_generated": int(generated.numel()),
            })
        del model
    return pd.DataFrame(rows)


def forward_check(
    loaded: LoadedModel,
    token_ids: torch.Tensor,
    hidden: torch.Tensor,
    head: OutputHead,
    cases: Sequence[tuple[int, float, Edit]],
) -> pd.DataFrame:
    """The shortcut against a real forward pass of the edited model, for each (token, r, edit) case.

    Args:
        token_ids: (n_windows, T) windows whose cached hidden states are ``hidden`` (n_windows, T, d).

    Returns:
        one row per case: token, r, edit, log alpha before, after by the shortcut and by the model, and the
        absolute difference of the two (nats).
    """
    base = base_statistics(hidden.reshape(-1, head.d), head, progress=False)
    rows = []
    for token, r, edit in tqdm(cases, desc="forward checks"):
        shortcut = steering_sweep(base, [token], [r], [edit], progress=False)
        forward = forward_log_alpha(loaded, edited_head(head, token, r, edit), token_ids, [token])[0]
        after = float(shortcut.log_alpha_after[0, 0, 0])
        rows.append({
            "token": token, "text": loaded.tokenizer.decode([token]), "r": r, "edit": edit.label,
            "log α before": float(shortcut.log_alpha_before[0]), "log α after (cache)": after,
            "log α after (model)": float(forward), "|difference| (nats)": abs(after - float(forward)),
        })
    return pd.DataFrame(rows)
