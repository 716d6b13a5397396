# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Tokens a model can hardly or never say
#
# The two papers meet at the tokens of lowest probability. In the log-linear encoding {cite}`cho2025understanding`, a
# token's averaged probability $\alpha_w$ is written along one direction $A_D$ of its output-embedding row $E_w$; in
# the argmax geometry {cite}`grivas2022lowrank`, some rows can never win. A third line of work finds *under-trained*
# ("glitch") tokens from the output embedding alone: Land & Bartolo ("Fishing for Magikarp", EMNLP 2024) rank tokens
# by how close their unembedding row is to the mean of the rows of known-unused tokens, after removing the first
# principal component, and verify candidates by prompting the model to repeat the token in several prompt templates
# and checking that its largest probability stays below 0.01. This chapter is a finding of the book, not a claim of
# either paper: it puts the three views side by side on the same tokens.
#
# **Method.** (1) Indicators from the head alone: the distance of each row to the mean unused row (first principal
# component of the centred rows removed; the book scores the Euclidean distance and compares it with the cosine
# distance Magikarp ranks by), the row norm, and the encoding's predicted $-\log\alpha_w = A_D\cdot E_w + B_D$
# fitted as in chapter 1. The top tokens of each indicator, and random control tokens, are verified by copy prompts
# built from token ids (the candidate is inserted as an id, never re-encoded), in three templates of this book's
# wording: a token is *under-trained* when the largest probability the model gives it at the answer position, over
# the templates, is below the threshold.
# (2) The same tokens in the other views: measured $\alpha_w$, corpus counts, chapter 5's argmax verdicts.
# (3) Chapter 4's small trained models, whose training text we know, so that "never seen in training" is a fact:
# argmax verdicts at initialisation, early and at the end.

# %% tags=["parameters"]
model = "smollm2-135m"  # offline name, Hugging Face id or local folder
revision = None  # hub revision
device = "cpu"  # where the model runs: "cpu", "cuda" or "auto"
precision = "float32"  # the body's precision: "float32", "bfloat16" (as asked) or "auto" (bf16 if faster here)
n_candidates = 32  # top tokens of each indicator verified by prompting (at most V)
n_control = 48  # random tokens verified by prompting: the base rate (at most V)
threshold = 0.01  # under-trained: probability at the answer position below this, in (0, 1)
seed = 0  # control tokens, token samples
corpus = "wikipedia"  # chapter 1's cached pass (the encoding fit, measured alpha, corpus counts)
window_length = 128  # as in chapter 1
n_tokens = 32768  # as in chapter 1
sample_seed = 0  # as in chapter 1
batch_size = 8  # windows per forward pass of the cached pass (speed only)
prompt_batch_size = 32  # copy prompts per forward pass (speed only)
max_tokens = None  # chapter 5's token sample for its verdicts (None: the whole vocabulary, as chapter 5)
box = 100.0  # as in chapter 5
patience = 50  # as in chapter 5
start = "centred"  # as in chapter 5
dynamics_max_tokens = 1024  # tokens tested per checkpoint of chapter 4's models (half never seen in training)
early_step = 16  # the "early" checkpoint: the saved step nearest this
n_table = 12  # rows of the token tables

# %% tags=["hide-input"]
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from utils.encoding.fit import fit_encoding, token_counts
from utils.activations import compute_activations
from utils.argmax.verdicts import find_unargmaxable
from utils.figures import undertrained as figures
from utils.head import output_head
from utils.models import describe, load_model
from utils.paths import RESULTS_DIR
from utils.plotting import set_theme
from utils.results import RERUNS_DIR, glue_figure, start_run

# %% tags=["hide-input"]
from utils.undertrained.geometry import (duplicate_rows, nearest_distinct_steps, quantisation_grid, relative_margin,
                                         strict_win_losses)
from utils.undertrained.indicators import (CLOSENESS, control_tokens, head_indicators, magikarp_distance,
                                           precision_table, rank_agreement, sample_tokens, token_table, top_overlap,
                                           top_tokens, unused_reference)
from utils.undertrained.prompting import verify_by_prompting
from utils.undertrained.records import record_agreement, record_prompting, record_quantisation, record_reachability
from utils.undertrained.scorecard import headline_checks, scorecard_figure
from utils.undertrained.training import locate_trained_runs, reachability
from utils.undertrained.wording import training_bound_wording

