"""The argmaxability tests (utils.argmax: braid, LP, verdicts) against brute force: convex hulls in 2 to 6 dimensions.

The sweeps, remedies, the scorecard's checks and the chapter's parameters are tested in test_argmax_sweeps.py.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from utils import cache as store
from utils.argmax import prepared
from utils.argmax import verdicts as verdicts_module
from utils.argmax.braid import braid_reflect
from utils.argmax.hull import hull_argmaxable, hull_box_undecided
from utils.argmax.lp import chebyshev_lp
from utils.argmax.prepared import argmax_margin, certified_margins, reduce_head
from utils.argmax.sweeps import random_head
from utils.argmax.verdicts import Verdicts, find_unargmaxable, verdict_table


def _instances(n: int, seed: int, bias: bool):
    """Random heads in general position: d in 2..6, V in d+2..40, rows and biases N(0, 1)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        d = int(rng.integers(2, 7))
        V = int(rng.integers(d + 2, 41))
        yield rng.normal(size=(V, d)), (rng.normal(size=V) if bias else None)


def _check_witnesses(E, b, verdicts, box):
    """Every argmaxable verdict's witness is inside the box and makes its token the strict argmax."""
    for i in np.flatnonzero(verdicts.status == "argmaxable"):
        x = verdicts.witness[i]
        assert np.all(np.abs(x) <= box)
        logits = E @ x + (0.0 if b is None else b)
        c = verdicts.tokens[i]
        assert np.argmax(logits) == c
        assert logits[c] > np.delete(logits, c).max()
    assert np.isnan(verdicts.witness[verdicts.status != "argmaxable"]).all()


def test_agrees_with_convex_hull_without_bias():
    # without a bias the regions are cones, so the box does not change a verdict: argmaxable iff hull vertex
    n_unargmaxable = 0
    for E, _ in _instances(120, seed=0, bias=False):
        verdicts = find_unargmaxable(E, box=100.0, cache=False, progress=False)
        truth = hull_argmaxable(E)
        np.testing.assert_array_equal(verdicts.status == "argmaxable", truth)
        assert set(verdicts.status) <= {"argmaxable", "unargmaxable"}
        _check_witnesses(E, None, verdicts, 100.0)
        n_unargmaxable += int((~truth).sum())
    assert n_unargmaxable > 400  # the instances do exercise the unargmaxable side


def test_agrees_with_upper_hull_with_bias():
    # with a bias a region can be bounded and sit far from the origin: a large box makes the box irrelevant here
    rescued = 0
    for E, b in _instances(120, seed=1, bias=True):
        verdicts = find_unargmaxable(E, b, box=1e4, cache=False, progress=False)
        truth = hull_argmaxable(E, b, box=1e4)
        assert not hull_box_undecided(E, b, 1e4).any()
        np.testing.assert_array_equal(verdicts.status == "argmaxable", truth)
        _check_witnesses(E, b, verdicts, 1e4)
        rescued += int((truth & ~hull_argmaxable(E)).sum())
    assert rescued > 15  # some classes inside the hull of E are argmaxable only thanks to the bias


def test_braid_never_clears_an_unargmaxable_class():
    cleared = 0
    for bias in (False, True):
        for E, b in _instances(100, seed=2, bias=bias):
            result = braid_reflect(E, b, box=1e4, patience=20)
            truth = hull_argmaxable(E, b)
            assert not np.any(result.cleared & ~truth)
            cleared += int(result.cleared.sum())
            for c in np.flatnonzero(result.cleared):
                assert argmax_margin(E, b, result.witness[c], c) > 0
    assert cleared > 1000


def test_chunked_torch_path_agrees_with_hull(monkeypatch):
    # the multi-threaded torch products (used for large heads), with chunks and blocks smaller than V
    monkeypatch.setattr(prepared, "SMALL_PRODUCT", 0)
    rng = np.random.default_rng(3)
    E = rng.normal(size=(300, 5))
    verdicts = find_unargmaxable(E, chunk_size=70, block_size=128, patience=5, cache=False, progress=False)
    np.testing.assert_array_equal(verdicts.status == "argmaxable", hull_argmaxable(E))
    assert verdicts.counts()["decided_by_lp"] > 0


