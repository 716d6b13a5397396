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
# # 4. When does the output embedding learn token frequency?
#
# **Claim** {cite}`cho2025understanding`. Probing the public Pythia checkpoints {cite}`biderman2023pythia`, the
# paper finds that the output embedding encodes corpus token frequency early in pre-training: a linear read-out of
# $E_w$ predicts $\log$ frequency well at steps where the parameters are still far from where they end up.
#
# **Method.** Pythia's checkpoints cannot be downloaded here, so this chapter trains its own: small GPT-NeoX models
# (Pythia's architecture, output embedding untied from the input embedding, GPT-2's 50,257-token BPE), from scratch,
# on the training splits of the book's corpora, with checkpoints on Pythia's grid (steps 0, 1, 2, 4, ..., 512, then
# evenly spaced to the end). At every checkpoint we measure
#
# - the **frequency probe**: least squares of $\log$ (relative corpus frequency) on $E_w$ over tokens that occur in
#   the training text, scored by $R^2$ on a random 20% of tokens held out of the fit, and the Spearman correlation of
#   the fitted direction with log frequency on those tokens;
# - the **log-linear encoding** of chapter 1: $-\log\alpha_w \approx A\cdot E_w + B$, with $\alpha$ the checkpoint's
#   own averaged output distribution on held-out Wikipedia text;
# - **convergence**: distance of $E$, and of all parameters, to the final checkpoint, and held-out loss.
#
# Training is deterministic from the seed, cached and resumable: a second build reuses the checkpoints. With
# `pythia_model` set, the same probe runs on real Pythia checkpoints wherever the hub or a local cache has them.

# %% tags=["parameters"]
architecture = "gpt_neox"  # the only architecture trained here (Pythia's)
model_sizes = ["d64", "d128"]  # named sizes of utils.dynamics.MODEL_SIZES, smallest first
steps = 768  # optimizer steps per model
batch_size = 8  # windows per step (each window is the size's context length)
learning_rate = 2e-3  # peak AdamW learning rate (warm-up, then cosine decay to a tenth)
checkpoint_every = 128  # checkpoint spacing after step 512
seed = 0  # initial weights and data order
train_corpora = ["wikipedia", "shakespeare", "bible"]  # their train splits, concatenated
eval_corpus = "wikipedia"  # its test split gives held-out loss and alpha
probe_window_length = 64  # tokens per window of the held-out pass
probe_n_tokens = 2048  # tokens of the held-out pass at every checkpoint
probe_seed = 0  # held-out token split of the probes
sample_seed = 0  # seed of the windows drawn across each corpus split
r2_threshold = 0.5  # "frequency is encoded" once the held-out R² stays at or above this
final_fraction = 0.9  # ... or at or above this fraction of its final value
e_left_threshold = 0.5  # "early": ||E - E_final|| still at least this share of its initial value at that step
n_boot_tokens = 200  # bootstrap resamples of the probe's held-out tokens (the scorecard's intervals)
pythia_model = None  # e.g. "EleutherAI/pythia-70m" where the hub or a local cache is reachable; None skips
pythia_revisions = ["step0", "step1", "step2", "step4", "step8", "step16", "step32", "step64", "step128",
                    "step256", "step512", "step1000", "step2000", "step4000", "step8000", "step16000",
                    "step32000", "step64000", "step143000"]

# %%
import pandas as pd

from utils import dynamics as dyn
from utils.corpora import CORPORA, documents, read_corpus
from utils.plotting import set_theme
from utils.results import glue_figure, record, record_many, record_scorecard, start_run
from utils.tokenizers import gpt2_tokenizer
from utils.validation import check_choice, check_float, check_positive_int

CHAPTER = "04_dynamics"
if isinstance(model_sizes, str) or len(model_sizes) == 0 or len(set(model_sizes)) != len(model_sizes):
    raise ValueError(f"model_sizes={model_sizes!r} must be a non-empty list of distinct names from "
                     f"{list(dyn.MODEL_SIZES)}")
if isinstance(train_corpora, str) or len(train_corpora) == 0:
    raise ValueError(f"train_corpora={train_corpora!r} must be a non-empty list drawn from {list(CORPORA)}")