# %% tags=["hide-input"]
from utils.undertrained.parameters import UndertrainedParameters

CHAPTER = "06_undertrained"
parameters = UndertrainedParameters.from_namespace(globals())  # every knob that needs no model, checked before any work
loaded = load_model(model, revision, device=device, precision=precision)
parameters.check_model(loaded)
head = output_head(loaded.model)
rec = start_run(CHAPTER, globals(), loaded)
set_theme()
pd.DataFrame([describe(loaded)])

# %% [markdown]
# ## 6.1 Under-trained tokens of the default model
#
# The reference set must be known to be unused without looking at the model. We take the tokens that ordinary text
# can never produce (a token's text, encoded as plain text, gives other ids, or its bytes include one that no UTF-8
# text contains), and leave out the chat and end-of-text markers, which an instruction-tuned model is trained to
# say. The rule as it applied to this tokenizer:

# %%
E = head.E.numpy().astype(np.float64)
reference, reference_rule = unused_reference(loaded.tokenizer)
distance = magikarp_distance(E, reference)  # Euclidean
cosine = magikarp_distance(E, reference, "cosine")
acts = compute_activations(loaded, corpus, "train", window_length=window_length, n_tokens=n_tokens,
                           sample_seed=sample_seed, batch_size=batch_size)
fit = fit_encoding(E, acts.alpha.numpy(), seed=seed)
counts = token_counts(acts.token_ids.numpy(), head.V)  # (V,) occurrences in the pass's windows
print(reference_rule)

# %% [markdown]
# Four indicators, each oriented so that a larger score is more suspicious: closeness to the unused mean (minus
# the Euclidean distance, the one the scorecard scores), the same by cosine distance, a small row norm (minus the
# norm), and the encoding's predicted $-\log\alpha_w$ (the rarer the encoding reads the token, the higher). The
# reference tokens are left out of every top list. The top {glue:text}`06_undertrained.n_candidates` of each, and
# {glue:text}`06_undertrained.n_control` random tokens, go to the {glue:text}`06_undertrained.n_templates` copy
# templates.

# %%
indicators = head_indicators(E, distance, fit.predicted, cosine)  # name -> (V,) score, larger: more suspicious
tops = {name: top_tokens(score, n_candidates, reference) for name, score in indicators.items()}
control = control_tokens(head.V, n_control, reference, seed)
prompting = verify_by_prompting(loaded, tops, control, reference, threshold, batch_size=prompt_batch_size)
top_precision = precision_table(indicators, prompting.verified, n_candidates, reference)
top_precision

# %% tags=["remove-input"]
lift, lift_interval = prompting.lift(seed=seed)  # closeness's top list against the random control
record_prompting(rec, prompting, reference_rule, top_precision, lift, lift_interval)

# %% [markdown]
# The reference tokens, each with its probability in every copy template and the largest of them:

# %%
token_table(loaded.tokenizer, reference, prompting=prompting, per_template=True)

# %% [markdown]
# Of the candidates, {glue:text}`06_undertrained.n_verified` are verified as under-trained (largest probability over
# the templates below {glue:text}`06_undertrained.threshold`); among random tokens the share is
# {glue:text}`06_undertrained.control_rate`, and among the reference tokens themselves
# {glue:text}`06_undertrained.reference_rate`. Of the four indicators,
# {glue:text}`06_undertrained.ranking`. The top of the closeness indicator is
# {glue:text}`06_undertrained.lift_wording`: its precision exceeds the base rate by {glue:text}`06_undertrained.lift`,
# {glue:text}`06_undertrained.lift_interval` (an interval over tokens: the prompts do not depend on a text). By
# cosine distance, as Magikarp ranks, the top list's precision is {glue:text}`06_undertrained.precision_cosine`
# (Euclidean: {glue:text}`06_undertrained.precision_euclidean`). The closest rows, decoded:

# %%
per_token = {"distance": distance, "predicted -log alpha": fit.predicted, "corpus count": counts}
token_table(loaded.tokenizer, tops[CLOSENESS][:n_table], per_token, prompting).round(4)

