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
# principal component, and verify candidates by prompting the model to repeat the token and checking that its
# probability stays below 0.01. This chapter is a finding of the book, not a claim of either paper: it puts the three
# views side by side on the same tokens.
#
# **Method.** (1) Indicators from the head alone: the distance of each row to the mean unused row (first principal
# component of the centred rows removed; we use the Euclidean distance), the row norm, and the encoding's predicted
# $-\log\alpha_w = A_D\cdot E_w + B_D$ fitted as in chapter 1. The top tokens of each indicator, and random control
# tokens, are verified by a few-shot copy prompt built from token ids (the candidate is inserted as an id, never
# re-encoded): a token is *under-trained* when the model gives it less than the threshold at the answer position.
# (2) The same tokens in the other views: measured $\alpha_w$, corpus counts, chapter 5's argmax verdicts.
# (3) Chapter 4's small trained models, whose training text we know, so that "never seen in training" is a fact:
# argmax verdicts at initialisation, early and at the end.

# %% tags=["parameters"]
model = "smollm2-135m"  # offline name, Hugging Face id or local folder
revision = None  # hub revision
device = "cpu"  # where the model runs: "cpu", "cuda" or "auto"
precision = "float32"  # the model body's precision: "float32" or "bfloat16"
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

from utils import encoding as enc
from utils import undertrained as ut
from utils import undertrained_training as training
from utils.activations import compute_activations
from utils.argmax.verdicts import find_unargmaxable
from utils.figures import undertrained as figures
from utils.head import output_head
from utils.models import describe, load_model
from utils.paths import RESULTS_DIR
from utils.plotting import set_theme
from utils.results import RERUNS_DIR, glue_figure, record, record_many, record_scorecard, start_run
from utils.uncertainty import Check, exact

CHAPTER = "06_undertrained"
parameters = ut.UndertrainedParameters.from_namespace(globals())
loaded = load_model(model, revision, device=device, precision=precision)
head = output_head(loaded.model)
parameters.check_vocabulary(head.V)
start_run(CHAPTER, globals(), loaded)
set_theme()
pd.DataFrame([describe(loaded)])

# %% [markdown]
# ## 6.1 Under-trained tokens of the default model
#
# The reference set must be known to be unused without looking at the model. We take the tokens that encoding text
# can never produce; which rule applied to this tokenizer:

# %%
E = head.E.numpy().astype(np.float64)
reference, reference_rule = ut.unused_reference(loaded.tokenizer)
distance = ut.magikarp_distance(E, reference)
acts = compute_activations(loaded, corpus, "train", window_length=window_length, n_tokens=n_tokens,
                           sample_seed=sample_seed, batch_size=batch_size)
fit = enc.fit_encoding(E, acts.alpha.numpy(), seed=seed)
counts = enc.token_counts(acts.token_ids.numpy(), head.V)  # (V,) occurrences in the pass's windows
print(reference_rule)
pd.DataFrame({"token": reference, "text": [repr(loaded.tokenizer.decode([int(t)])) for t in reference]}).head(n_table)

# %% [markdown]
# Three indicators, each oriented so that a larger score is more suspicious: closeness to the unused mean (minus
# the distance), a small row norm (minus the norm), and the encoding's predicted $-\log\alpha_w$ (the rarer the
# encoding reads the token, the higher). The reference tokens are left out of every top list. The top
# {glue:text}`06_undertrained.n_candidates` of each, and {glue:text}`06_undertrained.n_control` random tokens, go to
# the copy prompt.

# %%
indicators = {"closeness to unused mean": -distance, "small row norm": -np.linalg.norm(E, axis=1),
              "predicted -log alpha": fit.predicted}
tops = {name: ut.top_tokens(score, n_candidates, reference) for name, score in indicators.items()}
pool = np.setdiff1d(np.arange(head.V), reference)
control = np.sort(np.random.default_rng(seed).choice(pool, min(n_control, len(pool)), replace=False))
prompted = np.unique(np.concatenate([*tops.values(), control, reference]))
probability = dict(zip(prompted.tolist(), ut.repetition_probabilities(loaded, prompted, batch_size=prompt_batch_size)))
verified = {token: p < threshold for token, p in probability.items()}
precision_table = ut.precision_table(indicators, verified, n_candidates, reference)
precision_table