def test_device_path_is_the_same_function_on_the_cpu(monkeypatch):
    # device="auto" resolves to the CPU here and runs the torch products every device runs (no cuda-only branch);
    # the verdicts equal the default path's and a GPU asked for where none is visible is a clear error
    monkeypatch.setattr(prepared, "SMALL_PRODUCT", 0)
    E = np.random.default_rng(5).normal(size=(200, 4))
    b = np.random.default_rng(6).normal(size=200)
    on_device = find_unargmaxable(E, b, device="auto", patience=5, cache=False, progress=False)
    default = find_unargmaxable(E, b, patience=5, cache=False, progress=False)
    np.testing.assert_array_equal(on_device.status, default.status)
    np.testing.assert_array_equal(on_device.status == "argmaxable", hull_argmaxable(E, b))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda'"):
            find_unargmaxable(E, b, device="cuda", cache=False, progress=False)


def test_lp_radius_of_a_known_region():
    # class 0 wins exactly on the open square |x|_inf < 1: Chebyshev centre 0, radius 1
    E = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = np.array([0.0, -1.0, -1.0, -1.0, -1.0])
    result = chebyshev_lp(E, b, 0)
    assert result.argmaxable
    assert result.radius == pytest.approx(1.0, abs=1e-7)
    np.testing.assert_allclose(result.x, 0.0, atol=1e-6)
    # lowering class 0's bias to -1 shrinks its square to a point: unargmaxable, radius 0
    b_tight = b.copy()
    b_tight[0] = -1.0
    tight = chebyshev_lp(E, b_tight, 0)
    assert not tight.argmaxable and tight.x is None and tight.radius <= 1e-8
    # below that there is no point where class 0 even ties: the LP is infeasible
    b_low = b.copy()
    b_low[0] = -2.0
    low = chebyshev_lp(E, b_low, 0)
    assert not low.argmaxable and low.status.startswith("infeasible")


def test_box_matters_with_a_bias():
    # class 2 wins only where x > 50 (its bias is far below its competitor's): outside a box of 10, inside one of 100
    E = np.array([[1.0], [-1.0], [2.0]])
    b = np.array([0.0, 0.0, -50.0])
    assert find_unargmaxable(E, b, box=10.0, cache=False, progress=False).status[2] == "unargmaxable"
    wide = find_unargmaxable(E, b, box=100.0, cache=False, progress=False)
    assert wide.status[2] == "argmaxable" and wide.witness[2][0] > 50


def test_duplicates_named_and_no_division_by_zero():
    rng = np.random.default_rng(4)
    E = rng.normal(size=(60, 3))
    vertex = int(hull_argmaxable(E).nonzero()[0][0])
    E[10] = E[vertex]  # a copy of a hull vertex: neither copy can win strictly
    E[11] = E[vertex]
    E[20] = E[30]  # a copy of another row
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        verdicts = find_unargmaxable(E, cache=False, progress=False)
    duplicates = set(verdicts.tokens_with("duplicate").tolist())
    assert duplicates == {vertex, 10, 11, 20, 30}
    for i in duplicates:
        twin = verdicts.twin[i]
        assert twin != i and np.array_equal(E[twin], E[i])
    assert np.all(verdicts.twin[verdicts.status != "duplicate"] == -1)
    # the other verdicts are those of the head without the copies
    others = np.setdiff1d(np.arange(60), [10, 11, 20])
    truth = hull_argmaxable(E[others])
    kept = ~np.isin(others, list(duplicates))
    np.testing.assert_array_equal(verdicts.status[others][kept] == "argmaxable", truth[kept])


def test_duplicates_with_a_bias():
    # identical rows: the one with the larger bias is tested on its own, the lower one is its duplicate
    E = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    b = np.array([0.0, 0.5, 0.0, 0.2, 0.2])
    verdicts = find_unargmaxable(E, b, cache=False, progress=False)
    assert list(verdicts.status) == ["duplicate", "argmaxable", "argmaxable", "duplicate", "duplicate"]
    assert list(verdicts.twin) == [1, -1, -1, 4, 3]
    assert chebyshev_lp(E, b, 0).status == "duplicate of row 1"


