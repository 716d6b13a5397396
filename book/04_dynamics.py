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
steps = 640  # optimizer steps per model
batch_size = 4  # windows per step (each window is the size's context length)
learning_rate = 2e-3  # peak AdamW learning rate (warm-up, then cosine decay to a tenth)
checkpoint_every = 64  # checkpoint spacing after step 512
seed = 0  # initial weights and data order
train_corpora = ["wikipedia", "shakespeare", "bible"]  # their train splits, concatenated
eval_corpus = "wikipedia"  # its test split gives held-out loss and alpha
probe_window_length = 64  # tokens per window of the held-out pass
probe_n_tokens = 2048  # tokens of the held-out pass at every checkpoint
probe_seed = 0  # held-out token split of the probes
r2_threshold = 0.5  # "frequency is encoded" once the held-out R² stays at or above this
final_fraction = 0.9  # ... or at or above this fraction of its final value
pythia_model = None  # e.g. "EleutherAI/pythia-70m" where the hub or a local cache is reachable; None skips
pythia_revisions = ["step0", "step1", "step2", "step4", "step8", "step16", "step32", "step64", "step128",
                    "step256", "step512", "step1000", "step2000", "step4000", "step8000", "step16000",
                    "step32000", "step64000", "step143000"]

# %%
import numpy as np
import pandas as pd

from utils import dynamics as dyn
from utils.corpora import CORPORA, read_corpus
from utils.plotting import set_theme
from utils.results import glue_figure, record, record_scorecard
from utils.tokenizers import gpt2_tokenizer
from utils.validation import check_choice, check_float

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
                             seed=probe_seed)
check_float("r2_threshold", r2_threshold, low=0, high=1, low_inclusive=False)
check_float("final_fraction", final_fraction, low=0, high=1, low_inclusive=False)
pythia = dyn.pythia_refs(pythia_model, pythia_revisions) if pythia_model is not None else None
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
# held out of every fit at every checkpoint.

# %%
frames = {size: dyn.probe_checkpoints(run.refs(), train_text, settings) for size, run in runs.items()}
summaries = {size: dyn.summarize_dynamics(frame, r2_threshold, final_fraction) for size, frame in frames.items()}
main, small = model_sizes[-1], model_sizes[0]  # the largest size carries the headline numbers
columns = ["step", "heldout_loss", "freq_r2", "freq_spearman", "encoding_r2", "e_distance", "param_distance",
           "duplicate_of"]
frames[main][columns].round(3)

# %%
glue_figure("fig-dyn-loss", dyn.plot_losses(runs, frames))


def as_text(value, fmt):
    """A recorded value, or "not reached" where a step was never reached (NaN or None)."""
    return "not reached" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, fmt)


headline = summaries[main]
for key, fmt, description in [
    ("initial_loss", ".2f", "held-out loss at initialisation (nats)"),
    ("final_loss", ".2f", "held-out loss of the final checkpoint (nats)"),
    ("final_freq_r2", ".2f", "held-out R² of the frequency probe, final checkpoint"),
    ("final_freq_spearman", ".2f", "Spearman of the frequency direction, final checkpoint"),
    ("final_encoding_r2", ".2f", "held-out R² of the log-linear encoding of alpha, final checkpoint"),
    ("first_step", "d", f"first step from which the frequency R² stays >= {r2_threshold}"),
    ("freq_r2_at_first_step", ".2f", "frequency R² at that step"),
    ("e_distance_at_first_step", ".0%", "distance of E to final at that step, share of the initial distance"),
    ("param_distance_at_first_step", ".0%", "same for all parameters"),
    ("heldout_loss_at_first_step", ".2f", "held-out loss at that step"),
    ("first_step_fraction", "d", f"first step from which the frequency R² stays >= {final_fraction} of final"),
    ("e_distance_at_first_step_fraction", ".0%", "distance of E to final at that step, share of initial"),
    ("param_distance_at_first_step_fraction", ".0%", "same for all parameters"),
]:
    record(CHAPTER, key, as_text(headline[key], fmt), description=f"{main}: {description}")