for name in train_corpora:
    check_choice("train_corpora", name, CORPORA)
configs = {size: dyn.TrainingConfig(architecture=architecture, size=size, steps=steps, batch_size=batch_size,
                                    lr=learning_rate, checkpoint_every=checkpoint_every, seed=seed)
           for size in model_sizes}
settings = dyn.ProbeSettings(eval_corpus=eval_corpus, window_length=probe_window_length, n_tokens=probe_n_tokens,
                             seed=probe_seed, sample_seed=sample_seed)
check_float("r2_threshold", r2_threshold, low=0, high=1, low_inclusive=False)
check_float("final_fraction", final_fraction, low=0, high=1, low_inclusive=False)
check_float("e_left_threshold", e_left_threshold, low=0, high=1)
check_positive_int("n_boot_tokens", n_boot_tokens)
pythia = dyn.pythia_refs(pythia_model, pythia_revisions) if pythia_model is not None else None
start_run(CHAPTER, globals(), None)
set_theme()
pd.DataFrame([{"size": size, "d": c.shape.d_model, "layers": c.shape.n_layers, "heads": c.shape.n_heads,
               "context": c.shape.n_ctx, "steps": c.steps, "tokens per step": c.batch_size * c.shape.n_ctx,
               "checkpoints": len(c.grid)} for size, c in configs.items()])

# %% [markdown]
# ## 4.1 Training from scratch
#
# Each size is trained once and cached under a key of everything that determines its weights (shape, steps, batch,
# learning rate, seed, the bytes of the training text, the tokenizer, the code version). The loss of the output
# layer is computed in chunks of positions, never holding the (positions × 50,257) logits whole.

# %%
train_text = "\n".join(read_corpus(name, "train") for name in train_corpora)
tokenizer = gpt2_tokenizer()
runs = {size: dyn.train_run(config, train_text, tokenizer) for size, config in configs.items()}
counts = next(iter(runs.values())).token_counts  # (V,) training-text count of each token
training = pd.DataFrame([{"size": size, "parameters": configs[size].shape.n_parameters(len(tokenizer)),
                          "checkpoints": len(run.checkpoints), "epochs": run.epochs,
                          "training minutes": run.train_seconds / 60} for size, run in runs.items()])
record(CHAPTER, "n_train_tokens", next(iter(runs.values())).n_train_tokens, fmt=",",
       description="GPT-2 BPE tokens in the training text")
record(CHAPTER, "n_unseen", int((counts == 0).sum()), fmt=",", description="vocabulary tokens absent from it")
record(CHAPTER, "n_train_documents", len(documents(train_text)), fmt=",",
       description="documents (blank-line blocks) of the training text")
record(CHAPTER, "n_checkpoints", len(next(iter(runs.values())).checkpoints), description="checkpoints per size")
record(CHAPTER, "epochs", next(iter(runs.values())).epochs, fmt=".2f", description="passes over the training text")
record(CHAPTER, "train_minutes", sum(run.train_seconds for run in runs.values()) / 60, fmt=".1f",
       description="wall-clock minutes spent training all sizes (when first built)")
training.round(3)

# %% [markdown]
# ## 4.2 The probes at every checkpoint
#
# Every checkpoint is loaded as an ordinary model from its `save_pretrained` folder. Its output embedding
# $E$ (50,257 × d) is probed against the token counts of the training text; a pass over
# the held-out text gives its $\alpha$ (for the encoding fit) and its held-out loss. The same random 20% of tokens is
# held out of every fit at every checkpoint. The held-out text: {glue:text}`04_dynamics.heldout_text`. The frequency
# target is counted over the whole training text ({glue:text}`04_dynamics.n_train_documents` documents,
# {glue:text}`04_dynamics.n_train_tokens` tokens).

# %%
frames = {size: dyn.probe_checkpoints(run.refs(), train_text, settings) for size, run in runs.items()}
summaries = {size: dyn.summarize_dynamics(frame, r2_threshold, final_fraction) for size, frame in frames.items()}
main, small = model_sizes[-1], model_sizes[0]  # the largest size carries the headline numbers
columns = ["step", "heldout_loss", "freq_r2", "freq_spearman", "encoding_r2", "e_distance", "param_distance",
           "duplicate_of"]
