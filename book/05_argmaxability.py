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
# # 5. Which tokens can never be predicted?
#
# **Claim** {cite}`grivas2022lowrank`. An output layer with embedding $E$ ($V\times d$, row $e_c$ for token $c$) and
# bias $b$ scores token $c$ with $e_c\cdot x + b_c$ (written $W$ and $w_c$ elsewhere). When
# $V > d + 1$ some tokens can be *unargmaxable*: no input $x$ makes them the argmax, so greedy decoding never emits
# them, whatever the context. Without a bias, token $c$ is argmaxable exactly when its row $e_c$ is a vertex of the
# convex hull of all rows. The paper's abstract says that in theory some words may be impossible to predict via
# argmax, that there is evidence of it in small language models, and that 13 of 150 public models have such tokens,
# very infrequent and unlikely to impact model quality. The rest of the setting is this book's: random heads in low
# dimension as the case "in theory", and, as remedies, the bias $b_c = -\tfrac12\|e_c\|^2$ or unit-norm rows (each
# with its reason in section 5.6).
#
# **Method.** The abstract says the paper develops algorithms to detect unargmaxable tokens; the two tests here, and
# their settings, are this book's implementation in the `utils.argmax` package, for any $E$ and $b$:
#
# - *braid reflect* (fast, one-sided): start at a point $x$ and, while the argmax is another token $j$, reflect $x$
#   across the hyperplane where $c$ and $j$ tie,
#   $x \leftarrow x - 2\,\frac{(e_c-e_j)\cdot x + b_c-b_j}{\|e_c-e_j\|^2}\,(e_c-e_j)$, for at most a *patience* of
#   reflections. It runs for thousands of tokens at once as matrix products, the argmax taken chunk by chunk over
#   the vocabulary;
# - the *Chebyshev-centre linear program* (exact), for every token the fast test does not clear: maximise $r$ subject
#   to $(e_j-e_c)\cdot x + \|e_j-e_c\|\,r \le b_c-b_j$ for all $j\ne c$, with $x$ in a box $[-B, B]^d$ ($B = 100$
#   by default, this book's choice). The token
#   is argmaxable iff $r>0$; $r$ is the radius of the largest ball inside its region. Solved with HiGHS by cutting
#   planes: a few hundred competitors at a time, adding violated constraints until the solution satisfies all $V-1$.
#
# Every "argmaxable" verdict carries a witness point whose strict argmax is checked against all $V$ tokens (in
# float32 with a proven rounding bound, in float64 when the margin is too close to call); every "unargmaxable" one
# carries the LP status. Rows that are exact copies of another row can never win strictly and are reported as
# "duplicate", naming the twin.

# %% tags=["parameters"]
model = "smollm2-135m"  # offline name, Hugging Face id or local folder
revision = None  # hub revision
device = "cpu"  # where the model and the argmax tests' float32 products run: "cpu", "cuda" or "auto"
precision = "float32"  # the body's precision: "float32", "bfloat16" (as asked) or "auto" (bf16 if faster here)
max_tokens = None  # tokens tested on the real head: None for the whole vocabulary, else a random sample
seed = 0  # token samples, random heads, random pruning order
box = 100.0  # the search box [-box, box]^d of the tests
patience = 50  # reflections of the fast test before the LP takes over
start = "centred"  # braid start: "row" (x = e_c) or "centred" (e_c minus the mean row)
n_closest = 5  # argmaxable tokens with the thinnest margins whose LP radius is measured
n_hull_instances = 200  # random 2-6-d instances compared with the convex-hull brute force
random_dims = [2, 3, 4, 6, 8, 10, 15, 20, 30, 50]  # dimensions of the random heads
random_classes = 1000  # classes of each random head
corpus = "wikipedia"  # the corpus of chapter 1's encoding fit (shared activation cache)
window_length = 128  # as in chapter 1
n_tokens = 32768  # as in chapter 1
sample_seed = 0  # seed of the windows drawn across each corpus split
batch_size = 8  # windows per forward pass (speed only)
prune_fractions = [0.5, 0.75, 0.9, 0.95]  # shares of dimensions deleted
prune_max_tokens = 8192  # tokens tested per pruned head: None for all, else a random sample (the same for every head)
prune_random = True  # also delete dimensions in a random order
prevention_dim = 4  # dimension of the random head used to show prevention
second_model = "gemma3-270m"  # also tested where installed; None to skip
second_model_max_tokens = 4096  # tokens sampled from the second model's vocabulary
n_table = 20  # rows of the token tables
theory_share = 0.1  # "in theory": random heads of the smallest dimension have at least this share unargmaxable

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from utils.encoding.fit import dimensions_by_weight, fit_encoding
from utils.activations import compute_activations
from utils.figures import argmax as figures
from utils.undertrained.geometry import nearest_distinct_steps, quantisation_grid
from utils.undertrained.wording import quantisation_wording
from utils.head import output_head
from utils.models import available_offline_models, describe, load_model
from utils.plotting import set_theme
from utils.results import glue_figure, start_run