record(CHAPTER, "main_size", main, description="the size of the headline numbers")
record(CHAPTER, "final_fraction", final_fraction, fmt=".0%", description="share of the final R² used as a milestone")
record(CHAPTER, "r2_threshold", r2_threshold, fmt=".2f", description="R² threshold of the first milestone")
record(CHAPTER, "small_size", small, description="the smallest size")
record(CHAPTER, "small_final_freq_r2", summaries[small]["final_freq_r2"], fmt=".2f",
       description=f"{small}: held-out R² of the frequency probe, final checkpoint")
record(CHAPTER, "small_first_step", as_text(summaries[small]["first_step"], "d"),
       description=f"{small}: first step from which the frequency R² stays >= {r2_threshold}")

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
# initialisation scores about zero on both, as a random matrix should.
#
# ## 4.3 Frequency before convergence?

# %%
first_steps = {size: summary["first_step"] for size, summary in summaries.items()}
glue_figure("fig-dyn-convergence", dyn.plot_convergence(frames, first_steps))
pd.DataFrame(summaries).T[["first_step", "freq_r2_at_first_step", "e_distance_at_first_step",
                           "param_distance_at_first_step", "first_step_fraction",
                           "e_distance_at_first_step_fraction", "final_freq_r2", "final_loss"]]

# %% [markdown]
# ```{glue:figure} fig-dyn-convergence
# :name: fig-dyn-convergence
# For each size, on one step axis: the frequency probe's held-out $R^2$, the distance of the output embedding and of
# all parameters to the final checkpoint (as a fraction of the distance at initialisation), and the share of the
# held-out loss drop still to come. The dotted vertical line marks the first step from which the $R^2$ stays at or
# above the threshold. The paper's claim {cite}`cho2025understanding` is that the first curve rises while the others
# are still high.
# ```
#
# The frequency $R^2$ of the {glue:text}`04_dynamics.main_size` model stays at or above the threshold from step
# {glue:text}`04_dynamics.first_step` (where it is {glue:text}`04_dynamics.freq_r2_at_first_step`). At that step the
# output embedding is still {glue:text}`04_dynamics.e_distance_at_first_step` of its initial distance away from its
# final value, all parameters {glue:text}`04_dynamics.param_distance_at_first_step`, and the held-out loss is
# {glue:text}`04_dynamics.heldout_loss_at_first_step` nats. The $R^2$ reaches {glue:text}`04_dynamics.final_fraction`
# of its final value from step {glue:text}`04_dynamics.first_step_fraction` on, where $E$ is still
# {glue:text}`04_dynamics.e_distance_at_first_step_fraction` of its initial distance from the end.

# %% [markdown]
# ## 4.4 Tokens never seen in training
#
# {glue:text}`04_dynamics.n_unseen` of the 50,257 tokens never occur in the training text. Their output embeddings
# receive a gradient only through the softmax's normaliser: at every position each is pushed away from the hidden
# state, with a weight equal to its (small) probability. All unseen tokens therefore receive nearly the same update,
# and AdamW, which rescales each coordinate of the update by its own running magnitude, turns even a tiny gradient
# into a step of about the learning rate. Where do these rows go, and what does that do to the probe?

# %%
final_head = dyn.load_checkpoint(runs[main].refs()[-1])
groups = dyn.predictions_by_count(final_head.model.get_output_embeddings().weight.detach(), counts,
                                  test_fraction=settings.test_fraction, seed=settings.seed)
glue_figure("fig-dyn-unseen", dyn.plot_unseen(frames, groups, main))
final_row = frames[main].iloc[-1]
for key, value, fmt, description in [
    ("collapse_unseen", final_row["collapse_unseen"], ".3f", "unseen rows: ||mean||² / mean ||row||², final"),
    ("collapse_seen", final_row["collapse_seen"], ".3f", "seen rows: the same"),
    ("norm_unseen", final_row["e_norm_unseen"], ".2f", "mean norm of unseen rows, final"),
    ("norm_seen", final_row["e_norm_seen"], ".2f", "mean norm of seen rows, final"),
    ("unseen_predicted_median", final_row["unseen_predicted_median"], ".1f", "median predicted log freq, unseen"),
    ("once_predicted_median", final_row["once_predicted_median"], ".1f", "median predicted log freq, seen once"),
    ("freq_r2_all_tokens", final_row["freq_r2_all_tokens"], ".2f", "frequency R² with unseen tokens at 0.5 counts"),
]:
    record(CHAPTER, key, value, fmt=fmt, description=f"{main}: {description}")