def test_verdict_table_lists_the_chosen_verdicts_decoded():
    class Letters:  # a stand-in tokenizer: token i decodes to the i-th letter
        @staticmethod
        def decode(ids):
            return "".join("abcdefgh"[i] for i in ids)

    # rows 0 and 1 are twins (row 1 has the larger bias); row 5 sits inside the hull of rows 2-4
    E = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.0, 0.0]])
    b = np.array([0.0, 0.5, 0.0, 0.0, 0.0, -1.0])
    verdicts = find_unargmaxable(E, b, cache=False, progress=False)
    table = verdict_table(verdicts, Letters())
    assert table.token.tolist() == [0, 5] and table.status.tolist() == ["duplicate", "unargmaxable"]
    assert table.text.tolist() == ["'a'", "'f'"] and table.twin_text.tolist() == ["'b'", ""]
    assert verdict_table(verdicts, Letters(), ("argmaxable",)).token.tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="statuses='won'"):
        verdict_table(verdicts, Letters(), ("won",))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(E=np.ones((1, 3))), "at least V=2"),
        (dict(E=np.ones(3)), "2-d"),
        (dict(E=np.ones((4, 3)), b=np.ones(3)), "shape"),
        (dict(E=np.array([[0.0, np.nan], [1.0, 2.0]])), "non-finite"),
        (dict(E=np.eye(3), b=np.array([0.0, np.inf, 1.0])), "non-finite"),
        (dict(E=np.eye(3), box=0.0), "box"),
        (dict(E=np.eye(3), box=-5.0), "box"),
        (dict(E=np.eye(3), box=float("nan")), "box"),
        (dict(E=np.eye(3), patience=-1), "patience"),
        (dict(E=np.eye(3), start="middle"), "start"),
        (dict(E=np.eye(3), tokens=[0, 3]), "tokens"),
        (dict(E=np.eye(3), tokens=[1, 1]), "tokens"),
        (dict(E=np.eye(3), device="tpu"), "device"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, message):
    kwargs = dict(kwargs)
    E = kwargs.pop("E")
    b = kwargs.pop("b", None)
    with pytest.raises(ValueError, match=message):
        find_unargmaxable(E, b, cache=False, progress=False, **kwargs)


def test_certified_check_resolves_near_ties_in_float64():
    # the true margin (1e-9) is far below float32 resolution at this scale: the check must fall back to float64
    E = np.array([[1.0, 1.0], [1.0 + 1e-9, 1.0], [-1.0, 0.0]])
    x_wins = np.array([[1.0, 0.0]])  # class 1 ahead of class 0 by 1e-9
    head = reduce_head(E, None, np.arange(3))
    wins, margin, best = certified_margins(head, x_wins, np.array([1]), chunk_size=8)
    assert wins[0] and margin[0] == pytest.approx(1e-9, rel=1e-3) and best[0] == 0
    wins0, margin0, _ = certified_margins(head, x_wins, np.array([0]), chunk_size=8)
    assert not wins0[0] and margin0[0] < 0


def test_cache_is_reused_and_rebuilt_when_corrupt(monkeypatch):
    E, b = random_head(80, 4, "uniform", bias=True, seed=6)
    first = find_unargmaxable(E, b, progress=False)
    path = store.path_of("argmax", first.meta["key"], ".npz")
    assert path.exists()

    def no_recompute(*args, **kwargs):
        raise AssertionError("recomputed despite a valid cache")

    with monkeypatch.context() as patch:
        patch.setattr(verdicts_module, "braid_batch", no_recompute)
        again = find_unargmaxable(E, b, progress=False)
    np.testing.assert_array_equal(again.status, first.status)
    np.testing.assert_array_equal(again.witness, first.witness)
    # every setting is part of the key
    assert find_unargmaxable(E, b, box=50.0, progress=False).meta["key"] != first.meta["key"]
    assert find_unargmaxable(E, b, patience=3, progress=False).meta["key"] != first.meta["key"]
    # a truncated file is detected and rebuilt
    path.write_bytes(path.read_bytes()[:100])
    rebuilt = find_unargmaxable(E, b, progress=False)
    np.testing.assert_array_equal(rebuilt.status, first.status)
    assert Verdicts.load(path).meta["key"] == first.meta["key"]


def test_saved_witnesses_read_back_bit_identical_in_half_the_room(tmp_path):
    E, b = random_head(60, 5, "normal", bias=True, seed=3)
    verdicts = find_unargmaxable(E, b, cache=False, progress=False)
    rng = np.random.default_rng(0)
    witness = rng.standard_normal((len(verdicts.tokens), 5)).astype(np.float32).astype(np.float64)  # braid-like
    witness[3] = rng.standard_normal(5)  # an LP-like float64 row float32 cannot hold
    witness[7] = np.nan  # no witness
    witness[9, 2] = 1 / 3  # one inexact coordinate in a row
    verdicts.witness = witness
    path = tmp_path / "verdicts.npz"
    verdicts.save(path)
    back = Verdicts.load(path)
    assert back.witness.dtype == np.float64
    np.testing.assert_array_equal(back.witness, witness)  # NaN rows included
    assert np.array_equal(back.witness.view(np.int64), witness.view(np.int64))  # every bit
    with np.load(path) as data:
        assert sorted(data["witness_rows"].tolist()) == [3, 9]
        assert data["witness32"].dtype == np.float32