# %% tags=["remove-input"]
control_hits = np.array([verified[int(t)] for t in control])
top_hits = np.array([verified[int(t)] for t in tops["closeness to unused mean"]])
lift, lift_interval = ut.precision_lift_interval(top_hits, control_hits, seed=seed)
n_verified = int(sum(verified[int(t)] for t in np.unique(np.concatenate(list(tops.values())))))
record_many(CHAPTER, {
    "reference_rule": (reference_rule, None, "how the unused reference set was chosen"),
    "n_reference": (len(reference), ",", "tokens in the unused reference set"),
    "n_candidates": (n_candidates, ",", "top tokens of each indicator prompted"),
    "n_control": (len(control), ",", "random control tokens prompted"),
    "threshold": (threshold, "g", "probability below which a prompted token counts as under-trained"),
    "n_prompted": (len(prompted), ",", "distinct tokens prompted"),
    "n_verified": (n_verified, ",", "distinct candidates verified as under-trained"),
    "control_rate": (float(control_hits.mean()), ".0%", "share of random control tokens verified (base rate)"),
    "reference_rate": (float(np.mean([verified[int(t)] for t in reference])), ".0%",
                       "share of the reference tokens verified"),
    "ranking": (ut.ranking_wording(precision_table), None, "which indicator's top list holds most verified tokens"),
    "lift": (lift, ".0%", "precision of the closeness indicator minus the base rate"),
    "lift_interval": (lift_interval.label(".0%"), None, "its interval (token-level bootstrap)"),
    "lift_wording": (ut.lift_wording(lift, lift_interval), None, "the lift in words"),
})

# %% [markdown]
# Of the candidates, {glue:text}`06_undertrained.n_verified` are verified as under-trained (probability below
# {glue:text}`06_undertrained.threshold`); among random tokens the share is {glue:text}`06_undertrained.control_rate`,
# and among the reference tokens themselves {glue:text}`06_undertrained.reference_rate`. Of the three indicators,
# {glue:text}`06_undertrained.ranking`. The top of the closeness indicator is
# {glue:text}`06_undertrained.lift_wording`: its precision exceeds the base rate by {glue:text}`06_undertrained.lift`,
# {glue:text}`06_undertrained.lift_interval` (an interval over tokens: the prompts do not depend on a text).
# The closest rows, decoded:

# %%
def token_rows(tokens):
    return pd.DataFrame({"token": tokens, "text": [repr(loaded.tokenizer.decode([int(t)])) for t in tokens],
                         "distance": distance[tokens], "predicted -log alpha": fit.predicted[tokens],
                         "corpus count": counts[tokens], "p(repeat)": [probability[int(t)] for t in tokens],
                         "under-trained": [verified[int(t)] for t in tokens]})


token_rows(tops["closeness to unused mean"][:n_table]).round(4)

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
                             tokens=ut.sample_tokens(head.V, max_tokens, seed), box=box, patience=patience,
                             start=start)
margin = np.full(head.V, np.nan)
margin[verdicts.tokens] = verdicts.margin / np.maximum(np.linalg.norm(verdicts.witness, axis=1), 1e-300)
views = {**indicators, "measured -log alpha": -acts.log_alpha.numpy(), "rare in corpus": -np.log1p(counts),
         "thin argmax margin": -margin}
correlations = ut.rank_agreement(views)
overlap = ut.top_overlap({k: np.nan_to_num(v, nan=-np.inf) for k, v in views.items()}, n_candidates, reference)
overlap

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
figures.plot_indicators(axes[0], distance, fit.predicted, reference, verified, seed=seed)
figures.plot_agreement(axes[1], correlations)
fig.tight_layout()
glue_figure("fig-undertrained", fig)

# %% tags=["remove-input"]
candidates = np.unique(np.concatenate(list(tops.values())))
under = np.array([t for t in candidates if verified[int(t)]], dtype=np.int64)
status = dict(zip(verdicts.tokens.tolist(), verdicts.status.tolist()))
missing = np.array([t for t in under if int(t) not in status], dtype=np.int64)  # outside chapter 5's sample
if len(missing):
    status.update(zip(missing.tolist(), find_unargmaxable(head_E, head_b, tokens=missing, box=box, patience=patience,
                                                          start=start, progress=False).status.tolist()))
