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
# # 3. Deleting output-embedding dimensions
#
# **Claim** {cite}`cho2025understanding`. The log-linear encoding $-\log\alpha_w \approx A_D\cdot E_w + B_D$ is
# sparse, which "suggests that a large number of dimensions in the output embedding do not contribute to causal
# language modeling"; the paper deletes "the output-unrelated dimensions" and finds that "more than 30% of the
# dimensions can be deleted without significant movement in output distribution and sequence generation" (its
# abstract). We read "output-unrelated" as the dimensions with the smallest $|A_{D,i}|$ and call that order the
# paper's criterion below; the texts we have do not spell out the paper's exact selection rule, its measure of
# movement or its thresholds, so those are our choices.
#
# **Method.** Deleting dimensions $\bar K$ of the head leaves the logits $h_{K} E_{K}^\top + b$: the kept columns of
# $E$ read the same coordinates of the final hidden state $h$, the deleted ones stop contributing. Every measure below
# except generation is computed from the cached hidden states of held-out text, without running the model again, and
# softmax is taken chunk by chunk. We ask three questions the claim leaves open:
#
# - **By which measure?** We read "movement in output distribution" as a change of the *averaged* distribution $\alpha$
#   before and after (we use the Jensen-Shannon divergence). A head can keep $\alpha$ in place while changing what it
#   predicts at each position, so we also measure the mean per-position KL divergence, the share of positions whose most
#   probable token is unchanged (top-1 agreement), perplexity, and text sampled from a real pruned model (MAUVE
#   {cite}`pillutla2021mauve`, repetition, diversity).
# - **How far does it hold?** A grid of fractions of $d$ up to {glue:text}`03_pruning.max_fraction`, on
#   in-distribution (Wikipedia) and
#   out-of-distribution (Shakespeare, the King James Bible) text, for short and long contexts.
# - **Does a better criterion delete more?** Besides the paper's criterion as we read it (smallest $|A_i|$) and random
#   dimensions, three criteria (smallest first): $|A_i|\,\mathrm{sd}_w(E_{wi})$ (the part of the encoding that varies
#   through dimension $i$: a large coefficient on a dimension along which tokens barely differ moves little),
#   $\overline{|h_i|}\,\mathrm{sd}_w(E_{wi})$ (an output-aware saliency: the typical logit change that dimension $i$
#   makes across the vocabulary), and a Fisher saliency $\overline{h_i^2\,\mathrm{Var}_{w\sim p}(E_{wi})}$, twice the
#   second-order estimate of the per-position KL from deleting dimension $i$ alone (softmax ignores the part of a logit
#   shift shared by all tokens, so what matters is its variance under the model's own distribution). The hidden-state
#   criteria read the *training* split; every measurement is on held-out test splits.
# - **Are the model's coordinates special?** Logits do not change under a rotation $Q$ of the embedding space
#   ($hQ\,(EQ)^\top = hE^\top$), so "deleting dimensions" says something about the model only if its coordinates are
#   privileged. Section 3.7 deletes the same number of directions of random bases and of the principal directions of
#   $E$, and compares.

# %% tags=["parameters"]
model = "smollm2-135m"  # offline name, Hugging Face id or local folder
revision = None  # hub revision, e.g. "step1000" for Pythia
device = "cpu"  # where the model runs: "cpu", "cuda" or "auto"
precision = "float32"  # the body's precision: "float32", "bfloat16" (as asked) or "auto" (bf16 if faster here)
fit_corpus = "wikipedia"  # A_D is fitted on its train split; the hidden-state criteria read it too
corpora = ["wikipedia", "shakespeare", "bible"]  # test splits measured; the first is in-distribution
window_length = 128  # tokens per input window (shared with chapter 1)
n_tokens = 32768  # tokens of the training pass (shared with chapter 1)
n_tokens_test = 8192  # tokens of each test-split pass (shared with chapter 1)
sample_seed = 0  # seed of the windows drawn across each corpus split
batch_size = 8
test_fraction = 0.2  # share of the vocabulary held out of the fit of A
seed = 0  # seed of the fit's token split, of every position sample and of the bootstrap over texts
criteria = ["abs_A", "abs_A_spread", "h_spread", "fisher", "random"]  # see utils.pruning.criteria.CRITERIA
random_seeds = [0, 1, 2, 3, 4]  # one random order per seed
saliency_positions = 2048  # training positions read by the hidden-state criteria
fractions = [0.0, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]  # shares of d deleted
n_positions = 1024  # positions sampled per test corpus (sweep, checks) and of training text (choice of criterion)
chunk_size = 1024  # positions per softmax chunk
short_max = 32  # "short" context: at most this many tokens
long_min = 97  # "long" context: at least this many tokens
js_threshold = 0.01  # nats: JS divergence of alpha counted as "no significant movement"
top1_threshold = 0.9  # top-1 agreement counted as "the same predictions"
perplexity_threshold = 1.1  # perplexity ratio counted as "no loss of quality"
mauve_saturation = 0.95  # MAUVE at or above this for every head, the full model included, is read as saturation
paper_fraction = 0.3  # the abstract's claim: "more than 30%" can be deleted
basis_random_seeds = [0, 1, 2]  # random orthogonal bases of the basis control (section 3.7)
basis_positions = 512  # held-out positions of the basis control (the first of the sweep's seeded sample)
basis_fractions = [0.1, 0.3, 0.5]  # shares of d deleted in the basis control (the paper's share is added)
basis_top1_margin = 0.02  # "privileged": top-1 agreement of the coordinates beats random bases by at least this
basis_js_ratio = 0.5  # "privileged": JS(alpha) of the coordinates at most this share of the random bases'
n_boot_texts = 200  # bootstrap resamples of held-out documents (the scorecard's intervals over texts)
n_prompts = 32  # prompts for generation (MAUVE is exploratory: a check would need 128 or more per side)
prompt_length = 32  # tokens per prompt
max_new_tokens = 24  # tokens sampled per continuation
generation_fractions = [0.1, 0.3]  # fractions at which pruned models generate (the one nearest paper_fraction
# is the one MAUVE is quoted at)
top_p = 1.0  # nucleus sampling threshold (1.0: sample the head's whole distribution)
temperature = 1.0
reference_seed = 0  # sampling seed of the full model's reference texts
generation_seed = 1  # sampling seed of every compared generated set (full and pruned)
mauve_pooling = "mean"  # "mean" or "last": pooling of the model's hidden states into MAUVE features
mauve_seeds = [0, 1, 2]  # k-means seeds MAUVE is averaged over (their spread is not an interval over texts)
n_examples = 2  # continuations shown as text
generation_batch_size = 32  # prompts sampled at once
generation_threads = None  # torch threads while sampling: None keeps torch's default (all cores); 1 helps on busy cores

