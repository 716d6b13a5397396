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
# # Models side by side
#
# The scorecard's checks of chapters 1 to 3 for several models at once: every model available offline on the machine
# that built this page, and chapter 4's trained models (small GPT-2-tokenizer models, d far below V). Each model is
# one run of the parameterized notebook `book/headlines.py`, executed with papermill through `bookbuild` and keeping
# its own results file; a run with the same parameters as one of the robustness page is shared with it. To set your
# own models side by side:
#
# ```bash
# .venv/bin/python -m bookbuild sweep --models smollm2-135m gpt2 ./my-model
# ```

# %% tags=["parameters"]
models = []  # models to set side by side; empty: every offline model installed here
trained_models = True  # add chapter 4's last checkpoints (from its results in this build, when it has run)
device = "cpu"  # where the models run: "cpu", "cuda" or "auto"
sample_seed = 0  # seed of the windows drawn across each corpus split
window_length = 128  # tokens per window (capped at a model's context, as the table shows)
n_tokens = 32768  # tokens of each training pass (as in the chapters)
n_tokens_test = 8192  # tokens of each held-out pass
batch_size = 8  # windows per forward pass (speed only)
n_boot_texts = 200  # document resamples behind each interval
argmax_max_tokens = None  # tokens of each head tested for argmaxability: None for all (chapter 5's verdicts reused)
trained_argmax_max_tokens = 2048  # the same for chapter 4's models (a seeded sample; None for all: minutes each)
headline_parameters = {}  # further parameters of book/headlines.py, the same for every run

# %% tags=["hide-input"]
import json
import os
from pathlib import Path

from bookbuild.execute import rerun_grid
from utils.models import available_offline_models, load_model
from utils.reruns.parameters import ModelsParameters
from utils.results import RERUNS_DIR, RESULTS_DIR, glue_figure, start_run
from utils.figures.reruns import models_figure
from utils.reruns.grids import dynamics_results, models_grid, models_to_compare
from utils.reruns.models import models_table, random_init_baselines

CHAPTER = "98_models"
parameters = ModelsParameters.from_namespace(globals())  # every knob checked before any work
rec = start_run(CHAPTER, globals())
results_root = Path(os.environ.get("LOGLINEAR_RESULTS", RERUNS_DIR))

# %% tags=["hide-input", "hide-output"]
# chapter 4's results of this build, else of the published book (a sweep runs into a folder of its own)
named = models_to_compare(models, available_offline_models(), trained_models, [results_root, RESULTS_DIR])
contexts = {label: load_model(source, device=device, verify=False).n_ctx for label, source in named.items()}
common = {"device": device, "precision": "float32", "sample_seed": sample_seed, "n_tokens": n_tokens,
          "n_tokens_test": n_tokens_test, "batch_size": batch_size, "n_boot_texts": n_boot_texts,
          **headline_parameters}
grid = models_grid(named, contexts, common, window_length=window_length, argmax_max_tokens=argmax_max_tokens,
                   trained_argmax_max_tokens=trained_argmax_max_tokens)
runs = rerun_grid("headlines", grid, results_root / "headlines")
rec("models", ", ".join(named), description="the models side by side")

# %% [markdown]
# ## The headline checks
#
# Each model's vocabulary and dimension; how many tokens of its head can never be the argmax and how many rows have
# an identical twin (chapter 5's test, of the tokens tested); then for each check its value, its 95% interval over
# resampled documents, and its verdict against the chapters' threshold, for {glue:text}`98_models.models`; last, the
# $k$ that chapter 2's check chose on each model's training windows. Below the encoding's accuracy, the same fit on
# chapter 4's random initialisation (step 0, on chapter 4's own held-out text, for the size whose step 0 chapter 4
# records): where an untrained model clears the threshold too, a trained model's "reproduced" is marked
# uninformative.

# %% tags=["hide-input"]
trained_results = dynamics_results([results_root, RESULTS_DIR]) if trained_models else None
baselines = random_init_baselines(json.loads(trained_results.read_text()) if trained_results else None)
side_by_side = models_table(runs, list(named), {label: b for label, b in baselines.items() if label in named})
rec("table", side_by_side.reset_index().to_dict("records"), description="the checks of every model")
side_by_side

# %% tags=["remove-input"]
glue_figure("fig-models", models_figure(runs, list(named)))

# %% [markdown]
# ```{glue:figure} fig-models
# :name: fig-models
# Each headline check of chapters 1 to 3, one point per model with its 95% interval over resampled documents; the
# dashed line is the check's threshold. A check's name shows `*` where the models' own settings (k, d) differ.
# ```