# %% tags=["hide-input"]
from utils.argmax import sweeps
from utils.argmax.hull import hull_agreement
from utils.argmax.parameters import ArgmaxParameters
from utils.argmax.prevention import prevention_bias, unit_norm_rows
from utils.argmax.scorecard import headline_checks
from utils.argmax.verdicts import closest_calls, find_unargmaxable, verdict_table
from utils.argmax.wording import first_fraction_text, paper_range_sentence

CHAPTER = "05_argmaxability"
parameters = ArgmaxParameters.from_namespace(globals())
loaded = load_model(model, revision, device=device, precision=precision)
parameters.check_model(loaded)
rec = start_run(CHAPTER, globals(), loaded)
set_theme()
pd.DataFrame([describe(loaded)])

# %% [markdown]
# ## 5.1 The geometry in two dimensions
#
# Five tokens in $d = 2$. Colour each point $x$ of the plane by the token with the largest logit: every argmaxable
# token owns a region. Without a bias the regions are cones from the origin, and token 4, whose row lies inside the
# quadrilateral of the others, owns none. A bias shifts the boundaries: a large enough $b_4$ gives token 4 a bounded
# region around the origin, and the bias $b_c=-\tfrac12\|e_c\|^2$ (one of this book's remedies, section 5.6) turns
# the picture into the Voronoi diagram of the rows, where every row owns the cell around itself.

# %%
E_toy = np.array([[2.0, 0.3], [0.2, 2.0], [-2.0, 0.4], [0.1, -2.0], [0.4, 0.5]])  # token 4 inside the others' hull
b_toy = np.array([0.0, 0.0, 0.0, 0.0, 1.5])
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharey=True)
toy = [figures.plot_argmax_regions(axes[0], E_toy, title="no bias"),
       figures.plot_argmax_regions(axes[1], E_toy, b_toy, title=r"bias $b_4 = 1.5$"),
       figures.plot_argmax_regions(axes[2], E_toy, prevention_bias(E_toy), title=r"bias $-\frac{1}{2}\|e\|^2$")]
fig.tight_layout()
glue_figure("fig-toy", fig)
pd.DataFrame({panel: v.status for panel, v in zip(["no bias", "bias b_4", "prevention bias"], toy)})

# %% [markdown]
# ```{glue:figure} fig-toy
# :name: fig-toy
# Argmax regions of a five-token head in two dimensions (each colour is the token with the largest logit; dots are
# the rows $e_c$, a cross marks an unargmaxable token). Left: no bias, token 4 lies inside the hull of the others
# and owns no region. Middle: a bias on token 4 gives it a bounded region. Right: the preventive bias
# $-\tfrac12\|e\|^2$ makes the regions the Voronoi cells of the rows. This book's illustration of the geometry behind
# {cite}`grivas2022lowrank`.
# ```
#
# ## 5.2 The tests against brute force
#
# In 2 to 6 dimensions the convex hull (`scipy.spatial.ConvexHull`, Qhull) decides argmaxability directly: without a
# bias a token is argmaxable iff its row is a hull vertex; with a bias, iff the lifted point $(e_c, b_c)$ is a vertex of
# an upper facet of the lifted hull (and, in a box, iff one of its region's vertices lies inside the box). We compare
# every verdict on random instances (rows and biases $\mathcal N(0,1)$; with a bias the box is widened to $10^4$).

# %%
agreement = hull_agreement(n_hull_instances, seed=seed)
pd.DataFrame([agreement])

# %% tags=["remove-input"]
rec("hull_instances", agreement["instances"], fmt=",", description="random instances compared with hulls")
rec("hull_verdicts", agreement["verdicts"], fmt=",", description="verdicts compared with hulls")
rec("hull_agreement", agreement["agree"] / agreement["verdicts"], fmt=".2%",
    description="share of verdicts equal to the convex-hull brute force")