# %% tags=["hide-input"]
import time

import numpy as np
import pandas as pd

from utils.activations import compute_activations
from utils.compare import compare_heads, js_divergence
from utils.encoding.fit import fit_encoding
from utils.figures import pruning as figures
from utils.head import OutputHead
from utils.models import describe, load_model
from utils.plotting import set_theme
from utils.results import glue_figure, start_run

# %% tags=["hide-input"]
from utils.pruning import basis_control, records
from utils.pruning.scorecard import headline_checks
from utils.pruning.criteria import CRITERION_LABELS, criterion_orders, deletion_overlap, dimension_scores
from utils.pruning.criteria import keep_columns, n_deleted
from utils.pruning.generation import generation_study, mauve_buckets, mauve_is_saturated
from utils.pruning.generation import example_texts, mauve_saturation_text
from utils.pruning.heads import mean_compensated_head
from utils.pruning.parameters import PruningParameters
from utils.pruning.sweep import choose_criterion, js_between_halves, largest_safe_fraction, subsample_positions
from utils.pruning.sweep import sweep_activations
from utils.pruning.wording import compare_criteria_text, compensation_text, percent
from utils.uncertainty import few_groups_factor

# %% tags=["remove-input"]
CHAPTER = "03_pruning"
parameters = PruningParameters.from_namespace(globals())  # every knob that needs no model, checked before any work
fractions, generation_fractions, basis_fractions = parameters.grids.values()  # sorted, without repeats
loaded = load_model(model, revision, device=device, precision=precision)
parameters.check_model(loaded)
rec = start_run(CHAPTER, globals(), loaded)
THRESHOLDS = {"js_alpha": ("below", js_threshold), "top1_agreement": ("above", top1_threshold),
              "perplexity_ratio": ("below", perplexity_threshold)}
set_theme()

# %%
pd.DataFrame([describe(loaded)])

# %% [markdown]
# ## 3.1 The criteria
#
# $A_D$ is fitted exactly as in chapter 1, on the training split. Each criterion scores the $d$ dimensions; the
# lowest-scoring are deleted first. The training text: {glue:text}`03_pruning.train_text`.

# %%
train = compute_activations(loaded, fit_corpus, "train", window_length=window_length, n_tokens=n_tokens,
                            sample_seed=sample_seed, batch_size=batch_size)
head = train.head
fit = fit_encoding(head.E.numpy(), train.alpha.numpy(), test_fraction=test_fraction, seed=seed)
saliency_index = subsample_positions(*train.token_ids.shape, saliency_positions, seed)
saliency_hidden = train.hidden_flat[saliency_index]
scores = pd.DataFrame({c: dimension_scores(c, head.E, fit.A, saliency_hidden, b=head.b).numpy()
                       for c in criteria if c != "random"})
orders = criterion_orders(criteria, head.E, random_seeds=random_seeds, scores=dict(scores.items()))
scores.rank().corr().round(2).rename_axis("Spearman correlation of scores")

# %% tags=["remove-input"]
rec("train_text", train.describe(), description="the training pass (fit of A, hidden-state criteria)")
rec("fit_r2", fit.r2, ".3f", "held-out R² of the fit of A used for deletion")
rec("d", head.d, description="output embedding dimension")

# %%
share = paper_fraction
overlap = deletion_overlap(orders, scores.columns, n_deleted(head.d, share))
fig = figures.criteria_figure(scores, overlap, share)
glue_figure("fig-criteria", fig)

# %% [markdown]
# ```{glue:figure} fig-criteria
# :name: fig-criteria
# Left: each dimension's rank under the other criteria against its rank by $|A_i|$ (the paper's criterion). Right:
# how many of the dimensions the paper's criterion deletes first (the paper's fraction of $d$) each criterion also
# deletes
# first (dotted: the share two unrelated orders would have in common). The criteria agree where the points sit on the
# diagonal.
# ```
#
# **Which criterion is "best" is decided here, on training text.** The deletion sweep of section 3.2 is run once more
# on {glue:text}`03_pruning.selection_positions` positions of the training pass (a seeded sample that avoids the
# positions the hidden-state criteria were scored on), and the criterion with the highest top-1 agreement averaged
# over the grid of fractions is taken as the "best criterion" for the rest of the chapter:
# {glue:text}`03_pruning.best_criterion`. The held-out measurements below only score that choice; none of them
# takes part in it.

# %%
best, selection = choose_criterion(train, orders, fractions, n_positions=n_positions, seed=seed,
                                   exclude=saliency_index, chunk_size=chunk_size)
rec("best_criterion", CRITERION_LABELS[best],
    description="criterion with the highest mean top-1 agreement over the grid, chosen on training text")
rec("selection_positions", int(selection.n_positions.iloc[0]), fmt=",",
    description="training positions the best criterion is chosen on")
selection.rename(index=CRITERION_LABELS).rename_axis("chosen on training text").round(4)