def test_saved_text_is_as_wide_as_its_longest_value_and_reads_back_at_full_width(tmp_path):
    E, b = random_head(60, 5, "normal", bias=True, seed=3)
    verdicts = find_unargmaxable(E, b, cache=False, progress=False)
    assert (verdicts.lp_status == "").any() and verdicts.lp_status.dtype == np.dtype("<U120")
    path = tmp_path / "verdicts.npz"
    verdicts.save(path)
    with np.load(path) as data:  # on disk: as wide as the longest value
        for name in ("status", "method", "lp_status"):
            longest = max([len(value) for value in getattr(verdicts, name).tolist()] + [1])
            assert data[name].dtype == np.dtype(f"<U{longest}"), name
    back = Verdicts.load(path)
    for name, width in (("status", 12), ("method", 5), ("lp_status", 120)):
        assert getattr(back, name).dtype == np.dtype(f"<U{width}"), name
        np.testing.assert_array_equal(getattr(back, name), getattr(verdicts, name))
    back.lp_status[0] = "x" * 120  # a value written after loading is kept whole, not cut to the stored width
    back.status[0] = "unargmaxable"
    assert back.lp_status[0] == "x" * 120 and back.status[0] == "unargmaxable"
    # a file whose text is wider than the arrays hold is refused, not cut
    arrays = {name: getattr(verdicts, name) for name in Verdicts._ARRAYS if name != "witness"}
    arrays["method"] = np.array(["braid-and-more"] * len(verdicts))
    with open(tmp_path / "wide.npz", "wb") as handle:
        np.savez(handle, meta=np.array("{}"), witness32=verdicts.witness.astype(np.float32),
                 witness_rows=np.zeros(0, dtype=np.int64), witness64=np.zeros((0, 5)), **arrays)
    with pytest.raises(ValueError, match="method"):
        Verdicts.load(tmp_path / "wide.npz")


def test_tokens_subset_matches_full_run():
    E, _ = random_head(150, 3, "normal", bias=False, seed=7)
    full = find_unargmaxable(E, cache=False, progress=False)
    subset = np.array([5, 17, 100, 149, 3])
    part = find_unargmaxable(E, tokens=subset, cache=False, progress=False)
    np.testing.assert_array_equal(part.tokens, subset)
    np.testing.assert_array_equal(part.status, full.status[subset])


def test_hull_with_a_box_flags_regions_beyond_it():
    # two nearly parallel rows with a bias gap: class 1 wins only where x > 1000
    E = np.array([[1.0, 0.0], [1.001, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = np.array([0.0, -1.0, 0.0, -5.0, -5.0])
    assert hull_argmaxable(E, b)[1]
    assert hull_box_undecided(E, b, 100.0)[1] and not hull_argmaxable(E, b, box=100.0)[1]
    assert find_unargmaxable(E, b, box=100.0, cache=False, progress=False).status[1] == "unargmaxable"
    assert find_unargmaxable(E, b, box=1e4, cache=False, progress=False).status[1] == "argmaxable"


@pytest.mark.slow
def test_thousands_of_instances_agree_with_hulls():
    # a region with a bias can lie beyond even a wide box (nearly parallel rows): those classes are not compared
    disagreements, undecided = 0, 0
    for bias in (False, True):
        for E, b in _instances(1500, seed=10 + bias, bias=bias):
            box = 1e4 if bias else 100.0
            verdicts = find_unargmaxable(E, b, box=box, cache=False, progress=False)
            open_question = hull_box_undecided(E, b, box) if bias else np.zeros(len(E), dtype=bool)
            wrong = (verdicts.status == "argmaxable") != hull_argmaxable(E, b, box=box if bias else None)
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
    verdicts = find_unargmaxable(head.E, head.b, tokens=tokens, progress=False)
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
    verdicts = find_unargmaxable(head.E, None, tokens=tokens, progress=False)
    np.testing.assert_array_equal(verdicts.tokens_with("duplicate"), in_groups)
    for i in np.flatnonzero(verdicts.status == "duplicate"):
        assert torch.equal(head.E[verdicts.twin[i]], head.E[verdicts.tokens[i]])
    _witnesses_win_through_the_model_head(loaded.model, verdicts)