record(CHAPTER, "heldout_text", frames[main]["heldout_text"].iloc[-1],
       description="the held-out text of the probes (the same windows at every checkpoint)")
frames[main][columns].round(3)

# %%
glue_figure("fig-dyn-loss", dyn.plot_losses(runs, frames))
headline = summaries[main]
for key, fmt, description in [
    ("initial_loss", ".2f", "held-out loss at initialisation (nats)"),
    ("final_loss", ".2f", "held-out loss of the final checkpoint (nats)"),
    ("final_freq_r2", ".2f", "held-out R² of the frequency probe, final checkpoint"),
    ("final_freq_spearman", ".2f", "Spearman of the frequency direction, final checkpoint"),
    ("final_encoding_r2", ".3f", "held-out R² of the log-linear encoding of alpha, final checkpoint"),
]:
    record(CHAPTER, key, dyn.value_text(headline[key], fmt), description=f"{main}: {description}")
record(CHAPTER, "initial_encoding_r2", frames[main]["encoding_r2"].iloc[0], fmt=".3f",
       description=f"{main}: held-out R² of the log-linear encoding at initialisation")
record(CHAPTER, "main_size", main, description="the size of the headline numbers")
record(CHAPTER, "small_size", small, description="the smallest size")
record(CHAPTER, "small_final_freq_r2", summaries[small]["final_freq_r2"], fmt=".2f",
       description=f"{small}: held-out R² of the frequency probe, final checkpoint")

# %% [markdown]
# ```{glue:figure} fig-dyn-loss
# :name: fig-dyn-loss
# Training loss (running mean) and held-out loss on Wikipedia test text at every checkpoint, for each model size.
# The dotted line is the loss of a uniform prediction over the 50,257 tokens.
# ```
#
# The {glue:text}`04_dynamics.main_size` model starts at a held-out loss of {glue:text}`04_dynamics.initial_loss`
# nats and ends at {glue:text}`04_dynamics.final_loss` after {glue:text}`04_dynamics.epochs` passes over the
# {glue:text}`04_dynamics.n_train_tokens` training tokens: these are small, briefly trained models, far from Pythia's
# 300 billion tokens, and the question is only *in which order* things are learned.

# %%
glue_figure("fig-dyn-probe", dyn.plot_probes(frames))

# %% [markdown]
# ```{glue:figure} fig-dyn-probe
# :name: fig-dyn-probe
# Left: how well a linear read-out of the output embedding predicts log corpus frequency (held-out $R^2$ over
# tokens, and Spearman correlation of the fitted direction). Right: the log-linear encoding of chapter 1, fitted to
# each checkpoint's own averaged output distribution $\alpha$. Mirrors the paper's probe of Pythia checkpoints
# {cite}`cho2025understanding`.
# ```
#
# At the final checkpoint the frequency probe of the {glue:text}`04_dynamics.main_size` model reaches held-out
# $R^2$ = {glue:text}`04_dynamics.final_freq_r2` (Spearman {glue:text}`04_dynamics.final_freq_spearman`;
# {glue:text}`04_dynamics.small_final_freq_r2` for the {glue:text}`04_dynamics.small_size` model), and the
# log-linear encoding of its own $\alpha$ reaches $R^2$ = {glue:text}`04_dynamics.final_encoding_r2`. The random
# initialisation scores about zero on the frequency probe, as a random matrix should, but already
# {glue:text}`04_dynamics.initial_encoding_r2` on the encoding: with logits near zero,
# $\alpha_w \approx \frac{1}{V}(1 + E_w\cdot\bar h - c)$, with $\bar h$ the mean hidden state and $c$ the same for every
# token, so $-\log\alpha_w$ is linear in $E_w$ to first order whatever $E$ is. For these small, weakly contextual
# models the encoding probe is therefore no evidence of learning; the frequency probe is.
#
# ## 4.3 Frequency before convergence?

# %%
glue_figure("fig-dyn-convergence", dyn.plot_convergence(frames, {size: summ["first_step"]
                                                                  for size, summ in summaries.items()}))