rec("braid_false_clears", agreement["braid_false_clear"], fmt=",",
    description="unargmaxable tokens the fast test cleared (must be 0)")
rec("hull_undecided", agreement["undecided"], fmt=",",
    description="classes with a bias whose region has no vertex inside the box (not compared)")

# %% [markdown]
# On {glue:text}`05_argmaxability.hull_instances` instances ({glue:text}`05_argmaxability.hull_verdicts` verdicts)
# the tests agree with the hull for {glue:text}`05_argmaxability.hull_agreement` of the tokens, and the fast test
# cleared {glue:text}`05_argmaxability.braid_false_clears` unargmaxable tokens. Not compared:
# {glue:text}`05_argmaxability.hull_undecided` tokens with a bias whose region has no vertex inside the box, for
# which the hull cannot tell whether the box cuts the region off (two nearly parallel rows with different biases
# tie far from the origin; the LP with a wider box then finds the region). The unit tests and a slow test repeat the
# comparison on thousands of instances.
#
# ## 5.3 Random heads: unargmaxable tokens in theory
#
# Random heads with {glue:text}`05_argmaxability.random_classes` classes, rows (and biases) drawn from $U(-1,1)$ or
# $\mathcal N(0,1)$: this book's choice of distributions for the abstract's case "in theory", one head per
# dimension, distribution and bias, drawn from the chapter's seed.

# %%
random_sweep = sweeps.random_model_sweep(random_dims, random_classes, seed=seed, box=box, patience=patience)
fig, ax = plt.subplots(figsize=(7, 4.2))
figures.plot_random_sweep(ax, random_sweep)
glue_figure("fig-random", fig)
random_sweep.pivot_table(index="dim", columns=["init", "bias"], values="share").round(4)

# %% tags=["remove-input"]
low = random_sweep[random_sweep.dim == min(random_dims)]
high = random_sweep[random_sweep.dim == max(random_dims)]
rec("random_classes", random_classes, fmt=",", description="classes per random head")
rec("box", box, fmt="g", description="half-width of the search box")
rec("random_low_dim", int(min(random_dims)), description="smallest dimension of the random sweep")
rec("random_high_dim", int(max(random_dims)), description="largest dimension of the random sweep")
rec("random_low_share", float(low.share.min()), fmt=".1%",
    description="smallest share of unargmaxable classes at the smallest dimension")
rec("random_high_share", float(high.share.max()), fmt=".2%",
    description="largest share of unargmaxable classes at the largest dimension")
rec("random_seconds", float(random_sweep.seconds.sum()), fmt=".0f",
    description="seconds for the random sweep (when computed)")

# %% [markdown]
# ```{glue:figure} fig-random
# :name: fig-random
# Share of unargmaxable classes of random heads with {glue:text}`05_argmaxability.random_classes` classes against
# the dimension, for uniform and normal rows, with and without a bias (box half-width
# {glue:text}`05_argmaxability.box`). This book's random heads, for the case "in theory" of
# {cite}`grivas2022lowrank`'s abstract.
# ```
#
# In {glue:text}`05_argmaxability.random_low_dim` dimensions at least {glue:text}`05_argmaxability.random_low_share`
# of the classes are unargmaxable; by {glue:text}`05_argmaxability.random_high_dim` dimensions at most
# {glue:text}`05_argmaxability.random_high_share` are. A random point cloud in high dimension has almost every point
# on its hull, so the problem is one of low rank relative to the vocabulary.
#
# ## 5.4 Real heads: unargmaxable tokens in practice

# %%
head = output_head(loaded.model)
E, b = head.E.numpy(), (None if head.b is None else head.b.numpy())
rng = np.random.default_rng(seed)
tokens = None if max_tokens is None or max_tokens >= head.V else np.sort(rng.choice(head.V, max_tokens, replace=False))
verdicts = find_unargmaxable(E, b, tokens=tokens, box=box, patience=patience, start=start, device=device)
counts = verdicts.counts()
pd.DataFrame([counts])