# %% [markdown]
# ## 3.2 Deletion curves: the averaged distribution and the per-position distributions
#
# For each criterion and fraction, the pruned head is compared with the full head on a seeded sample of
# positions of each test split (the sweep obtains every pruned head's logits incrementally from the full ones, so a
# whole curve costs about one head evaluation; see `utils.pruning.sweep.deletion_sweep`). The held-out texts:
# {glue:text}`03_pruning.test_texts`.

# %%
started = time.perf_counter()
tests = {name: compute_activations(loaded, name, "test", window_length=window_length, n_tokens=n_tokens_test,
                                   sample_seed=sample_seed, batch_size=batch_size) for name in corpora}
sweep = pd.concat([sweep_activations(acts, orders, fractions, n_positions=n_positions, seed=seed,
                                     short_max=short_max, long_min=long_min, chunk_size=chunk_size)
                   for acts in tests.values()], ignore_index=True)
sweep_seconds = time.perf_counter() - started
in_distribution = corpora[0]
main = sweep[(sweep.corpus == in_distribution) & (sweep.group == "all")]
# scales for JS of alpha under the full head: two halves of the held-out text at the sweep's number of positions
# (same context lengths in both), and the whole passes of the other corpora
js_halves = js_between_halves(tests[in_distribution], n_positions=n_positions, seed=seed, chunk_size=chunk_size)
js_corpora = {name: js_divergence(tests[in_distribution].alpha, acts.alpha)
              for name, acts in tests.items() if name != in_distribution}
halves_safe = largest_safe_fraction(main, {"js_alpha": ("below", js_halves)}).set_index("criterion")
main.pivot_table(index="fraction", columns="criterion", values=["js_alpha", "top1_agreement"]).round(4)

# %% tags=["remove-input"]
n_sweep_positions = int(sweep[(sweep.group == "all")].n_positions.iloc[0])
records.record_sweep(rec, tests, n_sweep_positions, fractions, len(orders), js_halves, halves_safe, js_corpora)

# %%
fig = figures.curves_figure(main, ["js_alpha", "mean_kl", "top1_agreement"], thresholds=THRESHOLDS, width=7, height=3)
fig.axes[0].axhline(js_halves, color="grey", ls="--", lw=0.8)
fig.axes[0].annotate("two halves of the test text", (100 * fractions[1], js_halves), ha="left", va="bottom",
                     fontsize=8, color="grey")
glue_figure("fig-curves", fig)

# %% [markdown]
# ```{glue:figure} fig-curves
# :name: fig-curves
# Deleting dimensions from the head, on held-out Wikipedia text, by criterion (random: mean of the seeds with the
# min-max band). Top: JS divergence between the averaged distributions $\alpha$ before and after (our reading of the
# paper's "movement in output distribution"); middle: mean per-position KL divergence; bottom: share of positions whose
# most probable token is unchanged (JS and KL on log scales). Dotted lines mark the thresholds of the table in section
# 3.5; the dashed grey line is the JS divergence between the averaged distributions of two halves of the test text, each
# read at the sweep's number of positions. Our version of the paper's dimension-deletion experiment (its figure list
# includes deletion panels, e.g. `GPT2_del`) {cite}`cho2025understanding`, with per-position measures added.
# ```

# %%
safe = largest_safe_fraction(sweep[sweep.group == "all"], THRESHOLDS)
safe_main = safe[safe.corpus == in_distribution].pivot(index="criterion", columns="metric", values="largest_fraction")
paper_js = float(safe_main.loc["abs_A", "js_alpha"])
paper_top1 = float(safe_main.loc["abs_A", "top1_agreement"])
at_paper = main[(main.criterion == "abs_A")].set_index("fraction")
nearest = min(fractions, key=lambda f: abs(f - paper_fraction))
safe_main.round(2)

# %% tags=["remove-input"]
records.record_paper_fraction(rec, nearest, paper_js, paper_top1, at_paper, js_threshold, top1_threshold)

# %% [markdown]
# **Where the two kinds of movement disagree.** With the paper's criterion, the averaged distribution stays within
# JS < {glue:text}`03_pruning.js_threshold` nats up to {glue:text}`03_pruning.abs_A_js_fraction` of the dimensions
# deleted, and the per-position predictions keep top-1 agreement above {glue:text}`03_pruning.top1_threshold`
# up to {glue:text}`03_pruning.abs_A_top1_fraction`: {glue:text}`03_pruning.measure_gap`. At the paper's
# {glue:text}`03_pruning.paper_fraction`, JS of $\alpha$ is {glue:text}`03_pruning.abs_A_js_at_paper` nats, the mean
# per-position KL is {glue:text}`03_pruning.abs_A_kl_at_paper` nats, and the most probable token is unchanged at
# {glue:text}`03_pruning.abs_A_top1_at_paper` of positions. For scale: two halves of the held-out Wikipedia text (the
# windows split in two), each read at the sweep's {glue:text}`03_pruning.n_positions` positions and at the same
# positions within their windows, so that both averages cover as many positions with the same context lengths as the
# sweep's, give averaged distributions {glue:text}`03_pruning.js_halves` nats apart; the whole Wikipedia pass differs
# from the other corpora by {glue:text}`03_pruning.js_corpora` nats (all under the full head). By that yardstick, the
# paper's criterion moves $\alpha$ less than reading the other half of the text does up to
# {glue:text}`03_pruning.abs_A_js_halves_fraction` deleted. The yardstick is a scale, not a test: the sweep's two
# distributions average the *same* positions, so text noise cancels in them, while the halves differ by text. The two
# measures are not on one scale: JS of $\alpha$ is an average of distributions, so changes that cancel across positions
# (probability moved from one token to another at some positions and back at others) leave it in place, while KL and
# top-1 agreement count every position's change. The thresholds ({glue:text}`03_pruning.js_threshold` nats of JS,
# {glue:text}`03_pruning.top1_threshold` agreement) are this book's choice; the curves show the whole trade-off.
#
# **Is zeroing the problem?** Deleting a coordinate sets it to zero, but the final hidden states have non-zero means
# in many coordinates, so deletion also shifts every logit by a fixed vector. Replacing each deleted coordinate by its
# training mean (a bias of $V$ numbers added to the head) removes that shift:

# %%
mean_hidden = train.hidden_flat.mean(dim=0)
main_acts = tests[in_distribution]
main_hidden = main_acts.hidden_flat[subsample_positions(*main_acts.token_ids.shape, n_positions, seed)]
compensation = []
for criterion in dict.fromkeys(["abs_A", best]):
    keep = keep_columns(orders[(criterion, 0)], nearest)
    for variant, pruned_head in {"zeroed": OutputHead(head.E[:, keep], head.b),
                                 "mean-compensated": mean_compensated_head(head, keep, mean_hidden)}.items():
        result = compare_heads(main_hidden, head, pruned_head, new_columns=keep, chunk_size=chunk_size)
        compensation.append({"criterion": criterion, "deleted coordinates": variant, "JS of alpha": result.js_alpha,
                             "mean KL": result.mean_kl, "top-1 agreement": result.top1_agreement})
compensation = pd.DataFrame(compensation)
compensation.round(4)

# %% tags=["remove-input"]
zeroed_top1, compensated_top1 = (float(v) for v in compensation["top-1 agreement"].iloc[:2])
rec("abs_A_top1_compensated", compensated_top1, fmt=".1%",
    description="top-1 agreement at the paper's fraction, |A| criterion, deleted coordinates set to their mean")
rec("compensation_verdict", compensation_text(zeroed_top1, compensated_top1),
    description="whether replacing deleted coordinates by their means helps")

# %% [markdown]
# With the paper's criterion at {glue:text}`03_pruning.paper_fraction`, the mean-compensated head keeps the top
# token at {glue:text}`03_pruning.abs_A_top1_compensated` of positions, against
# {glue:text}`03_pruning.abs_A_top1_at_paper` when the coordinates are zeroed,
# {glue:text}`03_pruning.compensation_verdict`.
# The rest of the chapter zeroes them, which is how we read the paper's deletion.
#
# ## 3.3 Perplexity in and out of distribution

# %%
fig = figures.curves_figure(sweep, ["perplexity_ratio"], panels="corpus", thresholds=THRESHOLDS, log_metrics=(),
                       width=4.2, height=3.6)
for ax in fig.axes:
    ax.set_yscale("log")
glue_figure("fig-perplexity", fig)
perplexity = sweep[(sweep.group == "all") & (sweep.fraction == 0)].groupby("corpus").perplexity_ref.first()
for name, value in perplexity.items():
    rec(f"perplexity_{name}", value, fmt=".1f", description=f"full-head perplexity on {name} (test)")
perplexity.round(2).to_frame("full-head perplexity")

# %% [markdown]
# ```{glue:figure} fig-perplexity
# :name: fig-perplexity
# Perplexity of held-out text under each pruned head, relative to the full head (log scale), in distribution
# (Wikipedia) and out of distribution. The dotted line is the threshold of the table in section 3.5.
# ```
#
# ## 3.4 Generation from a real pruned model
#
# The pruned model is a copy whose head has the deleted columns of $E$ zeroed (the input embedding of the tied model
# is untouched), which is the sliced head exactly (tested against a forward pass). The full model's texts sampled with
# one seed are the reference; every other set, including the full model with a second seed, is sampled with the
# second seed from the same prompts, so the full model's second set gives MAUVE's noise floor at this sample size.
# The prompts are the first {glue:text}`03_pruning.prompt_length` tokens of the first
# {glue:text}`03_pruning.n_prompts` windows of the held-out Wikipedia pass; its windows are drawn in a seeded random
# order over the whole split, so these prompts come from across the split rather than from its start (they cover
# {glue:text}`03_pruning.prompt_documents` documents). Features are the model's own final hidden states,
# mean-pooled over each continuation (no external featuriser is available offline).

# %%
prompts = tests[in_distribution].token_ids[:n_prompts, :prompt_length]
conditions = {"full model": {"criterion": "full", "fraction": 0.0, "keep": None}}
for criterion in dict.fromkeys(["abs_A", best]):
    for fraction in generation_fractions:
        conditions[f"{criterion} {percent(fraction)}"] = {
            "criterion": criterion, "fraction": fraction, "keep": keep_columns(orders[(criterion, 0)], fraction)}
started = time.perf_counter()
generation, texts = generation_study(
    loaded, prompts, conditions, reference_seed=reference_seed, sample_seed=generation_seed,
    max_new_tokens=max_new_tokens, top_p=top_p, temperature=temperature, pooling=mauve_pooling,
    mauve_seeds=mauve_seeds, batch_size=generation_batch_size, num_threads=generation_threads)
generation_seconds = time.perf_counter() - started
mauve_by_condition = generation.set_index("condition").mauve
generation.round(3)

# %% tags=["remove-input"]
mauve_fraction = min(generation_fractions, key=lambda f: abs(f - paper_fraction))
mauve_scores = mauve_by_condition.dropna().to_dict()
mauve_saturated = mauve_is_saturated(mauve_scores, mauve_saturation)
prompt_documents = int(tests[in_distribution].document[:n_prompts].unique().numel())
records.record_generation(rec, n_prompts, prompt_length, prompt_documents, mauve_by_condition, mauve_fraction,
                          best)

# %% tags=["remove-input"]
rec("mauve_buckets", mauve_buckets(n_prompts), description="k-means clusters MAUVE quantises into")
rec("mauve_saturated", "saturated" if mauve_saturated else "not saturated",
    description="MAUVE saturated (every head, the full model included, at or above mauve_saturation)?")