milestones = ["first_step", "first_step_fraction"]
for milestone in milestones:
    record(CHAPTER, milestone, dyn.value_text(headline[milestone], "d"),
           description=f"{main}: first step from which the frequency R² stays above the milestone")
    for column, fmt in [("freq_r2", ".2f"), ("e_distance", ".0%"), ("e_centred_distance", ".0%"),
                        ("param_distance", ".0%"), ("heldout_loss", ".2f")]:
        record(CHAPTER, f"{column}_at_{milestone}", dyn.value_text(headline[f"{column}_at_{milestone}"], fmt),
               description=f"{main}: {column} at {milestone}")
record(CHAPTER, "final_fraction", final_fraction, fmt=".0%", description="share of the final R² used as a milestone")
record(CHAPTER, "r2_threshold", r2_threshold, fmt=".2f", description="R² threshold of the first milestone")
record(CHAPTER, "small_first_step", dyn.value_text(summaries[small]["first_step"], "d"),
       description=f"{small}: first step from which the frequency R² stays >= {r2_threshold}")
first = frames[main].iloc[0]  # ||E_0 - E_final||² = ||centred part||² + V ||mean-row displacement||²
record(CHAPTER, "mean_row_share", 1 - first["e_centred_distance_abs"] ** 2 / first["e_distance_abs"] ** 2,
       fmt=".0%", description=f"{main}: share of ||E_0 - E_final||² due to the mean-row displacement")
last_two = frames[main].sort_values("step").tail(2)  # is the probe still rising when training stops?
record(CHAPTER, "step_before_final", int(last_two.step.iloc[0]), fmt=",",
       description=f"{main}: last checkpoint but one")
record(CHAPTER, "freq_r2_last_gain", float(last_two.freq_r2.iloc[1] - last_two.freq_r2.iloc[0]), fmt="+.2f",
       description=f"{main}: frequency R² gained between the last two checkpoints")
pd.DataFrame(summaries).T[[f"{column}_at_{milestone}" for milestone in milestones
                           for column in ("freq_r2", "e_distance", "e_centred_distance", "heldout_loss")]]

# %% [markdown]
# ```{glue:figure} fig-dyn-convergence
# :name: fig-dyn-convergence
# For each size, on one step axis: the frequency probe's held-out $R^2$; the distance of the output embedding to the
# final checkpoint, as a fraction of its distance at initialisation, plain and with each matrix's mean row removed;
# the same for all parameters; and the share of the held-out loss drop still to come. The dotted vertical line marks
# the first step from which the $R^2$ stays at or above {glue:text}`04_dynamics.r2_threshold`. The paper's claim
# {cite}`cho2025understanding` is that the first curve rises while the others are still high.
# ```
#
# The frequency $R^2$ of the {glue:text}`04_dynamics.main_size` model stays at or above
# {glue:text}`04_dynamics.r2_threshold` from step {glue:text}`04_dynamics.first_step` on (where it is
# {glue:text}`04_dynamics.freq_r2_at_first_step`). At that step the output embedding is still
# {glue:text}`04_dynamics.e_distance_at_first_step` of its initial distance away from its final value (all
# parameters: {glue:text}`04_dynamics.param_distance_at_first_step`; the embeddings are most of the parameters), and
# the held-out loss is {glue:text}`04_dynamics.heldout_loss_at_first_step` nats. The $R^2$ reaches
# {glue:text}`04_dynamics.final_fraction` of its final value from step {glue:text}`04_dynamics.first_step_fraction`
# on, where $E$ is {glue:text}`04_dynamics.e_distance_at_first_step_fraction` of its initial distance from the end.
#
# Much of that distance is invisible to the model's outputs. Adding one vector to every row of $E$ adds the same
# number to every logit of a position, which the softmax ignores, and the gradient of the loss sums to zero over the
# rows of $E$, so plain gradient descent would never move the mean row. AdamW does: it rescales each row's update by
# that row's own gradient magnitude, so the many rare tokens, all pushed the same small way at every step, take
# steps as large as the frequent ones. The mean-row displacement accounts for {glue:text}`04_dynamics.mean_row_share`
# of the squared distance the output embedding travels. With the mean row removed, the distance to the final
# checkpoint is {glue:text}`04_dynamics.e_centred_distance_at_first_step` at step
# {glue:text}`04_dynamics.first_step` and {glue:text}`04_dynamics.e_centred_distance_at_first_step_fraction` at step
# {glue:text}`04_dynamics.first_step_fraction`.

