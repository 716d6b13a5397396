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
# # Robustness of the headline numbers
#
# Every verdict on the front page rests on one sample of text: windows drawn across the corpus with one seed, at one
# window length. Its interval over texts (documents resampled) says how the number moves with the documents of that
# sample; this page asks how it moves with the *sampling* itself. The scorecard's checks of chapters 1 to 3 are
# recomputed at several sampling seeds and window lengths (and, when asked, once with the model body in bfloat16),
# each with its own interval and verdict, by the book's own rerun machinery: a parameterized notebook
# (`book/headlines.py`) executed with papermill through `bookbuild`, each run keeping its own results file beside
# its output (never the published book's). The same `utils` functions compute the numbers here and in the chapters,
# so the run at the chapters' seed and window length reproduces their
# scorecard.

# %% tags=["parameters"]
model = "smollm2-135m"  # offline name, Hugging Face id or local folder
revision = None  # hub revision
sample_seeds = [0, 1, 2]  # seeds of the windows drawn across each split
window_lengths = [128, 256]  # tokens per window
precisions = ["float32"]  # body precisions; add "bfloat16" or "auto" for one more run (first seed, window)
device = "cpu"  # where the model runs: "cpu", "cuda" or "auto"
n_tokens = 32768  # tokens of each training pass (as in the chapters)
n_tokens_test = 8192  # tokens of each held-out pass
batch_size = 8  # windows per forward pass (speed only)
n_boot_texts = 200  # document resamples behind each interval
headline_parameters = {}  # further parameters of book/headlines.py, the same for every run (e.g. chapter settings)

# %% tags=["hide-input"]
import os
from pathlib import Path


from bookbuild.execute import rerun_grid
from utils.plotting import set_theme
from utils.reruns.parameters import RobustnessParameters
from utils.results import RERUNS_DIR, glue_figure, start_run
from utils.figures.reruns import robustness_figure
from utils.reruns.spread import checks_table, spread_table
from utils.reruns.wording import choice_spread_text, precision_statements

CHAPTER = "99_robustness"
parameters = RobustnessParameters.from_namespace(globals())  # every knob checked before any work
rec = start_run(CHAPTER, globals())
set_theme()

# %% [markdown]
# ## The runs
#
# One run per sampling seed and window length; each draws its own windows (the same number of tokens) from the
# training and held-out splits and recomputes every check with its interval over texts. The runs' log and their
# table of every check of every run are folded below; the figure and the spread table read them.

# %% tags=["hide-input", "hide-output"]
common = {"model": model, "revision": revision, "device": device, "n_tokens": n_tokens,
          "n_tokens_test": n_tokens_test, "batch_size": batch_size, "n_boot_texts": n_boot_texts, **headline_parameters}
grid = [{**common, "precision": "float32", "sample_seed": s, "window_length": w}
        for w in window_lengths for s in sample_seeds]
others = [p for p in precisions if p != "float32"]  # each run as asked ("auto" measures, in its own run)
grid += [{**common, "precision": p, "sample_seed": sample_seeds[0], "window_length": window_lengths[0]}
         for p in others]
runs_root = Path(os.environ.get("LOGLINEAR_RESULTS", RERUNS_DIR)) / "headlines"  # shared with the models page
runs = rerun_grid("headlines", grid, runs_root)
every_run = checks_table(runs)
table = every_run[every_run["precision"] == "float32"]
rec("n_runs", len(sample_seeds) * len(window_lengths), description="runs (sampling seeds x window lengths)")
rec("seeds", ", ".join(map(str, sample_seeds)), description="sampling seeds")
rec("window_lengths", ", ".join(map(str, window_lengths)), description="window lengths")
table.round(4)

# %% tags=["remove-input"]
fig = robustness_figure(table)
glue_figure("fig-robustness", fig)

# %% [markdown]
# ```{glue:figure} fig-robustness
# :name: fig-robustness
# Each headline check of chapters 1 to 3, one point per run (sampling seed, window length) with its 95% interval
# over resampled documents; the dashed line is the check's threshold. A verdict that changes between runs is a
# verdict of the sampling, not of the model.
# ```
#
# ## The spread
#
# For each check: the range of its value over the {glue:text}`99_robustness.n_runs` runs (seeds
# {glue:text}`99_robustness.seeds`, window lengths {glue:text}`99_robustness.window_lengths`), and the verdicts the
# runs reach.

# %% tags=["hide-input"]
spread = spread_table(table)
agree = spread.loc[spread["kind"] == "check", "verdicts agree"].astype(bool)  # the choices' rows have no verdict
rec("stable_checks", int(agree.sum()), description="checks whose verdict is the same in every run")
rec("n_checks", len(agree), description="checks")
rec("unstable", ", ".join(agree.index[~agree]) or "none",
    description="checks whose verdict differs between runs")
rec("choices", choice_spread_text(spread), description="the choices the checks rest on, over the runs")
spread

# %% [markdown]
# {glue:text}`99_robustness.stable_checks` of the {glue:text}`99_robustness.n_checks` checks reach the same verdict
# in every run; those that do not: {glue:text}`99_robustness.unstable`. The runs share the model and the corpora:
# the spread here is the part of the uncertainty that comes from which windows were drawn and how long they are, not
# from other corpora or other models (chapter 1, section 1.5, varies the corpus).
#
# A check is one row however its runs chose what it rests on; the choices have rows of their own (kind "choice"),
# with their value in each run (w: window length, s: seed): {glue:text}`99_robustness.choices`. Chapter 2 chooses
# its $k$ on training windows, and a different sample of windows can choose another: the choice is part of what the
# sampling moves (chapter 2, section 2.2, measures how often its own choice changes when its training documents are
# resampled).

# %% [markdown]
# ## The precision of the model body
#
# The book's numbers are float32 on every machine. With `precisions` naming `"bfloat16"` (or `"auto"`, bf16 only
# where this machine's bf16 matrix multiply is measured to be faster), the run at seed
# {glue:text}`99_robustness.first_seed` and window {glue:text}`99_robustness.first_window` is repeated with the model
# body in that precision (its head, softmax and alpha accumulators stay float32 and float64), and each headline number
# is set beside its float32 value and interval.

# %% tags=["hide-input"]
rec("first_seed", sample_seeds[0], description="seed of the precision comparison")
rec("first_window", window_lengths[0], description="window length of the precision comparison")
statement, comparison = precision_statements(every_run, runs, others)
rec("precision_statement", statement, description="the precision runs against float32")
comparison.round(4) if comparison is not None else None  # the table of a bf16 run, where one was asked for

# %% [markdown]
# {glue:text}`99_robustness.precision_statement`
