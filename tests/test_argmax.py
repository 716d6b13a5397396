"""Argmaxability tests (utils.argmax) against brute force: convex hulls in 2 to 6 dimensions."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from utils import argmax as am
from utils import cache as store


def _instances(n: int, seed: int, bias: bool):
    """Random heads in general position: d in 2..6, V in d+2..40, rows and biases N(0, 1)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        d = int(rng.integers(2, 7))
        V = int(rng.integers(d + 2, 41))
        yield rng.normal(size=(V, d)), (rng.normal(size=V) if bias else None)


def _check_witnesses(W, b, verdicts, box):
    """Every argmaxable verdict's witness is inside the box and makes its token the strict argmax."""
    for i in np.flatnonzero(verdicts.status == "argmaxable"):
        x = verdicts.witness[i]
        assert np.all(np.abs(x) <= box)
        logits = W @ x + (0.0 if b is None else b)
        c = verdicts.tokens[i]
        assert np.argmax(logits) == c
        assert logits[c] > np.delete(logits, c).max()
    assert np.isnan(verdicts.witness[verdicts.status != "argmaxable"]).all()


def test_agrees_with_convex_hull_without_bias():
    # without a bias the regions are cones, so the box does not change a verdict: argmaxable iff hull vertex
    n_unargmaxable = 0
    for W, _ in _instances(120, seed=0, bias=False):
        verdicts = am.find_unargmaxable(W, box=100.0, cache=False, progress=False)
        truth = am.hull_argmaxable(W)
        np.testing.assert_array_equal(verdicts.status == "argmaxable", truth)
        assert set(verdicts.status) <= {"argmaxable", "unargmaxable"}
        _check_witnesses(W, None, verdicts, 100.0)
        n_unargmaxable += int((~truth).sum())
    assert n_unargmaxable > 400  # the instances do exercise the unargmaxable side


def test_agrees_with_upper_hull_with_bias():
    # with a bias a region can be bounded and sit far from the origin: a large box makes the box irrelevant here
    rescued = 0
    for W, b in _instances(120, seed=1, bias=True):
        verdicts = am.find_unargmaxable(W, b, box=1e4, cache=False, progress=False)
        truth = am.hull_argmaxable(W, b, box=1e4)
        assert not am.hull_box_undecided(W, b, 1e4).any()
        np.testing.assert_array_equal(verdicts.status == "argmaxable", truth)
        _check_witnesses(W, b, verdicts, 1e4)
        rescued += int((truth & ~am.hull_argmaxable(W)).sum())
    assert rescued > 15  # some classes inside the hull of W are argmaxable only thanks to the bias


def test_braid_never_clears_an_unargmaxable_class():
    cleared = 0
    for bias in (False, True):
        for W, b in _instances(100, seed=2, bias=bias):
            result = am.braid_reflect(W, b, box=1e4, patience=20)
            truth = am.hull_argmaxable(W, b)
            assert not np.any(result.cleared & ~truth)
            cleared += int(result.cleared.sum())
            for c in np.flatnonzero(result.cleared):
                assert am.argmax_margin(W, b, result.witness[c], c) > 0
    assert cleared > 1000


def test_chunked_torch_path_agrees_with_hull(monkeypatch):
    # the multi-threaded torch products (used for large heads), with chunks and blocks smaller than V
    monkeypatch.setattr(am, "SMALL_PRODUCT", 0)
    rng = np.random.default_rng(3)
    W = rng.normal(size=(300, 5))
    verdicts = am.find_unargmaxable(W, chunk_size=70, block_size=128, patience=5, cache=False, progress=False)
    np.testing.assert_array_equal(verdicts.status == "argmaxable", am.hull_argmaxable(W))
    assert verdicts.counts()["decided_by_lp"] > 0


def test_lp_radius_of_a_known_region():
    # class 0 wins exactly on the open square |x|_inf < 1: Chebyshev centre 0, radius 1
    W = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = np.array([0.0, -1.0, -1.0, -1.0, -1.0])
    result = am.chebyshev_lp(W, b, 0)
    assert result.argmaxable
    assert result.radius == pytest.approx(1.0, abs=1e-7)
    np.testing.assert_allclose(result.x, 0.0, atol=1e-6)
    # lowering class 0's bias to -1 shrinks its square to a point: unargmaxable, radius 0
    b_tight = b.copy()
    b_tight[0] = -1.0
    tight = am.chebyshev_lp(W, b_tight, 0)
    assert not tight.argmaxable and tight.x is None and tight.radius <= 1e-8
    # below that there is no point where class 0 even ties: the LP is infeasible
    b_low = b.copy()
    b_low[0] = -2.0
    low = am.chebyshev_lp(W, b_low, 0)
    assert not low.argmaxable and low.status.startswith("infeasible")