# %% [markdown]
# ## 4.4 Tokens never seen in training
#
# {glue:text}`04_dynamics.n_unseen` of the 50,257 tokens never occur in the training text. Their output embeddings
# receive a gradient only through the softmax's normaliser: at every position each is pushed away from the hidden
# state, with a weight equal to its (small) probability. All unseen tokens therefore receive nearly the same update,
# and AdamW turns even that tiny gradient into a step of about the learning rate. Where do these rows go, and what
# does that do to the probe? Rows are measured from the mean row of $E$ (which the softmax ignores, section 4.3).

# %%
final_head = dyn.load_checkpoint(runs[main].refs()[-1])
groups = dyn.predictions_by_count(final_head.model.get_output_embeddings().weight.detach(), counts,
                                  test_fraction=settings.test_fraction, seed=settings.seed)
glue_figure("fig-dyn-unseen", dyn.plot_unseen(frames, groups, main))
initial_row, final_row = frames[main].iloc[0], frames[main].iloc[-1]
for key, value, fmt, description in [
    ("shared_unseen", final_row["shared_unseen"], ".2f", "unseen rows: share of centred norm² that is shared"),
    ("shared_once", final_row["shared_once"], ".2f", "rows of tokens seen once: the same"),
    ("shared_frequent", final_row["shared_frequent"], ".2f", "rows of tokens seen >= 100 times: the same"),
    ("spread_unseen_initial", initial_row["spread_unseen"], ".3f", "RMS distance of unseen rows to their mean, init"),
    ("spread_unseen", final_row["spread_unseen"], ".3f", "the same, final"),
    ("spread_once", final_row["spread_once"], ".3f", "the same for tokens seen once, final"),
    ("unseen_predicted_median", final_row["unseen_predicted_median"], ".1f", "median predicted log freq, unseen"),
    ("once_predicted_median", final_row["once_predicted_median"], ".1f", "median predicted log freq, seen once"),
    ("freq_r2_all_tokens", final_row["freq_r2_all_tokens"], ".2f", "frequency R² with unseen tokens at 0.5 counts"),
]:
    record(CHAPTER, key, value, fmt=fmt, description=f"{main}: {description}")
groups.groupby("group", sort=False)["predicted"].describe()[["count", "25%", "50%", "75%"]].round(2)

# %% [markdown]
# ```{glue:figure} fig-dyn-unseen
# :name: fig-dyn-unseen
# Left: for tokens never seen in training, seen once, and seen at least 100 times, the share of their rows' squared
# norm (measured from the mean row of $E$) that is one offset shared by the whole group: 1 when the rows are equal,
# near 0 when they scatter independently. Right: where the frequency probe of the final
# {glue:text}`04_dynamics.main_size` checkpoint, fitted on seen tokens only, places tokens grouped by how often they
# occur in the training text.
# ```
#
# The unseen rows move as one rigid cloud. Their spread around their own mean hardly changes (root-mean-square
# distance {glue:text}`04_dynamics.spread_unseen_initial` at initialisation, {glue:text}`04_dynamics.spread_unseen`
# at the end: what is left is the random initialisation), while the whole cloud is displaced, so that by the end a
# share of {glue:text}`04_dynamics.shared_unseen` of their squared norm is the shared offset
# ({glue:text}`04_dynamics.shared_once` for tokens seen once, whose rows spread to
# {glue:text}`04_dynamics.spread_once`, and {glue:text}`04_dynamics.shared_frequent` for tokens seen at least 100
# times). The probe fitted on seen tokens places the unseen tokens at a median log relative frequency of
# {glue:text}`04_dynamics.unseen_predicted_median`, against {glue:text}`04_dynamics.once_predicted_median` for tokens
# seen exactly once: the shared offset points the way of rarity. Scoring the probe on all tokens, the unseen ones at
# half a count, gives $R^2$ = {glue:text}`04_dynamics.freq_r2_all_tokens` instead of
# {glue:text}`04_dynamics.final_freq_r2`: the unseen tokens are a large group of rows with one target, and how well
# they fit depends on where that pseudo-count puts them, not on anything the model learned about frequency, which is
# why the main probe uses seen tokens only.
#
# ## 4.5 Real Pythia checkpoints
#
# With `pythia_model` set (e.g. `"EleutherAI/pythia-70m"`) and `pythia_revisions` a list of Pythia's revisions
# (`stepN`, checked against Pythia's published grid before any network access), the same probes run on the real
# checkpoints, with token counts of this book's training text under Pythia's tokenizer (a proxy: Pythia was trained
# on the Pile). Checkpoints whose output embedding is bit-identical to an earlier one are detected by a hash of $E$
# and left out of the curves: several early branches of pythia-2.8b, for instance, hold the final weights.