rec("mauve_saturation", mauve_saturation_text(mauve_scores, n_prompts, mauve_saturation),
    description="whether MAUVE is saturated at this sample size, from the scores of every head")

# %%
glue_figure("fig-generation", figures.generation_figure(generation))  # exploratory: no threshold line

# %% [markdown]
# ```{glue:figure} fig-generation
# :name: fig-generation
# Left: MAUVE between the full model's reference texts and texts sampled from each head (error bar: spread over
# k-means seeds); "full model" is the same model with another sampling seed, the noise floor. Right: diversity
# (distinct unigrams and bigrams over all texts of a head, the reference included) and repetition (share of repeated
# 4-grams within a text). The paper's figure list includes MAUVE panels after deletion (e.g. `GPT2_MAUVE`)
# {cite}`cho2025understanding`; this is this book's exploratory version of that figure, at a much smaller sample,
# with no threshold.
# ```
#
# MAUVE is exploratory here and stays out of the scorecard: to enter it, it would need at least 128 generations per side
# with an interval over texts, which does not fit the book's build budget. With {glue:text}`03_pruning.n_prompts` texts
# per side, `mauve-text` quantises the features into {glue:text}`03_pruning.mauve_buckets` k-means clusters, so its
# values sit near 1 unless the texts differ grossly, and it comes with no interval over texts: its only error bar is the
# spread over k-means seeds, which says nothing about other prompts. Read from the scores of every head: MAUVE is
# {glue:text}`03_pruning.mauve_saturation`. For the record (not a finding), the full model against itself scores
# {glue:text}`03_pruning.mauve_floor`, the paper's criterion at {glue:text}`03_pruning.mauve_fraction` deleted
# {glue:text}`03_pruning.mauve_abs_A`, the best criterion ({glue:text}`03_pruning.best_criterion`, chosen on training
# text) {glue:text}`03_pruning.mauve_best`. Sampling with the same seed couples the sets: texts of two heads stay
# identical until their distributions differ enough to change a draw, which the examples show.

# %%
examples = example_texts(loaded.tokenizer, prompts, texts, ["reference", *conditions], n_examples)
examples.style.hide(axis="index").set_properties(**{"text-align": "left", "white-space": "pre-wrap"})

# %% [markdown]
# ## 3.5 How much can go: thresholds
#
# For each criterion, the largest fraction of the grid such that the measure meets its threshold at that fraction and
# at every smaller one (random orders: the mean over seeds); 0% means the threshold already fails at the smallest
# nonzero fraction of the grid. MAUVE sets no threshold here: it is exploratory (section 3.4), measured on
# {glue:text}`03_pruning.n_prompts` texts per side with no interval over texts.

# %%
table = safe.pivot_table(index=["corpus", "criterion"], columns="metric", values="largest_fraction")
table.columns = [f"{m} {THRESHOLDS[m][0]} {THRESHOLDS[m][1]:g}" for m in table.columns]
table = table.map(percent)
table

# %% tags=["remove-input"]
for metric in ("js_alpha", "top1_agreement", "perplexity_ratio"):
    for criterion, key in ((best, "best"), ("random", "random")):
        value = float(safe_main[metric].get(criterion, np.nan))
        rec(f"{key}_{metric}_fraction", percent(value),
            description=f"{criterion}: largest fraction within the {metric} threshold (in-distribution)")
rec("abs_A_perplexity_ratio_fraction", percent(float(safe_main.loc["abs_A", "perplexity_ratio"])),
    description="|A|: largest fraction within the perplexity threshold (in-distribution)")
rec("perplexity_threshold", perplexity_threshold, fmt="g", description="perplexity ratio threshold")
best_top1 = float(main.set_index(["criterion", "fraction"]).top1_agreement[(best, nearest)])
rec("best_top1_at_paper", best_top1, fmt=".1%",
    description="top-1 agreement at the paper's fraction, criterion chosen on training text (in-distribution)")
rec("criterion_comparison", compare_criteria_text(best, best_top1, float(at_paper.loc[nearest,
    "top1_agreement"])), description="how the chosen criterion compares with |A| on held-out text")

# %% [markdown]
# In distribution, the paper's criterion keeps JS of $\alpha$ below {glue:text}`03_pruning.js_threshold` up to
# {glue:text}`03_pruning.abs_A_js_fraction`, top-1 agreement above {glue:text}`03_pruning.top1_threshold` up to
# {glue:text}`03_pruning.abs_A_top1_fraction` and perplexity within a factor
# {glue:text}`03_pruning.perplexity_threshold` up to {glue:text}`03_pruning.abs_A_perplexity_ratio_fraction`; the
# criterion chosen on training text ({glue:text}`03_pruning.best_criterion`) reaches
# {glue:text}`03_pruning.best_js_alpha_fraction`, {glue:text}`03_pruning.best_top1_agreement_fraction` and
# {glue:text}`03_pruning.best_perplexity_ratio_fraction`; random dimensions
# {glue:text}`03_pruning.random_js_alpha_fraction`, {glue:text}`03_pruning.random_top1_agreement_fraction` and
# {glue:text}`03_pruning.random_perplexity_ratio_fraction`. The grid's steps are the resolution of every fraction in
# this table; the curves above are what a criterion buys between them.
#
# ## 3.6 Short and long contexts
#
# The same table for positions with a short context (at most {glue:text}`03_pruning.short_max` tokens) and a long
# one (at least {glue:text}`03_pruning.long_min`), from the same sweep: each position's context is its index in its
# window plus one.

# %%
by_context = largest_safe_fraction(sweep[sweep.group.isin(["short", "long"])], THRESHOLDS)
context_table = by_context.pivot_table(index=["corpus", "criterion"], columns=["metric", "group"],
                                       values="largest_fraction")
context_table.map(percent)