groups.groupby("group", sort=False)["predicted"].describe()[["count", "25%", "50%", "75%"]].round(2)

# %% [markdown]
# ```{glue:figure} fig-dyn-unseen
# :name: fig-dyn-unseen
# Left: how alike the output embeddings of a group of tokens are, $\lVert \bar E\rVert^2 / \overline{\lVert E_w
# \rVert^2}$ (1 when all rows are equal, near 0 for independent random rows), for tokens never seen in training and
# for seen tokens. Right: where the frequency probe of the final {glue:text}`04_dynamics.main_size` checkpoint,
# fitted on seen tokens only, places tokens grouped by how often they occur in the training text.
# ```
#
# By the end of training the unseen rows are nearly one shared vector (collapse
# {glue:text}`04_dynamics.collapse_unseen`, against {glue:text}`04_dynamics.collapse_seen` for seen tokens) with a
# larger norm ({glue:text}`04_dynamics.norm_unseen` against {glue:text}`04_dynamics.norm_seen`): training adds the
# same large displacement to every row and the unseen rows keep little else. The probe fitted on seen tokens puts
# the unseen tokens at a median log frequency of {glue:text}`04_dynamics.unseen_predicted_median`, against
# {glue:text}`04_dynamics.once_predicted_median` for tokens seen exactly once. Scoring the probe on all tokens, the
# unseen ones at half a count, gives $R^2$ = {glue:text}`04_dynamics.freq_r2_all_tokens` instead of
# {glue:text}`04_dynamics.final_freq_r2`: a large group of nearly identical rows with identical targets is easy to
# fit, or impossible, depending on where it sits; either way it says little about the encoding of frequency, which is
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
    except dyn.CheckpointUnavailable as error:
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
# {glue:text}`04_dynamics.main_size` model with two criteria stated before looking at the curves: the frequency
# probe must end well above chance, and it must reach {glue:text}`04_dynamics.final_fraction` of its final $R^2$
# while $E$ is still at least half its initial distance away from its final value.

# %%
e_left = headline["e_distance_at_first_step_fraction"]
record_scorecard(
    CHAPTER,
    f"frequency R² {headline['final_freq_r2']:.2f} at the end; {final_fraction:.0%} of it by step "
    f"{as_text(headline['first_step_fraction'], 'd')}, with E {as_text(e_left, '.0%')} of its way from the end",
    {
        f"final frequency R² >= {r2_threshold} (measured {headline['final_freq_r2']:.2f})":
            headline["final_freq_r2"] >= r2_threshold,
        f"{final_fraction:.0%} of the final R² reached while ||E - E_final|| >= 50% of its initial value "
        f"(measured {as_text(e_left, '.0%')})": bool(e_left >= 0.5),
    },
)

# %% [markdown]
# Verdict: **{glue:text}`04_dynamics.verdict`**: {glue:text}`04_dynamics.verdict_reason`.
#
# ## Summary and caveats
#
# - Small GPT-NeoX models trained from scratch on {glue:text}`04_dynamics.n_train_tokens` tokens learn a linear
#   read-out of log corpus frequency in their output embedding (held-out $R^2$ {glue:text}`04_dynamics.final_freq_r2`
#   at the end); from step {glue:text}`04_dynamics.first_step` on it stays above {glue:text}`04_dynamics.r2_threshold`.
# - "Early" is relative: these runs are {glue:text}`04_dynamics.n_checkpoints` checkpoints and a few hundred steps
#   of a few hundred tokens each, taking {glue:text}`04_dynamics.train_minutes` minutes on a laptop-class CPU when
#   first built; Pythia's grid spans 143,000 steps of two million tokens. The grid's logarithmic start is the same,
#   not the scale, and the learning-rate schedule is compressed accordingly.
# - Frequencies are counts in this book's small training text; a token seen once has a very noisy frequency, and
#   {glue:text}`04_dynamics.n_unseen` tokens are never seen at all. Their output embeddings collapse onto one shared
#   vector (section 4.4), so any probe that includes them measures that collapse more than frequency.
# - The distances to the final checkpoint depend on where training stops: a longer run moves the final point and
#   every fraction on this page.
# - Rerun the chapter with other sizes, steps or seeds (papermill parameters); with `pythia_model` set it probes real
#   Pythia checkpoints where they are reachable.