# %%
pythia_frame = None
if pythia is None:
    pythia_status = "skipped: pythia_model is None (the default; set it where the hub or a local cache is reachable)"
else:
    try:
        pythia_frame = dyn.probe_checkpoints(pythia, train_text, settings)
        duplicates = pythia_frame[pythia_frame["duplicate_of"] != ""]
        pythia_status = (f"probed {len(pythia_frame)} of {len(pythia)} checkpoints of {pythia_model}; "
                         f"{len(duplicates)} identical to an earlier checkpoint"
                         + "".join(f"; {row.revision} = {row.duplicate_of}" for row in duplicates.itertuples())
                         + "".join(f"; {label} unavailable" for label in pythia_frame.attrs["unavailable"]))
    except dyn.CheckpointUnavailableError as error:
        pythia_status = f"not available on this machine ({error})"
record(CHAPTER, "pythia_status", pythia_status, description="what happened to the Pythia probe")
glue_figure("fig-dyn-pythia", dyn.plot_pythia(pythia_frame, pythia_model, pythia_status))
pythia_frame[columns].round(3) if pythia_frame is not None else pythia_status

# %% [markdown]
# ```{glue:figure} fig-dyn-pythia
# :name: fig-dyn-pythia
# The probes of section 4.2 and the distances of section 4.3 on real Pythia checkpoints {cite}`biderman2023pythia`,
# where they could be loaded; red dotted lines mark checkpoints identical to an earlier one (left out of the curves).
# Mirrors the paper's Pythia analysis {cite}`cho2025understanding`. In the published book the panel only states why
# the probe did not run.
# ```
#
# Pythia: {glue:text}`04_dynamics.pythia_status`.
#
# ## Scorecard
#
# The claim "frequency is encoded in the output embedding early, before the parameters converge" is checked on the
# {glue:text}`04_dynamics.main_size` model with two checks, each a number with its 95% interval against a
# threshold: the frequency probe's held-out $R^2$ at the final checkpoint, at least
# {glue:text}`04_dynamics.r2_threshold` ("encoded"); and the distance of $E$ to its final value, as a share of its
# initial distance, at the first step from which the $R^2$ stays at or above {glue:text}`04_dynamics.final_fraction`
# of its final value, at least {glue:text}`04_dynamics.e_left_threshold` ("early": the plain distance, as the paper's
# "parameters"; section 4.3 gives the centred one too).
#
# The intervals here resample the probe's held-out tokens ({glue:text}`04_dynamics.n_boot_tokens` times, the same
# draw at every checkpoint), not texts: the probe's target is each token's count over the *whole* training text the
# model learned from ({glue:text}`04_dynamics.n_train_documents` documents), so no sample of text stands behind it, and
# recounting a resampled corpus against a model trained on the original one measures their mismatch rather than an
# uncertainty (a document bootstrap we tried put its whole interval below the measured value). The second check's
# interval comes from the same draws: each resampled $R^2$ curve has its own first step, and the distance of $E$ at
# that checkpoint is the sample's value. What these intervals cannot cover is the variation between training runs
# (other seeds or other training texts): one run per size is trained. A check is *reproduced* when its whole interval
# clears the threshold, *not reproduced* when the whole interval falls short, and *inconclusive* when the interval
# contains the threshold.

