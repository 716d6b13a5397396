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
# `utils.book`, once per sampling seed and window length, each run keeping its own results file. It computes the
# scorecard's checks of chapters 1 to 3 with the same `utils` functions the chapters call.

# %% tags=["parameters"]
model = "smollm2-135m"  # offline name, Hugging Face id or local folder
revision = None  # hub revision
corpus = "wikipedia"  # the corpus of the chapters' headline numbers
window_length = 128  # tokens per input window
n_tokens = 32768  # tokens of the training pass
n_tokens_test = 8192  # tokens of the held-out pass
sample_seed = 0  # seed of the windows drawn across each corpus split
batch_size = 8  # windows per forward pass (speed only)
test_fraction = 0.2  # share of the vocabulary held out of each fit
seed = 0  # token split and bootstrap
n_boot_texts = 200  # document resamples behind each interval
encoding = {}  # keyword arguments of utils.encoding.headline_checks beyond the above (thresholds)

# %%
import pandas as pd

from utils import encoding as enc
from utils.activations import compute_activations
from utils.models import load_model
from utils.results import record, start_run
from utils.validation import check_int, check_positive_int

NOTEBOOK = "headlines"
for name, value in {"n_tokens": n_tokens, "n_tokens_test": n_tokens_test, "batch_size": batch_size,
                    "n_boot_texts": n_boot_texts}.items():
    check_positive_int(name, value)
check_int("sample_seed", sample_seed, minimum=0)
loaded = load_model(model, revision)
check_int("window_length", window_length, minimum=2, maximum=loaded.n_ctx)
start_run(NOTEBOOK, globals(), loaded)
passes = {split: compute_activations(loaded, corpus, split, window_length=window_length, sample_seed=sample_seed,
                                     n_tokens=n_tokens if split == "train" else n_tokens_test, batch_size=batch_size)
          for split in ("train", "test")}
for split, acts in passes.items():
    record(NOTEBOOK, f"text_{split}", acts.describe(), description=f"the {split} pass")

# %%
checks = {"01_encoding": enc.headline_checks(passes["train"], test_fraction=test_fraction, seed=seed,
                                             n_boot=n_boot_texts, boot_seed=seed, **encoding)}
rows = [{"chapter": chapter, "check": c.name, "value": c.value, "low": c.interval.low, "high": c.interval.high,
         "threshold": c.threshold, "direction": c.direction, "verdict": c.verdict}
        for chapter, chapter_checks in checks.items() for c in chapter_checks]
record(NOTEBOOK, "checks", rows, description="every headline check of this sampling")
pd.DataFrame(rows)