# %% [markdown]
# ## 6.2 How the views agree
#
# The same tokens in the other chapters' views: the measured $-\log\alpha_w$ of the cached pass, the corpus count,
# and chapter 5's argmax verdicts (read from its cache; the relative margin is the witness's margin over its length,
# the fast test's closest calls are the smallest). Rank correlations over the whole vocabulary, each view oriented
# as a suspicion score (large: rarely or never said).

# %%
head_E, head_b = head.E.numpy(), None if head.b is None else head.b.numpy()  # as chapter 5: its cache key
verdicts = find_unargmaxable(head_E, head_b,
                             tokens=sample_tokens(head.V, max_tokens, seed), box=box, patience=patience,
                             start=start, device=device)
views = {**indicators, "measured -log alpha": -acts.log_alpha.numpy(), "rare in corpus": -np.log1p(counts),
         "thin argmax margin": -relative_margin(verdicts, head.V)}
correlations = rank_agreement(views)
overlap = top_overlap({k: np.nan_to_num(v, nan=-np.inf) for k, v in views.items()}, n_candidates, reference)
overlap

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
figures.plot_indicators(axes[0], distance, fit.predicted, reference, prompting.verified, seed=seed)
figures.plot_agreement(axes[1], correlations)
fig.tight_layout()
glue_figure("fig-undertrained", fig)

# %% tags=["remove-input"]
n_under_unarg, n_under_dup = strict_win_losses(prompting.under, verdicts, head_E, head_b, box=box,
                                               patience=patience, start=start)
grid = quantisation_grid(head_E)  # is the head stored on a GGUF Q8_0 grid?
quantised = grid["on_grid"] == 1.0
ties = nearest_distinct_steps(head_E, np.intersect1d(prompting.under, duplicate_rows(head_E)))
record_agreement(rec, correlations, overlap, len(prompting.under), n_under_unarg, n_under_dup, len(verdicts),
                 quantised)
ties

# %% [markdown]
# ```{glue:figure} fig-undertrained
# :name: fig-undertrained
# Left: every token's distance to the mean unused row against the encoding's predicted $-\log\alpha$ (grey: a
# sample of the vocabulary; coloured: the prompted tokens, red when the model failed to repeat them; crosses: the
# reference). Right: rank correlations between the views, each oriented so that large means rarely or never said.
# The distance is the method of Land & Bartolo as described above; the encoding is {cite}`cho2025understanding`'s.
# ```
#
# The two closeness scores, Euclidean and cosine, have a rank correlation of
# {glue:text}`06_undertrained.rho_euclidean_cosine` over the vocabulary, and their top
# {glue:text}`06_undertrained.n_candidates` share {glue:text}`06_undertrained.overlap_euclidean_cosine` tokens.
# Closeness to the unused mean and the predicted $-\log\alpha$ have a rank correlation of
# {glue:text}`06_undertrained.rho_closeness_predicted` over the vocabulary, and their top
# {glue:text}`06_undertrained.n_candidates` share {glue:text}`06_undertrained.overlap_closeness_predicted` tokens; the
# encoding's prediction and the measured $-\log\alpha$ correlate at
# {glue:text}`06_undertrained.rho_predicted_measured`. The thin-margin view correlates with closeness at
# {glue:text}`06_undertrained.rho_closeness_margin` (over the {glue:text}`06_undertrained.verdict_tokens` tokens with
# a verdict). Of the {glue:text}`06_undertrained.n_under` verified under-trained candidates,
# {glue:text}`06_undertrained.under_unargmaxable` are unargmaxable and {glue:text}`06_undertrained.under_duplicate`
# have an identical twin row: {glue:text}`06_undertrained.under_geometry`. The table above gives, for each
# duplicated candidate, its twins and the nearest row stored differently, in steps of the quantisation; the caveat
# in words: {glue:text}`06_undertrained.quant_caveat`.
#
# ## 6.3 Reachability through training
#
# Chapter 4 trained small GPT-2-tokenizer models ($d$ far below the 50,257-token vocabulary) on a known text, so
# that the tokens training never showed are known. For each size, the argmax verdicts of a seeded sample of tokens
# (half never seen in training, as far as there are) at initialisation, early and at the end.

