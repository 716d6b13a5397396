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
# # The headline numbers of chapters 1 to 3, for one sampling of the text
#
# Not a page of the book: the robustness page ({doc}`99_robustness`) executes this notebook with papermill, through
# `bookbuild`, once per sampling seed and window length, each run keeping its own results file. It computes the
# scorecard's checks of chapters 1 to 3 with the same `utils` functions the chapters call, and how many tokens of the
# model's head can never be the argmax (chapter 5's test; its verdicts are reused at chapter 5's settings).

# %% tags=["parameters"]
model = "smollm2-135m"  # offline name, Hugging Face id or local folder
revision = None  # hub revision
device = "cpu"  # where the model runs: "cpu", "cuda" or "auto"
precision = "float32"  # the body's precision: "float32", "bfloat16" (as asked) or "auto" (bf16 if faster here)
corpus = "wikipedia"  # the corpus of the chapters' headline numbers
window_length = 128  # tokens per input window
n_tokens = 32768  # tokens of the training pass
n_tokens_test = 8192  # tokens of the held-out pass
sample_seed = 0  # seed of the windows drawn across each corpus split
batch_size = 8  # windows per forward pass (speed only)
keep_passes = False  # also cache this run's own passes (~160 MB a run; a rerun after a code change skips them)
test_fraction = 0.2  # share of the vocabulary held out of each fit
seed = 0  # token split and bootstrap
n_boot_texts = 200  # document resamples behind each interval
encoding = {}  # keyword arguments of utils.encoding.scorecard.headline_checks beyond the above (thresholds)
r_values = [1 / 100, 1 / 50, 1 / 20, 1 / 10, 1 / 5, 1 / 2, 1, 2, 5, 10, 20, 50, 100]  # chapter 2's target ratios
r_headline = 20  # chapter 2's headline ratio
k_values = [1, 2, 4, 8, 16, 32, 64, 128, 256]  # chapter 2's masked dimensions
n_buckets = 5  # chapter 2's frequency buckets
tokens_per_bucket = 50  # chapter 2's tokens per bucket
selection_windows = 16  # chapter 2's training windows that choose k (and measure the paper's setting)
band = 2.0  # chapter 2's error band
n_positions = 1024  # chapter 3's held-out positions behind its checks
pruning = {}  # keyword arguments of utils.pruning.scorecard.headline_checks beyond the above (fraction, thresholds)
argmax_max_tokens = None  # tokens of the head tested for argmaxability: None for all (as chapter 5), else a sample
argmax = {}  # keyword arguments of utils.argmax.verdicts.find_unargmaxable (box, patience, start); {}: chapter 5's

# %%
import pandas as pd

from utils.encoding import scorecard as encoding_scorecard
from utils.head import output_head
from utils.models import describe, load_model
from utils.pruning import scorecard as pruning_scorecard
from utils.reruns.parameters import HeadlineParameters
from utils.results import start_run
from utils.reruns.headlines import argmax_counts, check_rows, choice_rows, headline_passes
from utils.steering import scorecard as steering_scorecard

NOTEBOOK = "headlines"
parameters = HeadlineParameters.from_namespace(globals())  # run sizes, seed and argmax sample, checked before any work
loaded = load_model(model, revision, device=device, precision=precision)
rec = start_run(NOTEBOOK, globals(), loaded)
passes = headline_passes(loaded, corpus, window_length=window_length, sample_seed=sample_seed, n_tokens=n_tokens,
                         n_tokens_test=n_tokens_test, batch_size=batch_size, store=keep_passes)

# %% tags=["hide-input"]
for split, acts in passes.items():
    rec(f"text_{split}", acts.describe(), description=f"the {split} pass")
rec("precision_used", loaded.compute.precision, description=loaded.compute.reason)
rec("model_description", describe(loaded), description="the model")

# %%
steering_tokens = steering_scorecard.frequency_sample(passes["train"].log_alpha.numpy(), n_buckets, tokens_per_bucket,
                                                      seed=seed)["token"]
steering = steering_scorecard.headline_checks(
    passes["train"], passes["test"], r_values=r_values, k_values=k_values, r_headline=r_headline, band=band,
    tokens=steering_tokens, selection_windows=selection_windows, test_fraction=test_fraction, seed=seed,
    n_boot=n_boot_texts, boot_seed=seed)
checks = {
    "01_encoding": encoding_scorecard.headline_checks(passes["train"], test_fraction=test_fraction, seed=seed,
                                                      n_boot=n_boot_texts, boot_seed=seed, **encoding),
    "02_steering": steering.checks,
    "03_pruning": pruning_scorecard.headline_checks(
        passes["train"], passes["test"], test_fraction=test_fraction, seed=seed, n_positions=n_positions,
        n_boot=n_boot_texts, boot_seed=seed, **pruning),
}

# %%
rows = check_rows(checks)
rec("checks", rows, description="every headline check of this sampling")
rec("choices", choice_rows({"02_steering": {"k chosen on training windows": steering.k}}),
    description="the choices the checks rest on (kept out of the checks' names)")
pd.DataFrame(rows)

# %% [markdown]
# The head's unargmaxable tokens (chapter 5's test: duplicates, the fast braid test, then the exact LP), counted over
# the whole vocabulary or a seeded sample of it; the duplicate rows are tokens whose row has an identical twin.

# %%
head = output_head(loaded.model)
counts = argmax_counts(head.E.numpy(), None if head.b is None else head.b.numpy(), max_tokens=argmax_max_tokens,
                       seed=seed, **argmax)
rec("argmax_counts", counts, description="unargmaxable and duplicate tokens of the head (of those tested)")
pd.DataFrame([counts])