# %%
checks = dyn.headline_checks(frames[main], dyn.checkpoint_embeddings(frames[main], runs[main].refs()), counts,
                             settings=settings, r2_threshold=r2_threshold, final_fraction=final_fraction,
                             e_left_threshold=e_left_threshold, n_boot=n_boot_tokens, boot_seed=seed)
record_many(CHAPTER, {
    "e_left_threshold": (e_left_threshold, ".0%", "threshold of the 'early' check"),
    "n_boot_tokens": (n_boot_tokens, None, "resamples of the probe's held-out tokens behind the intervals"),
    "final_freq_r2_ci": (checks[0].interval.text(".2f"), None, "95% interval over held-out tokens of the final R²"),
    "e_left_ci": (checks[1].interval.text(".0%"), None, "95% interval over held-out tokens of the 'early' distance"),
})
record_scorecard(
    CHAPTER,
    f"frequency R² {checks[0].value:.2f} {checks[0].interval.text('.2f')} at the end; {final_fraction:.0%} of it "
    f"from step {dyn.value_text(headline['first_step_fraction'], 'd')}, with E {checks[1].value:.0%} "
    f"{checks[1].interval.text('.0%')} of its initial distance from the end",
    checks,
)

# %% [markdown]
# Verdict: **{glue:text}`04_dynamics.verdict`**: {glue:text}`04_dynamics.verdict_reason`.
#
# ## Summary and caveats
#
# - The verdict combines the two checks by the front page's rule: *reproduced* when both are, *not reproduced* when
#   neither is, *partly reproduced* when one is and the other is not; an open check makes it *inconclusive* beside a
#   reproduced one and leaves it *not reproduced* beside a failed one. The intervals
#   resample the probe's held-out tokens; they do not retrain the models, so they say how stable the numbers are
#   over the vocabulary, not how much they would move with another training text or seed.
# - Small GPT-NeoX models trained from scratch on {glue:text}`04_dynamics.n_train_tokens` tokens learn a linear
#   read-out of log corpus frequency in their output embedding (held-out $R^2$ {glue:text}`04_dynamics.final_freq_r2`
#   at the end, {glue:text}`04_dynamics.final_freq_r2_ci` over held-out tokens); from step
#   {glue:text}`04_dynamics.first_step` on it stays above {glue:text}`04_dynamics.r2_threshold`.
# - "Early" is relative: each run is {glue:text}`04_dynamics.n_checkpoints` checkpoints over a few hundred steps
#   of a few hundred tokens each, {glue:text}`04_dynamics.train_minutes` minutes of training in all when the cache was
#   first built; Pythia's grid spans 143,000 steps of about two million tokens. The grid's logarithmic start is the
#   same, not the scale, and the learning-rate schedule is compressed accordingly.
# - The log-linear encoding of chapter 1 fits these models almost perfectly at every checkpoint, initialisation
#   included ($R^2$ {glue:text}`04_dynamics.initial_encoding_r2` at step 0): when the logits are small, or barely
#   depend on the context, $\log\alpha_w$ is close to linear in $E_w$ for any $E$. On such models it says nothing
#   about what was learned; the frequency probe, whose target does not come from the model, does.
# - Frequencies are counts in this book's small training text; a token seen once has a very noisy frequency, and
#   {glue:text}`04_dynamics.n_unseen` tokens are never seen at all. Their output embeddings keep their random
#   initialisation plus one shared offset (section 4.4), so a probe that includes them measures where that offset
#   sits more than what the model learned about frequency.
# - The distances to the final checkpoint depend on where training stops: a longer run moves the final point and
#   every fraction on this page. The frequency $R^2$ itself has not levelled off: it changes by
#   {glue:text}`04_dynamics.freq_r2_last_gain` between step {glue:text}`04_dynamics.step_before_final` and the last
#   checkpoint, so "a fraction of its final value" is a fraction of a value a longer run would move.
# - Rerun the chapter with other sizes, steps or seeds (papermill parameters); with `pythia_model` set it probes real
#   Pythia checkpoints where they are reachable.