# %% tags=["remove-input"]
rec("short_max", short_max, description="longest context counted as short (tokens)")
rec("long_min", long_min, description="shortest context counted as long (tokens)")
short_long = by_context[(by_context.corpus == in_distribution) & (by_context.criterion == "abs_A")
                        & (by_context.metric == "top1_agreement")].set_index("group").largest_fraction
rec("abs_A_top1_short", percent(float(short_long["short"])),
    description="|A| criterion, top-1 threshold, short contexts (in-distribution)")
rec("abs_A_top1_long", percent(float(short_long["long"])),
    description="|A| criterion, top-1 threshold, long contexts (in-distribution)")

# %%
fig = figures.curves_figure(sweep[(sweep.corpus == in_distribution) & sweep.group.isin(["short", "long"])],
                            ["mean_kl", "top1_agreement"], panels="group", thresholds=THRESHOLDS, width=5, height=3.2)
glue_figure("fig-context", fig)

# %% [markdown]
# ```{glue:figure} fig-context
# :name: fig-context
# Per-position KL and top-1 agreement on held-out Wikipedia, for positions with short and long contexts.
# ```
#
# With the paper's criterion, top-1 agreement stays above the threshold up to
# {glue:text}`03_pruning.abs_A_top1_short` deleted for short contexts and {glue:text}`03_pruning.abs_A_top1_long`
# for long ones.
#
# ## 3.7 Is the model's basis privileged? A basis control
#
# Logits do not change under an orthogonal change of basis $Q$ of the embedding space: $hQ\,(EQ)^\top = hE^\top$.
# Deleting the directions $Q_D$ of a basis (keeping $Q_K$) projects both $h$ and $E$ onto the kept directions, giving
# the logits $(hQ_K)(EQ_K)^\top + b$; with $Q = I$ this is exactly the coordinate deletion of the sections above
# (tested, `utils.pruning.basis_control.basis_deletion`). If the model's coordinates were no more special than
# any other basis, deleting the coordinates with the smallest $|A|$ would do no better than deleting as many
# directions of a random basis, ordered by the same criterion in that basis. The fit of $A$ is ordinary least
# squares, hence equivariant:
# fitted on $EQ$ it gives $Q^\top A$ (tested), so each random basis's directions are deleted by increasing
# $|Q^\top A|$, the $|A|$ criterion in that basis, without refitting. A third condition deletes the principal
# directions of the centred $E$ with the smallest variance first (a spectral filter, which needs no fit at all).
# Everything reads the cached hidden states: {glue:text}`03_pruning.basis_positions` held-out Wikipedia positions
# (the first of the sweep's seeded sample), {glue:text}`03_pruning.basis_n_random` random orthogonal bases (Haar,
# seeded; mean and min-max over them), deletion shares {glue:text}`03_pruning.basis_shares` of $d$ (the control
# took {glue:text}`03_pruning.basis_seconds` s).

# %%
started = time.perf_counter()
basis_shares = [f for f in sorted(set(basis_fractions) | {nearest}) if n_deleted(head.d, f) > 0]
if nearest not in basis_shares:
    raise ValueError(f"paper_fraction={paper_fraction} snaps to {nearest}, which deletes none of d={head.d}")
basis_hidden, basis_groups = basis_control.basis_control_positions(main_acts, basis_positions, seed)
basis_deletion = basis_control.basis_deletion(basis_hidden, basis_groups, head, basis_control.basis_conditions(
    head.E, fit.A, random_seeds=basis_random_seeds), basis_shares, chunk_size=chunk_size)
basis_table = basis_deletion.table()
basis_checks, spectral_check = basis_control.basis_checks(
    basis_deletion, nearest, top1_margin=basis_top1_margin, js_ratio=basis_js_ratio, n_boot=n_boot_texts, seed=seed)
rec("basis_seconds", time.perf_counter() - started, fmt=".1f",
    description="seconds for the basis control (deletions and intervals)")
basis_summary = basis_table.groupby(["kind", "fraction"], sort=False)[["js_alpha", "top1_agreement"]].agg(
    ["mean", "min", "max"])
basis_summary.round(4)

# %% tags=["remove-input"]
at_nearest = basis_summary.xs(nearest, level="fraction")
rec("basis_positions", len(basis_hidden), ",", "held-out positions of the basis control")
rec("basis_n_random", len(basis_random_seeds), description="random orthogonal bases")
rec("basis_shares", ", ".join(map(percent, basis_shares)), description="shares of d deleted in the basis control")
rec("basis_documents", int(basis_groups.max()) + 1, description="held-out documents resampled for the basis intervals")
rec("basis_top1_margin", basis_top1_margin, ".0%", "margin of top-1 agreement over random bases for 'privileged'")
rec("basis_js_ratio_threshold", basis_js_ratio, "g", "JS ratio to random bases below which 'privileged'")
rec("basis_verdict", basis_control.basis_verdict(basis_checks),
    description="is the model's basis privileged for deletion?")
rec("basis_spectral", basis_control.spectral_comparison_text(spectral_check),
    description="coordinates against the spectral filter")

# %% tags=["remove-input"]
for key, kind in (("model", basis_control.MODEL_BASIS), ("random", basis_control.RANDOM_BASIS),
                  ("principal", basis_control.PRINCIPAL_BASIS)):
    row = at_nearest.loc[kind]
    rec(f"basis_top1_{key}", row[("top1_agreement", "mean")], fmt=".1%",
        description=f"top-1 agreement at the paper's share, {kind} (mean over bases)")
    rec(f"basis_js_{key}", row[("js_alpha", "mean")], fmt=".2g",
        description=f"JS(alpha) in nats at the paper's share, {kind} (mean over bases)")
random_top1 = at_nearest.loc[basis_control.RANDOM_BASIS, "top1_agreement"]
rec("basis_top1_random_range", f"{random_top1['min']:.1%}–{random_top1['max']:.1%}",
    description="range over random bases")