under_status = np.array([status[int(t)] for t in under], dtype=str)
n_under_unarg, n_under_dup = int((under_status == "unargmaxable").sum()), int((under_status == "duplicate").sum())
record_many(CHAPTER, {
    "rho_closeness_predicted": (correlations.loc["closeness to unused mean", "predicted -log alpha"], ".2f",
                                "rank correlation: closeness to unused mean vs predicted -log alpha"),
    "rho_predicted_measured": (correlations.loc["predicted -log alpha", "measured -log alpha"], ".2f",
                               "rank correlation: predicted vs measured -log alpha"),
    "rho_closeness_margin": (correlations.loc["closeness to unused mean", "thin argmax margin"], ".2f",
                             "rank correlation: closeness vs thin argmax margin"),
    "overlap_closeness_predicted": (int(overlap.loc["closeness to unused mean", "predicted -log alpha"]), ",",
                                    "tokens shared by the two top lists"),
    "n_under": (len(under), ",", "verified under-trained candidates"),
    "under_unargmaxable": (n_under_unarg, ",", "verified under-trained candidates that are unargmaxable"),
    "under_duplicate": (n_under_dup, ",", "verified under-trained candidates whose row has an identical twin"),
    "under_geometry": (ut.geometry_wording(n_under_unarg, n_under_dup), None, "what the geometry says, in words"),
    "verdict_tokens": (len(verdicts), ",", "tokens with chapter 5's verdicts"),
})

# %% [markdown]
# ```{glue:figure} fig-undertrained
# :name: fig-undertrained
# Left: every token's distance to the mean unused row against the encoding's predicted $-\log\alpha$ (grey: a
# sample of the vocabulary; coloured: the prompted tokens, red when the model failed to repeat them; crosses: the
# reference). Right: rank correlations between the views, each oriented so that large means rarely or never said.
# The distance is the method of Land & Bartolo as described above; the encoding is {cite}`cho2025understanding`'s.
# ```
#
# Closeness to the unused mean and the predicted $-\log\alpha$ have a rank correlation of
# {glue:text}`06_undertrained.rho_closeness_predicted` over the vocabulary, and their top
# {glue:text}`06_undertrained.n_candidates` share {glue:text}`06_undertrained.overlap_closeness_predicted` tokens; the
# encoding's prediction and the measured $-\log\alpha$ correlate at
# {glue:text}`06_undertrained.rho_predicted_measured`. The thin-margin view correlates with closeness at
# {glue:text}`06_undertrained.rho_closeness_margin` (over the {glue:text}`06_undertrained.verdict_tokens` tokens with
# a verdict). Of the {glue:text}`06_undertrained.n_under` verified under-trained candidates,
# {glue:text}`06_undertrained.under_unargmaxable` are unargmaxable and {glue:text}`06_undertrained.under_duplicate`
# have an identical twin row: {glue:text}`06_undertrained.under_geometry`.
#
# ## 6.3 Reachability through training
#
# Chapter 4 trained small GPT-2-tokenizer models ($d$ far below the 50,257-token vocabulary) on a known text, so
# that the tokens training never showed are known. For each size, the argmax verdicts of a seeded sample of tokens
# (half never seen in training, as far as there are) at initialisation, early and at the end.

# %%
results_root = Path(os.environ.get("LOGLINEAR_RESULTS", RERUNS_DIR))
located = training.locate_trained_runs([results_root, RESULTS_DIR])
print("chapter 4's models:", "not available (chapter 4 has not run)" if located is None else located[2])
reach_tables, changes, recovery = [], {}, []
finals = {} if located is None else located[0]
train_counts = training.training_counts(next(iter(finals.values())), located[1]) if finals else None  # all sizes
for size, final in finals.items():
    checkpoints = training.run_checkpoints(final)
    stages = training.pick_stages(list(checkpoints), early_step)
    E_end = training.checkpoint_head(checkpoints[stages["end"]])[0]
    ref_trained, _ = ut.unused_reference(training.checkpoint_tokenizer(final))
    sample = training.seen_unseen_sample(train_counts, dynamics_max_tokens, seed)
    stage_verdicts = {stage: find_unargmaxable(*training.checkpoint_head(checkpoints[step]), tokens=sample, box=box,
                                               patience=patience, start=start, progress=False)
                      for stage, step in stages.items()}
    reach_tables.append(training.reachability_frame(stage_verdicts, train_counts).assign(size=size))
    changes[size] = training.created_removed(stage_verdicts["initialisation"], stage_verdicts["end"])
    recovery.append({"size": size, **training.unseen_recovery(ut.magikarp_distance(E_end, ref_trained), train_counts,
                                                              ref_trained, n_candidates)})
