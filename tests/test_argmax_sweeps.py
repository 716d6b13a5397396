"""Sweeps over heads (utils.argmax.sweeps), the remedies, the scorecard's checks, the chapter's parameters and the
figures of chapter 5, against brute force (convex hulls) and counts by hand."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from utils.argmax.hull import hull_agreement, hull_argmaxable
from utils.argmax.parameters import ArgmaxParameters
from utils.argmax.prevention import prevention_bias, unit_norm_rows
from utils.argmax.scorecard import headline_checks
from utils.argmax.sweeps import first_unargmaxable_fraction, pruning_sweep, random_head, random_model_sweep
from utils.argmax.verdicts import find_unargmaxable
from utils.argmax.wording import first_fraction_text, paper_range_sentence
from utils.figures.argmax import plot_argmax_regions, plot_braid_steps, plot_pruning, plot_random_sweep

matplotlib.use("Agg")


def test_prevention_leaves_no_class_unargmaxable():
    E, _ = random_head(150, 3, "normal", bias=False, seed=5)
    plain = find_unargmaxable(E, cache=False, progress=False)
    assert plain.count("unargmaxable") > 100  # in 3-d most of 150 random rows are inside the hull
    with_bias = find_unargmaxable(E, prevention_bias(E), cache=False, progress=False)
    assert with_bias.count("argmaxable") == 150
    # the nearest-row argmax: every row wins at its own position
    assert (with_bias.method == "braid").all()
    on_sphere = find_unargmaxable(unit_norm_rows(E), cache=False, progress=False)
    assert on_sphere.count("argmaxable") == 150
    with pytest.raises(ValueError, match="zero rows"):
        unit_norm_rows(np.vstack([E, np.zeros(3)]))


def test_random_sweep_shares_fall_with_dimension():
    sweep = random_model_sweep([2, 12], 120, seed=0, progress=False)
    assert len(sweep) == 8
    E, _ = random_head(120, 2, "normal", bias=False, seed=0 + 1000 * 2)
    row = sweep[(sweep.dim == 2) & (sweep.init == "normal") & (~sweep.bias)].iloc[0]
    assert row.n_unargmaxable == 120 - hull_argmaxable(E).sum()
    for _, group in sweep.groupby(["init", "bias"]):
        shares = group.sort_values("dim").share.to_numpy()
        assert shares[0] > shares[1]


def test_headline_checks_on_a_planted_unargmaxable_row():
    from utils.uncertainty import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED

    # a square and its centre: the centre row (token 4) is planted inside the hull of the others (no bias)
    E = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.1, 0.1]])
    planted = find_unargmaxable(E, cache=False, progress=False)
    assert planted.tokens_with("unargmaxable").tolist() == [4]
    clean = find_unargmaxable(E[:4], cache=False, progress=False)
    prevention = {"no bias": planted,
                  "bias": find_unargmaxable(E, prevention_bias(E), cache=False, progress=False),
                  "unit norm": find_unargmaxable(unit_norm_rows(E), cache=False, progress=False)}
    sweep = pd.DataFrame({"dim": [2, 2, 8], "share": [0.3, 0.12, 0.0]})

    checks = headline_checks(sweep, planted, prevention, theory_share=0.1)
    assert [c.verdict for c in checks] == [REPRODUCED, NOT_REPRODUCED, REPRODUCED]
    # the numbers, against a count by hand; every interval is exact (a head has no text to resample)
    assert [c.value for c in checks] == [0.12, 1.0, 0.0]
    assert all(c.interval.unit == "none" and c.interval.low == c.interval.high == c.value for c in checks)
    assert INCONCLUSIVE not in [c.verdict for c in checks]
    # each check says what it is exact for: all tokens of the head, or only a tested sample
    assert "all 5 tokens of the real head (exact: a property of the head)" in checks[1].name
    sample = find_unargmaxable(E, tokens=np.array([0, 4]), cache=False, progress=False)
    assert "the 2 tested of the real head's 5 (exact for that sample only)" in headline_checks(
        sweep, sample, prevention)[1].name
    assert "one head drawn per setting" in checks[0].name
    # without the planted row the real-head check passes; a higher theory threshold fails on the smaller share
    assert headline_checks(sweep, clean, prevention)[1].verdict == REPRODUCED
    assert headline_checks(sweep, clean, prevention, theory_share=0.2)[0].verdict == NOT_REPRODUCED
    # a remedy that leaves the planted row unargmaxable fails the prevention check
    failing = dict(prevention, shifted=planted)
    assert headline_checks(sweep, clean, failing)[2].value == 1.0
    assert headline_checks(sweep, clean, failing)[2].verdict == NOT_REPRODUCED
    with pytest.raises(ValueError, match="theory_share"):
        headline_checks(sweep, clean, prevention, theory_share=1.5)
    with pytest.raises(ValueError, match="remedy"):
        headline_checks(sweep, clean, {"no bias": planted})


def test_pruning_sweep_to_one_dimension():
    # deleting 2 of 3 dimensions leaves a 1-d head without bias, where only the smallest and largest rows win
    rng = np.random.default_rng(8)
    E = rng.normal(size=(80, 3)).astype(np.float32)
    sweep = pruning_sweep(E, [2, 0, 1], [0.0, 1 / 3, 2 / 3], progress=False)
    assert list(sweep.d_kept) == [3, 2, 1]
    assert sweep.unargmaxable.iloc[0] == 80 - hull_argmaxable(E).sum()
    assert sweep.unargmaxable.iloc[1] == 80 - hull_argmaxable(E[:, [0, 1]]).sum()
    assert sweep.unargmaxable.iloc[2] == 78
    assert first_unargmaxable_fraction(sweep) == 0.0
    with pytest.raises(ValueError, match="permutation"):
        pruning_sweep(E, [0, 0, 1], [0.5], progress=False)



def test_pruning_sweep_deletes_floor_of_the_fraction():
    # one definition of "delete a fraction f" with chapter 3 (utils.pruning.criteria.n_deleted): floor(f d), at most
    # d - 1;
    # 0.5 of 3 dimensions is 1 (rounding would give 2), 0.99 of 3 is 2 (rounding would give 3, an empty head)
    rng = np.random.default_rng(11)
    E = rng.normal(size=(40, 3))
    sweep = pruning_sweep(E, [1, 2, 0], [0.5, 0.99], progress=False)
    assert list(sweep.n_deleted) == [1, 2] and list(sweep.d_kept) == [2, 1]
    assert sweep.unargmaxable.iloc[0] == 40 - hull_argmaxable(E[:, [0, 2]]).sum()  # dimension 1 deleted first
    with pytest.raises(ValueError, match="fractions"):
        pruning_sweep(E, [1, 2, 0], [1.0], progress=False)


def test_pruning_words_follow_the_numbers():
    assert first_fraction_text(0.75, [0.5, 0.75, 0.9]) == "75%"
    assert first_fraction_text(math.nan, [0.5, 0.95]) == "none up to 95%"
    assert "stop short" in paper_range_sentence(math.nan)
    assert "stop short" in paper_range_sentence(0.5)
    assert "already reach" in paper_range_sentence(0.4)  # the end of the paper's range counts as reaching it
    assert "already reach" in paper_range_sentence(0.1)
    assert paper_range_sentence(0.5).startswith("The 30–40% deletions")
    assert "stop short" in paper_range_sentence(0.3, paper_low=0.1, paper_high=0.2)


def test_hull_agreement_counts():
    out = hull_agreement(6, seed=3)
    assert out["instances"] == 6
    assert out["agree"] == out["verdicts"] > 0  # the exact test agrees with the hull on every decided token
    assert out["braid_false_clear"] == 0 and out["unargmaxable"] > 0


def _parameters(**changes):
    values = dict(seed=0, box=100.0, patience=50, start="centred", n_closest=5, n_hull_instances=10,
                  random_dims=[2, 8], random_classes=100, corpus="wikipedia", window_length=16, n_tokens=512,
                  sample_seed=0, batch_size=4, prune_fractions=[0.5], prevention_dim=3, second_model_max_tokens=64,
                  n_table=5, theory_share=0.1, max_tokens=None, prune_max_tokens=120)
    values.update(changes)
    return values


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(box=0.0), "box"),
        (dict(patience=-1), "patience"),
        (dict(start="middle"), "start"),
        (dict(corpus="nowhere"), "corpus"),
        (dict(random_dims=[]), "random_dims"),
        (dict(random_dims=[2, 0]), "random_dims"),
        (dict(prune_fractions=[0.5, 1.0]), "prune_fractions"),
        (dict(theory_share=1.0), "theory_share"),
        (dict(max_tokens=0), "max_tokens"),
        (dict(window_length=1), "window_length"),
        (dict(n_table=0), "n_table"),
    ],
)
def test_bad_chapter_parameters_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        ArgmaxParameters.from_namespace(_parameters(**changes))


def test_chapter_parameters_read_from_a_namespace():
    namespace = dict(_parameters(), model="any", unrelated=object())
    parameters = ArgmaxParameters.from_namespace(namespace)
    assert parameters.box == 100.0 and parameters.prune_max_tokens == 120
    with pytest.raises(ValueError, match="lack \\['box'\\]"):
        ArgmaxParameters.from_namespace({k: v for k, v in namespace.items() if k != "box"})


def test_figures_draw_the_verdicts():
    import matplotlib.pyplot as plt

    E = np.array([[2.0, 0.3], [0.2, 2.0], [-2.0, 0.4], [0.1, -2.0], [0.4, 0.5]])  # token 4 inside the hull
    fig, axes = plt.subplots(1, 4)
    verdicts = plot_argmax_regions(axes[0], E, resolution=50)
    assert verdicts.tokens_with("unargmaxable").tolist() == [4]
    with pytest.raises(ValueError, match="2-d"):
        plot_argmax_regions(axes[0], np.ones((4, 3)))
    sweep = random_model_sweep([2, 3], 30, progress=False)
    plot_random_sweep(axes[1], sweep)
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["2", "3"]
    plot_braid_steps(axes[2], find_unargmaxable(E, cache=False, progress=False))
    plot_pruning(axes[3], pd.DataFrame(dict(fraction=[0.0, 0.5], unargmaxable=[0, 2], tested=[4, 4], order="x")))
    assert axes[3].get_lines()[0].get_ydata().tolist() == [0.0, 0.5]
    plt.close(fig)