for name, check in (("basis_top1_diff", basis_checks[0]), ("basis_js_ratio", basis_checks[1]),
                    ("basis_spectral_diff", spectral_check)):
    rec(name, check.value, fmt=check.fmt, description=check.name)
    rec(f"{name}_ci", check.interval.text(check.fmt), description=f"95% interval: {check.name}")

# %%
pd.DataFrame([{"check": c.name, "value": c.value, "95% interval": c.interval.label(c.fmt), "verdict": c.verdict}
              for c in [*basis_checks, spectral_check]])

# %%
glue_figure("fig-prune-basis", figures.basis_curves_figure(basis_table, ["js_alpha", "mean_kl", "top1_agreement"],
                                                     thresholds=THRESHOLDS))

# %% [markdown]
# ```{glue:figure} fig-prune-basis
# :name: fig-prune-basis
# Deleting the same number of directions in three bases, on held-out Wikipedia: the model's coordinates by
# increasing $|A|$ (the criterion of the sections above), random orthogonal bases by increasing $|Q^\top A|$ (mean
# over bases, min-max band), and the principal directions of $E$ by increasing variance. Dotted lines: the thresholds
# of section 3.5. Not a figure of the paper: a control for its coordinate-wise reading.
# ```
#
# At {glue:text}`03_pruning.paper_fraction` deleted, the model's coordinates by $|A|$ keep the top token at
# {glue:text}`03_pruning.basis_top1_model` of these positions, random bases by $|Q^\top A|$ at
# {glue:text}`03_pruning.basis_top1_random` (range over bases {glue:text}`03_pruning.basis_top1_random_range`) and the
# spectral filter at {glue:text}`03_pruning.basis_top1_principal`; JS of $\alpha$ is
# {glue:text}`03_pruning.basis_js_model`, {glue:text}`03_pruning.basis_js_random` and
# {glue:text}`03_pruning.basis_js_principal` nats. The difference in top-1 agreement between the model's coordinates and
# the random bases is {glue:text}`03_pruning.basis_top1_diff` ({glue:text}`03_pruning.basis_top1_diff_ci`), and the
# ratio of their JS {glue:text}`03_pruning.basis_js_ratio` ({glue:text}`03_pruning.basis_js_ratio_ci`); the intervals
# (95%) resample both the {glue:text}`03_pruning.basis_documents` held-out documents and the random bases. We call the
# basis *privileged* when the whole interval of the first clears a margin of {glue:text}`03_pruning.basis_top1_margin`
# and that of the second stays below {glue:text}`03_pruning.basis_js_ratio_threshold` (both thresholds are this book's;
# the rule is `utils.pruning.basis_control.basis_verdict`). Verdict on the model's basis, for deleting dimensions
# by $|A|$: **{glue:text}`03_pruning.basis_verdict`**. Against the spectral filter:
# {glue:text}`03_pruning.basis_spectral`
# (difference in top-1 agreement {glue:text}`03_pruning.basis_spectral_diff`,
# {glue:text}`03_pruning.basis_spectral_diff_ci`). Whatever the verdict, the deletion curves of this chapter are about
# this model's coordinates; a claim that "dimensions" in general can go is only as strong as this comparison.

# %% [markdown]
# ## 3.8 The scorecard's checks
#
# The claim is checked with the paper's criterion (as we read it) at the abstract's share of $d$ (snapped to the grid:
# {glue:text}`03_pruning.paper_fraction`), on the held-out in-distribution text, by two numbers against this book's
# thresholds: JS between the averaged distributions of the full and the pruned head below
# {glue:text}`03_pruning.js_threshold` nats (our reading of "no significant movement"), and top-1 agreement
# above {glue:text}`03_pruning.top1_threshold` (the per-position sense). Each number gets a 95% interval over
# held-out texts: one full and one pruned head evaluation over the same {glue:text}`03_pruning.check_positions`
# sampled held-out positions as the sweep keep, per window, the summed softmax of each head and the count of
# agreeing positions; the {glue:text}`03_pruning.check_documents` held-out documents are then resampled
# ({glue:text}`03_pruning.n_boot_texts` times, each document with all its windows) and both numbers recomputed from
# the resampled sums (`utils.pruning.scorecard.headline_checks`). The deletion order stays the one fitted on the whole
# training pass, so the interval covers the held-out text, not the fit of $A$ (the checks and their intervals took
# {glue:text}`03_pruning.checks_seconds` s). JS is a divergence: resampling documents adds noise that tends to pull
# the two averaged distributions apart, so the resampled values drift upwards; the interval is centred on the
# measured value (the drift removed, as for every interval of the book), so that it says where JS would fall for
# another held-out text of the same size. With so few documents a plain percentile interval covers less than 95%,
# so each interval is widened for their number, by {glue:text}`03_pruning.check_widening`
# (`utils.uncertainty.few_groups_factor`; the basis intervals above likewise). A check is *reproduced* when its
# whole interval clears the threshold, *not reproduced* when the whole interval falls on the other side, and
# *inconclusive* when it contains the threshold. The two-halves yardstick of section 3.2 and MAUVE (section 3.4) stay
# beside the checks as labelled references: the first is a scale for the threshold, not a claim of the paper, and the
# second rests on {glue:text}`03_pruning.n_prompts` generations per head with no interval over texts.

# %%
started = time.perf_counter()
checks = headline_checks(train, tests[in_distribution], test_fraction=test_fraction, seed=seed, fraction=nearest,
                         js_threshold=js_threshold, top1_threshold=top1_threshold, n_positions=n_positions,
                         n_boot=n_boot_texts, boot_seed=seed, chunk_size=chunk_size, A=fit.A)
checks_seconds = time.perf_counter() - started
pd.DataFrame([{"check": c.name, "value": c.value, "95% interval": c.interval.label(c.fmt),
               "threshold": f"{'<=' if c.direction == 'below' else '>='} {c.threshold:g}", "verdict": c.verdict}
              for c in checks])