reach = pd.concat(reach_tables, ignore_index=True) if reach_tables else pd.DataFrame()
reach

# %% tags=["remove-input"]
created = sum(c["created"] for c in changes.values())
removed = sum(c["removed"] for c in changes.values())
recovery = pd.DataFrame(recovery)
record_many(CHAPTER, {
    "dyn_sizes": (", ".join(changes) or "none", None, "chapter 4's sizes tested"),
    "dyn_tested": (max([c["tested"] for c in changes.values()], default=0), ",", "tokens tested per checkpoint"),
    "dyn_unargmaxable": (int(reach.unargmaxable.sum()) if len(reach) else 0, ",",
                         "unargmaxable verdicts over every size, stage and group"),
    "dyn_created": (created, ",", "tokens that became unargmaxable between initialisation and the end"),
    "dyn_wording": (training.training_effect_wording(created, removed), None, "what training did, in words"),
    "recovery_precision": (float(recovery.precision.min()) if len(recovery) else float("nan"), ".0%",
                           "smallest precision (over sizes) of the closest rows at finding never-seen tokens"),
    "recovery_base": (float(recovery.base_rate.max()) if len(recovery) else float("nan"), ".0%",
                      "largest share of never-seen tokens in the vocabulary (the base rate)"),
    "recovery_auc": (float(recovery.auc.min()) if len(recovery) else float("nan"), ".2f",
                     "smallest AUC of closeness at separating never-seen from seen tokens"),
})
recovery

# %% [markdown]
# Sizes tested: {glue:text}`06_undertrained.dyn_sizes`, {glue:text}`06_undertrained.dyn_tested` tokens per
# checkpoint (a seeded sample: the full vocabulary at three checkpoints of each size would cost minutes). Over every
# size, stage and group there are {glue:text}`06_undertrained.dyn_unargmaxable` unargmaxable verdicts;
# {glue:text}`06_undertrained.dyn_wording`. The table's last column gives the mean number of reflections the fast
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
# alone, and they remain argmaxable". Three checks: the precision of the closeness indicator's top list minus the
# base rate of random tokens, above 0 (interval over tokens); the verified under-trained tokens of the default model
# that cannot win strictly (unargmaxable, or a row shared exactly with another token), at most 0 (exact: a property
# of the head); the tokens that training made unargmaxable in
# chapter 4's models, at most 0 (exact for the tested sample).

# %% tags=["remove-input"]
checks = [
    Check("closeness to the unused mean: precision of its top list minus the random base rate", lift, lift_interval,
          0.0, "above", ".2f"),
    Check("verified under-trained tokens that cannot win strictly (unargmaxable or duplicate rows)",
          float(n_under_unarg + n_under_dup), exact(n_under_unarg + n_under_dup), 0.0, "below", ".0f"),
]
if changes:
    checks.append(Check("tokens made unargmaxable by training (chapter 4's models, sample)", float(created),
                        exact(created), 0.0, "below", ".0f"))
record(CHAPTER, "scorecard_kind", "a finding of the book (not a claim of the papers)", description="what is scored")
record_scorecard(CHAPTER, f"{n_verified} of {len(candidates)} candidates of {model} under-trained "
                          f"(random tokens: {control_hits.mean():.0%}); of those, "
                          f"{n_under_unarg} unargmaxable, {n_under_dup} duplicate rows",
                 checks)

# %% [markdown]
# Verdict (a finding of the book): **{glue:text}`06_undertrained.verdict`**:
# {glue:text}`06_undertrained.verdict_reason`.
#
# ## Summary and caveats
#
# - The reference set is computed from the tokenizer ({glue:text}`06_undertrained.reference_rule`); a tokenizer with
#   few such tokens gives a noisy mean.
# - Prompting verifies *failure to repeat* in one few-shot template; a token the model cannot repeat in this
#   template may still be said elsewhere, and a threshold of {glue:text}`06_undertrained.threshold` on one prompt is
#   a convention. Random tokens fail at the base rate {glue:text}`06_undertrained.control_rate`, which is what the
#   precision is compared with.
# - Argmaxable means some input reaches the token; under-trained means the model's actual inputs do not. The two
#   answer different questions, which is what the section on agreement measures.
# - Chapter 4's models are small and briefly trained; their verdicts come from a seeded sample of tokens.