# %% tags=["remove-input"]
rec("model_V", head.V, fmt=",", description="vocabulary of the tested model")
rec("model_d", head.d, description="dimension of the tested model's head")
rec("n_tokens_tested", counts["tested"], fmt=",", description="tokens tested on the real head")
rec("n_unargmaxable", counts["unargmaxable"], fmt=",", description="unargmaxable tokens of the real head")
rec("n_duplicate", counts["duplicate"], fmt=",", description="tokens whose row has an identical twin")
rec("n_decided_by_lp", counts["decided_by_lp"], fmt=",", description="tokens the fast test left to the LP")
rec("verify_seconds", verdicts.meta["seconds"], fmt=".0f",
    description="seconds for the verdicts of the real head (when computed; cached afterwards)")
rec("quant_caveat", quantisation_wording(quantisation_grid(E), nearest_distinct_steps(
    E, verdicts.tokens_with("duplicate")), None, what="the duplicate rows"),
    description="whether the head is de-quantised and its duplicates may be rounding ties, in words")

# %% [markdown]
# Of the {glue:text}`05_argmaxability.n_tokens_tested` tokens tested ($V$ = {glue:text}`05_argmaxability.model_V`,
# $d$ = {glue:text}`05_argmaxability.model_d`), {glue:text}`05_argmaxability.n_unargmaxable` are unargmaxable and
# {glue:text}`05_argmaxability.n_duplicate` share their row with another token; the fast test left
# {glue:text}`05_argmaxability.n_decided_by_lp` to the LP. The verdicts took
# {glue:text}`05_argmaxability.verify_seconds`
# seconds on this machine. The tokens that can never win strictly:

# %%
verdict_table(verdicts, loaded.tokenizer).head(n_table)

# %% [markdown]
# The fast test clears most tokens in one or two reflections. How close are the closest calls? We take the
# {glue:text}`05_argmaxability.n_closest` argmaxable tokens whose witness has the smallest margin (relative to its
# length) and solve their exact LP: its radius is the thickness of the region the token owns inside the box.

# %%
closest = closest_calls(E, b, verdicts, n_closest, box=box)
closest.insert(1, "text", [repr(loaded.tokenizer.decode([t])) for t in closest.token])
fig, ax = plt.subplots(figsize=(7, 3.8))
figures.plot_braid_steps(ax, verdicts)
glue_figure("fig-steps", fig)
closest

# %% tags=["remove-input"]
rec("n_closest", len(closest), description="closest calls measured with the LP")
rec("smallest_lp_radius", float(closest.lp_radius.min()), fmt=".3g",
    description="smallest Chebyshev radius among the closest calls (box units)")
rec("smallest_cone_angle", float(closest.cone_half_angle_deg.min()), fmt=".1f",
    description="smallest half-angle (degrees) of a circular cone inside a closest call's region (no-bias heads)")

# %% [markdown]
# ```{glue:figure} fig-steps
# :name: fig-steps
# How many reflections the fast test needed per token of the real head (tokens at the patience limit went on to the
# LP). This book's fast test, batched over the vocabulary.
# ```
#
# The thinnest region among the closest calls still has a Chebyshev radius of
# {glue:text}`05_argmaxability.smallest_lp_radius` (the box has half-width {glue:text}`05_argmaxability.box`, so
# its corners are $\sqrt{d}$ times that from the origin). Without a bias the regions are cones and the radius grows
# with the box; the scale-free figure is the cone: each of these regions contains a circular cone of half-angle at
# least
# {glue:text}`05_argmaxability.smallest_cone_angle` degrees (nan for a head with a bias). A small margin at the fast
# test's witness says little: the witness is wherever the reflections stopped, not the centre of the region.

# %%
second = None
if second_model is not None and second_model in available_offline_models() and second_model != model:
    second_loaded = load_model(second_model)
    second_head = output_head(second_loaded.model)
    sample = np.sort(rng.choice(second_head.V, min(second_model_max_tokens, second_head.V), replace=False))
    second = find_unargmaxable(second_head.E.numpy(), None if second_head.b is None else second_head.b.numpy(),
                               tokens=sample, box=box, patience=patience, start=start, device=device)
    rec("second_model_counts", str(second.counts()), description=f"verdicts of {second_model} (sample)")
    display(verdict_table(second, second_loaded.tokenizer).head(n_table))
print("second model:", "not installed or skipped" if second is None else second.counts())