# %%
results_root = Path(os.environ.get("LOGLINEAR_RESULTS", RERUNS_DIR))
located = locate_trained_runs([results_root, RESULTS_DIR])
print("chapter 4's models:", "not available (chapter 4 has not run)" if located is None else located[2])
reach, changes, recovery = reachability(located, early_step=early_step, n_tokens=dynamics_max_tokens,
                                        seed=seed, box=box, patience=patience, start=start, k=n_candidates)
reach

# %% tags=["remove-input"]
float_duplicates = int(recovery.duplicates.max()) if len(recovery) else None  # chapter 4's float32 heads
record_reachability(rec, reach, changes, recovery)
record_quantisation(rec, grid, ties, float_duplicates)
rec("dyn_bound_wording", training_bound_wording(changes), None, "what the sample says of the whole vocabulary")
recovery

# %% [markdown]
# Sizes tested: {glue:text}`06_undertrained.dyn_sizes`, {glue:text}`06_undertrained.dyn_tested` tokens per
# checkpoint (a seeded sample: the full vocabulary at three checkpoints of each size would cost minutes). Over every
# size, stage and group there are {glue:text}`06_undertrained.dyn_unargmaxable` unargmaxable verdicts;
# {glue:text}`06_undertrained.dyn_wording`. Over the vocabulary: {glue:text}`06_undertrained.dyn_bound_wording`. The
# table's last column gives the mean number of reflections the fast
# test needed, per stage and group.
#
# The same models give the head-only indicator a ground truth: a token never seen in training is under-trained by
# construction. Its closest {glue:text}`06_undertrained.n_candidates` rows (reference set as above, for the GPT-2
# tokenizer) are never-seen tokens with a precision of at least {glue:text}`06_undertrained.recovery_precision`,
# against a base rate of at most {glue:text}`06_undertrained.recovery_base`; the AUC of closeness for never-seen
# against seen tokens is at least {glue:text}`06_undertrained.recovery_auc`.
#
# ## Scorecard
#
# A finding of the book, not a claim of the papers: "under-trained tokens can be found from the output embedding
# alone, and they remain argmaxable". Three checks, each saying what its interval is over: the precision of the
# closeness indicator's top list minus the base rate of random tokens, above 0 (interval over tokens: the top list
# and the random controls resampled); the verified under-trained tokens of the default model that cannot win
# strictly (unargmaxable, or a row shared exactly with another token), at most 0 (a property of the head, exact for
# a float head; for a head de-quantised from Q8_0 its interval runs from none to all of the duplicates being
# rounding ties); the share of sampled tokens that training made unargmaxable in chapter 4's models, at most 0
# (interval: the exact binomial bound over the sampled tokens, so that a sample with none found stays
# inconclusive).

# %% tags=["remove-input"]
checks = headline_checks(lift, lift_interval, n_under_unarg, n_under_dup, quantised=quantised,
                         changes=changes)
rec("scorecard_kind", "a finding of the book (not a claim of the papers)", description="what is scored")
rec.scorecard(scorecard_figure(model, prompting, n_under_unarg, n_under_dup), checks)

# %% [markdown]
# Verdict (a finding of the book): **{glue:text}`06_undertrained.verdict`**:
# {glue:text}`06_undertrained.verdict_reason`.
#
# ## Summary and caveats
#
# - The reference set is computed from the tokenizer ({glue:text}`06_undertrained.reference_rule`); a tokenizer with
#   few such tokens gives a noisy mean.
# - Prompting verifies *failure to repeat* in {glue:text}`06_undertrained.n_templates` templates, at the answer
#   position only; a token the model cannot repeat in these templates may still be said elsewhere, and a threshold
#   of {glue:text}`06_undertrained.threshold` on the largest of the probabilities is a convention. Random tokens
#   fail at the base rate {glue:text}`06_undertrained.control_rate`, which is what the
#   precision is compared with.
# - Argmaxable means some input reaches the token; under-trained means the model's actual inputs do not. The two
#   answer different questions, which is what the section on agreement measures.
# - Chapter 4's models are small and briefly trained; their verdicts come from a seeded sample of tokens, which bounds
#   the share of the vocabulary but cannot show that no token became unargmaxable.
# - The default head is the GGUF file's, de-quantised: {glue:text}`06_undertrained.quant_caveat`.