# %% tags=["remove-input"]
check_windows = subsample_positions(*main_acts.token_ids.shape, n_positions, seed) // main_acts.token_ids.shape[1]
rec("sweep_seconds", sweep_seconds, ".0f", "seconds for the sweep (incl. test passes)")
rec("generation_seconds", generation_seconds, ".0f", "seconds for generation")
rec("checks_seconds", checks_seconds, ".1f", "seconds for the scorecard's checks and their intervals over texts")
rec("check_positions", int(at_paper.loc[nearest, "n_positions"]), ",",
    "held-out positions behind the scorecard's checks")
rec("check_documents", int(main_acts.document[check_windows].unique().numel()),
    description="held-out documents resampled for the scorecard's intervals")
rec("n_boot_texts", n_boot_texts, description="document resamples behind the intervals over texts")
rec("js_at_paper_ci", checks[0].interval.text(".2g"), description="95% interval over texts of JS(alpha)")
rec("top1_at_paper_ci", checks[1].interval.text(".1%"),
    description="95% interval over texts of top-1 agreement at the paper's fraction")

# %% tags=["remove-input"]
rec("check_widening", f"{few_groups_factor(int(main_acts.document[check_windows].unique().numel())):.2f}×",
    description="how much wider the scorecard's intervals are for their few documents")

# %% tags=["remove-input"]
mauve_at_paper = float(mauve_by_condition[f"abs_A {percent(mauve_fraction)}"])
rec.scorecard(
    f"|A| criterion, {percent(nearest)} deleted: JS(α) {checks[0].value:.2g} nats "
    f"{checks[0].interval.text('.2g')}, "
    f"top-1 agreement {checks[1].value:.1%} {checks[1].interval.text('.1%')}; exploratory, not a check: MAUVE "
    f"{mauve_at_paper:.2f} at {percent(mauve_fraction)} ({n_prompts} texts, no interval, "
    f"{'saturated' if mauve_saturated else 'not saturated'})",
    checks,
)

# %% [markdown]
# Verdict: **{glue:text}`03_pruning.verdict`**: {glue:text}`03_pruning.verdict_reason`.
#
# ## Summary and caveats
#
# - The paper's claim, checked with the paper's criterion at {glue:text}`03_pruning.paper_fraction` deleted on
#   held-out text: JS of the averaged distribution {glue:text}`03_pruning.abs_A_js_at_paper` nats (95% interval over
#   held-out documents {glue:text}`03_pruning.js_at_paper_ci`) against {glue:text}`03_pruning.js_threshold`, and top-1
#   agreement {glue:text}`03_pruning.abs_A_top1_at_paper` ({glue:text}`03_pruning.top1_at_paper_ci`) against
#   {glue:text}`03_pruning.top1_threshold`. Along the grid, the averaged distribution stays within the JS threshold up
#   to {glue:text}`03_pruning.abs_A_js_fraction` of $d$ deleted, and within the variation between two halves of the
#   same text read at the sweep's number of positions (a reference, not a check) up to
#   {glue:text}`03_pruning.abs_A_js_halves_fraction`; top-1 agreement
#   stays above its threshold up to {glue:text}`03_pruning.abs_A_top1_fraction`. These "largest fractions" are read
#   off the sweep's points, without intervals. Exploratory, not a check: generated text scores MAUVE
#   {glue:text}`03_pruning.mauve_abs_A` at {glue:text}`03_pruning.mauve_fraction` deleted (the full model against
#   itself: {glue:text}`03_pruning.mauve_floor`); with {glue:text}`03_pruning.n_prompts` texts per side MAUVE is
#   {glue:text}`03_pruning.mauve_saturated` here (section 3.4), so these values are no evidence either way.
# - Basis control (section 3.7), verdict on the model's basis for deletion by $|A|$:
#   **{glue:text}`03_pruning.basis_verdict`** at {glue:text}`03_pruning.paper_fraction` deleted: top-1 agreement
#   {glue:text}`03_pruning.basis_top1_model` in the model's coordinates against
#   {glue:text}`03_pruning.basis_top1_random` in random bases (difference {glue:text}`03_pruning.basis_top1_diff`,
#   {glue:text}`03_pruning.basis_top1_diff_ci`), JS ratio {glue:text}`03_pruning.basis_js_ratio`
#   ({glue:text}`03_pruning.basis_js_ratio_ci`); {glue:text}`03_pruning.basis_spectral`.
# - The criterion chosen on training text, {glue:text}`03_pruning.best_criterion`, keeps the top token at
#   {glue:text}`03_pruning.best_top1_at_paper` of held-out positions at {glue:text}`03_pruning.paper_fraction`
#   deleted, against {glue:text}`03_pruning.abs_A_top1_at_paper` for $|A_D|$:
#   {glue:text}`03_pruning.criterion_comparison`. $|A_D|$ knows only how the *average* probability of each token
#   depends on a dimension; it ignores how large each coordinate of $h$ is at a given position, which is what decides
#   that position's logits.
# - The thresholds are this book's (the paper's own measure of "significant movement" is not reproduced here); the
#   JS scale of two halves of the same text at the sweep's size, {glue:text}`03_pruning.js_halves` nats, is a
#   yardstick for them.
# - The intervals resample the held-out documents with a fixed deletion order; they do not cover the fit of $A$ on
#   the training text, other corpora or other models (the robustness page varies the sampling seed and the window
#   length).
# - Deletion here zeroes coordinates; replacing them by their means was checked at one fraction only (section 3.2),
#   and refitting the kept columns is not tried.
# - One small model, {glue:text}`03_pruning.n_positions` sampled positions per corpus, a grid of fractions that sets
#   the resolution of every "largest fraction", and {glue:text}`03_pruning.n_prompts` generated texts per head: MAUVE
#   in particular is a coarse measure at this size.