# %% [markdown]
# ## 5.5 Pruned heads: when do tokens start to disappear?
#
# Chapter 3 deletes the output-embedding dimensions that the log-linear encoding of chapter 1 does not use. Deleting
# dimensions lowers $d$ towards the regime of {numref}`fig-random`, so at some point rows fall inside the hull of the
# others. We delete the dimensions of smallest $|A_D|$ first (the pruned head is $E[:, \text{keep}]$, fit as in
# chapter 1 on the same cached pass) and, for comparison, dimensions in a random order. The pass is training text
# only (the order is a choice the analysis makes, and no held-out text is scored here).

# %%
acts = compute_activations(loaded, corpus, "train", window_length=window_length, n_tokens=n_tokens,
                           sample_seed=sample_seed, batch_size=batch_size)
fit = fit_encoding(acts.head.E.numpy().astype(np.float64), acts.alpha.numpy(), seed=seed)
orders = {"smallest |A| first": dimensions_by_weight(fit.A)[::-1].copy()}
print("first dimensions deleted (|A| order):", orders["smallest |A| first"][:10])
if prune_random:
    orders["random order"] = np.random.default_rng(seed).permutation(head.d)

# %%
prune_tokens = (None if prune_max_tokens is None or prune_max_tokens >= head.V
                else np.sort(rng.choice(head.V, prune_max_tokens, replace=False)))
pruning = pd.concat([sweeps.pruning_sweep(E, order, prune_fractions, b=b, tokens=prune_tokens, box=box,
                                          patience=patience).assign(order=name) for name, order in orders.items()],
                    ignore_index=True)
fig, ax = plt.subplots(figsize=(7, 4))
figures.plot_pruning(ax, pruning)
glue_figure("fig-pruning", fig)
pruning

# %% tags=["remove-input"]
first = sweeps.first_unargmaxable_fraction(pruning[pruning.order == "smallest |A| first"])
first_random = (sweeps.first_unargmaxable_fraction(pruning[pruning.order == "random order"]) if prune_random
                else np.nan)
at_max = pruning[(pruning.order == "smallest |A| first") & (pruning.fraction == max(prune_fractions))].iloc[0]
rec("train_text", acts.describe(), description="the text D of the pass behind the pruning order")
rec("prune_first_fraction", first, fmt=".2f",
    description="smallest deleted fraction (|A| order) with an unargmaxable token; nan if none on the grid")
rec("prune_first_text", first_fraction_text(first, prune_fractions), description="the same, as text")
rec("prune_max_fraction", max(prune_fractions), fmt=".0%", description="largest deleted fraction tried")
rec("prune_first_text_random", first_fraction_text(first_random, prune_fractions),
    description="smallest deleted fraction (random order) with an unargmaxable token")

# %% tags=["remove-input"]
rec("prune_unargmaxable_at_max", int(at_max.unargmaxable), fmt=",",
    description="unargmaxable tokens at the largest deleted fraction (|A| order)")
rec("prune_tested", int(at_max.tested), fmt=",", description="tokens tested per pruned head")
rec("prune_chapter3_sentence", paper_range_sentence(first),
    description="where the paper's pruning range lies relative to the first unargmaxable token, in words")

# %% [markdown]
# ```{glue:figure} fig-pruning
# :name: fig-pruning
# Share of unargmaxable tokens of the pruned head $E[:, \text{keep}]$ as dimensions are deleted, smallest $|A_D|$
# first (chapter 1's encoding) or in a random order ({glue:text}`05_argmaxability.prune_tested` tokens tested per
# head).
# ```
#
# The encoding behind the $|A_D|$ order is fitted on this text $D$: {glue:text}`05_argmaxability.train_text`.
#
# With the smallest-$|A_D|$ order the first unargmaxable tokens appear at this share of the dimensions deleted:
# {glue:text}`05_argmaxability.prune_first_text` (random order: {glue:text}`05_argmaxability.prune_first_text_random`).
# At {glue:text}`05_argmaxability.prune_max_fraction`,
# {glue:text}`05_argmaxability.prune_unargmaxable_at_max` tested tokens are unargmaxable.
# {glue:text}`05_argmaxability.prune_chapter3_sentence`
#
# ## 5.6 Prevention
#
# Two remedies, this book's choice (the paper's abstract names none), on a random head in
# {glue:text}`05_argmaxability.prevention_dim` dimensions, where most tokens are unargmaxable: the bias
# $b_c = -\tfrac12\|e_c\|^2$ (then the argmax is the nearest row, so every distinct row wins at its own position),
# or rows scaled to unit norm (points on a sphere are all hull vertices).