def test_box_matters_with_a_bias():
    # class 2 wins only where x > 50 (its bias is far below its competitor's): outside a box of 10, inside one of 100
    W = np.array([[1.0], [-1.0], [2.0]])
    b = np.array([0.0, 0.0, -50.0])
    assert am.find_unargmaxable(W, b, box=10.0, cache=False, progress=False).status[2] == "unargmaxable"
    wide = am.find_unargmaxable(W, b, box=100.0, cache=False, progress=False)
    assert wide.status[2] == "argmaxable" and wide.witness[2][0] > 50


def test_duplicates_named_and_no_division_by_zero():
    rng = np.random.default_rng(4)
    W = rng.normal(size=(60, 3))
    vertex = int(am.hull_argmaxable(W).nonzero()[0][0])
    W[10] = W[vertex]  # a copy of a hull vertex: neither copy can win strictly
    W[11] = W[vertex]
    W[20] = W[30]  # a copy of another row
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        verdicts = am.find_unargmaxable(W, cache=False, progress=False)
    duplicates = set(verdicts.tokens_with("duplicate").tolist())
    assert duplicates == {vertex, 10, 11, 20, 30}
    for i in duplicates:
        twin = verdicts.twin[i]
        assert twin != i and np.array_equal(W[twin], W[i])
    assert np.all(verdicts.twin[verdicts.status != "duplicate"] == -1)
    # the other verdicts are those of the head without the copies
    others = np.setdiff1d(np.arange(60), [10, 11, 20])
    truth = am.hull_argmaxable(W[others])
    kept = ~np.isin(others, list(duplicates))
    np.testing.assert_array_equal(verdicts.status[others][kept] == "argmaxable", truth[kept])


def test_duplicates_with_a_bias():
    # identical rows: the one with the larger bias is tested on its own, the lower one is its duplicate
    W = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    b = np.array([0.0, 0.5, 0.0, 0.2, 0.2])
    verdicts = am.find_unargmaxable(W, b, cache=False, progress=False)
    assert list(verdicts.status) == ["duplicate", "argmaxable", "argmaxable", "duplicate", "duplicate"]
    assert list(verdicts.twin) == [1, -1, -1, 4, 3]
    assert am.chebyshev_lp(W, b, 0).status == "duplicate of row 1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(W=np.ones((1, 3))), "at least V=2"),
        (dict(W=np.ones(3)), "2-d"),
        (dict(W=np.ones((4, 3)), b=np.ones(3)), "shape"),
        (dict(W=np.array([[0.0, np.nan], [1.0, 2.0]])), "non-finite"),
        (dict(W=np.eye(3), b=np.array([0.0, np.inf, 1.0])), "non-finite"),
        (dict(W=np.eye(3), box=0.0), "box"),
        (dict(W=np.eye(3), box=-5.0), "box"),
        (dict(W=np.eye(3), box=float("nan")), "box"),
        (dict(W=np.eye(3), patience=-1), "patience"),
        (dict(W=np.eye(3), start="middle"), "start"),
        (dict(W=np.eye(3), tokens=[0, 3]), "tokens"),
        (dict(W=np.eye(3), tokens=[1, 1]), "tokens"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, message):
    kwargs = dict(kwargs)
    W = kwargs.pop("W")
    b = kwargs.pop("b", None)
    with pytest.raises(ValueError, match=message):
        am.find_unargmaxable(W, b, cache=False, progress=False, **kwargs)


def test_prevention_leaves_no_class_unargmaxable():
    W, _ = am.random_head(150, 3, "normal", bias=False, seed=5)
    plain = am.find_unargmaxable(W, cache=False, progress=False)
    assert plain.count("unargmaxable") > 100  # in 3-d most of 150 random rows are inside the hull
    with_bias = am.find_unargmaxable(W, am.prevention_bias(W), cache=False, progress=False)
    assert with_bias.count("argmaxable") == 150
    # the nearest-row argmax: every row wins at its own position
    assert (with_bias.method == "braid").all()
    on_sphere = am.find_unargmaxable(am.unit_norm_rows(W), cache=False, progress=False)
    assert on_sphere.count("argmaxable") == 150
    with pytest.raises(ValueError, match="zero rows"):
        am.unit_norm_rows(np.vstack([W, np.zeros(3)]))


def test_certified_check_resolves_near_ties_in_float64():
    # the true margin (1e-9) is far below float32 resolution at this scale: the check must fall back to float64
    W = np.array([[1.0, 1.0], [1.0 + 1e-9, 1.0], [-1.0, 0.0]])
    x_wins = np.array([[1.0, 0.0]])  # class 1 ahead of class 0 by 1e-9
    head = am.reduce_head(W, None, np.arange(3))
    wins, margin, best = am._certified_margins(head, x_wins, np.array([1]), chunk_size=8)
    assert wins[0] and margin[0] == pytest.approx(1e-9, rel=1e-3) and best[0] == 0
    wins0, margin0, _ = am._certified_margins(head, x_wins, np.array([0]), chunk_size=8)
    assert not wins0[0] and margin0[0] < 0


def test_cache_is_reused_and_rebuilt_when_corrupt(monkeypatch):
    W, b = am.random_head(80, 4, "uniform", bias=True, seed=6)
    first = am.find_unargmaxable(W, b, progress=False)
    path = store.path_of("argmax", first.meta["key"], ".npz")
    assert path.exists()

    def no_recompute(*args, **kwargs):
        raise AssertionError("recomputed despite a valid cache")

    with monkeypatch.context() as patch:
        patch.setattr(am, "braid_batch", no_recompute)
        again = am.find_unargmaxable(W, b, progress=False)
    np.testing.assert_array_equal(again.status, first.status)
    np.testing.assert_array_equal(again.witness, first.witness)
    # every setting is part of the key
    assert am.find_unargmaxable(W, b, box=50.0, progress=False).meta["key"] != first.meta["key"]
    assert am.find_unargmaxable(W, b, patience=3, progress=False).meta["key"] != first.meta["key"]
    # a truncated file is detected and rebuilt
    path.write_bytes(path.read_bytes()[:100])
    rebuilt = am.find_unargmaxable(W, b, progress=False)
    np.testing.assert_array_equal(rebuilt.status, first.status)
    assert am.Verdicts.load(path).meta["key"] == first.meta["key"]


def test_tokens_subset_matches_full_run():
    W, _ = am.random_head(150, 3, "normal", bias=False, seed=7)
    full = am.find_unargmaxable(W, cache=False, progress=False)
    subset = np.array([5, 17, 100, 149, 3])
    part = am.find_unargmaxable(W, tokens=subset, cache=False, progress=False)
    np.testing.assert_array_equal(part.tokens, subset)
    np.testing.assert_array_equal(part.status, full.status[subset])


def test_random_sweep_shares_fall_with_dimension():
    sweep = am.random_model_sweep([2, 12], 120, seed=0, progress=False)
    assert len(sweep) == 8
    W, _ = am.random_head(120, 2, "normal", bias=False, seed=0 + 1000 * 2)
    row = sweep[(sweep.dim == 2) & (sweep.init == "normal") & (~sweep.bias)].iloc[0]
    assert row.n_unargmaxable == 120 - am.hull_argmaxable(W).sum()
    for _, group in sweep.groupby(["init", "bias"]):
        shares = group.sort_values("dim").share.to_numpy()
        assert shares[0] > shares[1]



def test_headline_checks_on_a_planted_unargmaxable_row():
    import pandas as pd

    from utils.uncertainty import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED

    # a square and its centre: the centre row (token 4) is planted inside the hull of the others (no bias)
    W = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.1, 0.1]])
    planted = am.find_unargmaxable(W, cache=False, progress=False)
    assert planted.tokens_with("unargmaxable").tolist() == [4]
    clean = am.find_unargmaxable(W[:4], cache=False, progress=False)
    prevention = {"no bias": planted,
                  "bias": am.find_unargmaxable(W, am.prevention_bias(W), cache=False, progress=False),
                  "unit norm": am.find_unargmaxable(am.unit_norm_rows(W), cache=False, progress=False)}
    sweep = pd.DataFrame({"dim": [2, 2, 8], "share": [0.3, 0.12, 0.0]})

    checks = am.headline_checks(sweep, planted, prevention, theory_share=0.1)
    assert [c.verdict for c in checks] == [REPRODUCED, NOT_REPRODUCED, REPRODUCED]
    # the numbers, against a count by hand; every interval is exact (a head has no text to resample)
    assert [c.value for c in checks] == [0.12, 1.0, 0.0]
    assert all(c.interval.unit == "none" and c.interval.low == c.interval.high == c.value for c in checks)
    assert INCONCLUSIVE not in [c.verdict for c in checks]
    # without the planted row the real-head check passes; a higher theory threshold fails on the smaller share
    assert am.headline_checks(sweep, clean, prevention)[1].verdict == REPRODUCED
    assert am.headline_checks(sweep, clean, prevention, theory_share=0.2)[0].verdict == NOT_REPRODUCED
    # a remedy that leaves the planted row unargmaxable fails the prevention check
    failing = dict(prevention, shifted=planted)
    assert am.headline_checks(sweep, clean, failing)[2].value == 1.0
    assert am.headline_checks(sweep, clean, failing)[2].verdict == NOT_REPRODUCED
    with pytest.raises(ValueError, match="theory_share"):
        am.headline_checks(sweep, clean, prevention, theory_share=1.5)
    with pytest.raises(ValueError, match="remedy"):
        am.headline_checks(sweep, clean, {"no bias": planted})