# %%
E_rand, _ = sweeps.random_head(random_classes, prevention_dim, "normal", bias=False, seed=seed)
prevention = {
    "no bias": find_unargmaxable(E_rand, box=box, patience=patience, progress=False),
    "bias -||e||²/2": find_unargmaxable(E_rand, prevention_bias(E_rand), box=box, patience=patience,
                                        progress=False),
    "unit-norm rows": find_unargmaxable(unit_norm_rows(E_rand), box=box, patience=patience, progress=False),
}
prevention_table = pd.DataFrame({name: v.counts() for name, v in prevention.items()}).T
prevention_table

# %% tags=["remove-input"]
rec("prevention_dim", prevention_dim, description="dimension of the prevention example")
rec("prevention_before", int(prevention["no bias"].count("unargmaxable")), fmt=",",
    description="unargmaxable tokens of the random head before prevention")
rec("prevention_after", int(max(prevention_table.unargmaxable.iloc[1:])), fmt=",",
    description="unargmaxable tokens after either remedy (the larger count)")

# %% [markdown]
# Before: {glue:text}`05_argmaxability.prevention_before` of {glue:text}`05_argmaxability.random_classes` tokens are
# unargmaxable; after either remedy, {glue:text}`05_argmaxability.prevention_after`.

# %% [markdown]
# ## Scorecard
#
# The front page's verdict on the claim "unargmaxable tokens exist in theory, rarely in practice, and can be
# prevented" (the abstract's first two parts; prevention is this book's addition) comes from three checks, each a
# number against a threshold: the smallest share of unargmaxable classes among the random heads of the smallest
# dimension, at least {glue:text}`05_argmaxability.theory_share`; the unargmaxable tokens among those tested on the
# real head, at most 0; and the unargmaxable classes left after the worse of the two remedies, at most 0. No number
# depends on a text: argmaxability is a property of the head alone (its rows, its bias and the box). Each check says
# what its interval is over: the random heads' checks are exact for the one head drawn per setting from the seed
# (no interval over other draws), and the real head's check is exact when every token is tested (with `max_tokens`
# set, it holds for the sample only). A check is *reproduced* when its number is on the claim's side of the
# threshold (the threshold itself counts for the claim) and *not reproduced* otherwise; an exact number cannot be
# *inconclusive*.

# %% tags=["remove-input"]
checks = headline_checks(random_sweep, verdicts, prevention, theory_share=theory_share)
rec("theory_share", theory_share, fmt=".0%", description="threshold of the 'in theory' check")
rec.scorecard(
    f"{counts['unargmaxable']} unargmaxable of {counts['tested']:,} tokens of {model} "
    f"({counts['duplicate']} duplicate rows); random d={min(random_dims)}: ≥{low.share.min():.0%}, "
    f"d={max(random_dims)}: ≤{high.share.max():.1%}",
    checks,
)

# %% [markdown]
# Verdict: **{glue:text}`05_argmaxability.verdict`**: {glue:text}`05_argmaxability.verdict_reason`.
#
# ## Summary and caveats
#
# - The verdict combines the three checks above: *reproduced* when all are, *not reproduced* when none is, *partly
#   reproduced* otherwise; their numbers are exact properties of heads, so no check is left *inconclusive*.
# - The real head has {glue:text}`05_argmaxability.n_unargmaxable` unargmaxable tokens among
#   {glue:text}`05_argmaxability.n_tokens_tested` tested, and {glue:text}`05_argmaxability.n_duplicate` tokens whose
#   rows are exact copies of another, which can never win strictly either. Identical rows may come from the
#   quantisation as well as from training: {glue:text}`05_argmaxability.quant_caveat`.
# - "Argmaxable" is a statement about the head alone: some $x$ in the box makes the token win. The final hidden states
#   a model actually produces (after its last norm) fill only part of that space, so an argmaxable token may still
#   never be predicted in practice; the converse holds: an unargmaxable token never is.
# - The box matters with a bias (a region may lie outside it) and sets the scale of the LP radius; without a bias the
#   regions are cones and the verdicts do not depend on the box.
# - Verdicts are exact up to the LP's tolerance ($r \le 10^{-8}$ counts as empty) and the certified argmax check of
#   every witness; the fast test only ever clears tokens, with a checked witness.
# - Pruned heads are tested as heads; whether the pruned model's hidden states still reach the regions is not tested.