def test_pruning_sweep_to_one_dimension():
    # deleting 2 of 3 dimensions leaves a 1-d head without bias, where only the smallest and largest rows win
    rng = np.random.default_rng(8)
    E = rng.normal(size=(80, 3)).astype(np.float32)
    sweep = am.pruning_sweep(E, [2, 0, 1], [0.0, 1 / 3, 2 / 3], progress=False)
    assert list(sweep.d_kept) == [3, 2, 1]
    assert sweep.unargmaxable.iloc[0] == 80 - am.hull_argmaxable(E).sum()
    assert sweep.unargmaxable.iloc[1] == 80 - am.hull_argmaxable(E[:, [0, 1]]).sum()
    assert sweep.unargmaxable.iloc[2] == 78
    assert am.first_unargmaxable_fraction(sweep) == 0.0
    with pytest.raises(ValueError, match="permutation"):
        am.pruning_sweep(E, [0, 0, 1], [0.5], progress=False)


def test_hull_with_a_box_flags_regions_beyond_it():
    # two nearly parallel rows with a bias gap: class 1 wins only where x > 1000
    W = np.array([[1.0, 0.0], [1.001, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = np.array([0.0, -1.0, 0.0, -5.0, -5.0])
    assert am.hull_argmaxable(W, b)[1]
    assert am.hull_box_undecided(W, b, 100.0)[1] and not am.hull_argmaxable(W, b, box=100.0)[1]
    assert am.find_unargmaxable(W, b, box=100.0, cache=False, progress=False).status[1] == "unargmaxable"
    assert am.find_unargmaxable(W, b, box=1e4, cache=False, progress=False).status[1] == "argmaxable"


@pytest.mark.slow
def test_thousands_of_instances_agree_with_hulls():
    # a region with a bias can lie beyond even a wide box (nearly parallel rows): those classes are not compared
    disagreements, undecided = 0, 0
    for bias in (False, True):
        for W, b in _instances(1500, seed=10 + bias, bias=bias):
            box = 1e4 if bias else 100.0
            verdicts = am.find_unargmaxable(W, b, box=box, cache=False, progress=False)
            open_question = am.hull_box_undecided(W, b, box) if bias else np.zeros(len(W), dtype=bool)
            wrong = (verdicts.status == "argmaxable") != am.hull_argmaxable(W, b, box=box if bias else None)
            disagreements += int(np.sum(wrong & ~open_question))
            undecided += int(open_question.sum())
            assert not np.any((verdicts.method == "braid") & (verdicts.status != "argmaxable"))
    assert disagreements == 0
    assert undecided <= 5  # rare: about one class in 50,000


def _witnesses_win_through_the_model_head(model, verdicts):
    """Feed every witness to the model's own output layer (float32 nn.Linear): the token must be the argmax."""
    import torch

    ok = np.flatnonzero(verdicts.status == "argmaxable")
    x = torch.tensor(verdicts.witness[ok], dtype=torch.float32)
    with torch.no_grad():
        logits = model.get_output_embeddings()(x)
    np.testing.assert_array_equal(logits.argmax(-1).numpy(), verdicts.tokens[ok])


def test_witnesses_win_in_a_real_head_with_bias(tiny_models):
    from utils.head import output_head
    from utils.models import load_model

    loaded = load_model(str(tiny_models["gptj-bias"]))
    head = output_head(loaded.model)
    assert head.b is not None
    tokens = np.random.default_rng(9).choice(head.V, 100, replace=False)
    verdicts = am.find_unargmaxable(head.E, head.b, tokens=tokens, progress=False)
    assert verdicts.count("argmaxable") > 50
    _witnesses_win_through_the_model_head(loaded.model, verdicts)


@pytest.mark.slow
def test_default_model_duplicates_and_witnesses():
    import torch

    from utils.head import output_head
    from utils.models import load_model

    loaded = load_model("smollm2-135m")
    head = output_head(loaded.model)
    E = head.E.numpy()
    _, inverse, counts = np.unique(E, axis=0, return_inverse=True, return_counts=True)
    in_groups = np.flatnonzero(counts[inverse.reshape(-1)] > 1)
    rng = np.random.default_rng(0)
    tokens = np.union1d(rng.choice(head.V, 300, replace=False), in_groups)
    verdicts = am.find_unargmaxable(head.E, None, tokens=tokens, progress=False)
    np.testing.assert_array_equal(verdicts.tokens_with("duplicate"), in_groups)
    for i in np.flatnonzero(verdicts.status == "duplicate"):
        assert torch.equal(head.E[verdicts.twin[i]], head.E[verdicts.tokens[i]])
    _witnesses_win_through_the_model_head(loaded.model, verdicts)
