"""Chapter 6: the under-trained-token indicators, the prompting verification and reachability through training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.argmax.hull import hull_argmaxable
from utils.argmax.sweeps import random_head
from utils.argmax.verdicts import find_unargmaxable
from utils.models import load_model
from utils.parameters import literal_defaults
from utils.tokenizers import gpt2_tokenizer
from utils.uncertainty import exact
from utils.undertrained.geometry import (
    duplicate_rows,
    nearest_distinct_steps,
    quantisation_grid,
    quantisation_steps,
    relative_margin,
    strict_win_losses,
)
from utils.undertrained.indicators import (
    CLOSENESS,
    _byte_decoder,
    control_tokens,
    head_indicators,
    magikarp_distance,
    marker_tokens,
    plain_text_unreachable,
    precision_lift_interval,
    precision_table,
    rank_agreement,
    remove_first_component,
    token_bytes,
    token_table,
    token_texts,
    top_overlap,
    top_tokens,
    unused_reference,
    utf8_impossible_bytes,
)
from utils.undertrained.parameters import UndertrainedParameters
from utils.undertrained.prompting import (
    TEMPLATES,
    Prompting,
    copy_prompts,
    prompted_tokens,
    repetition_probabilities,
    template_ids,
    verify_by_prompting,
)
from utils.undertrained.records import record_agreement, record_prompting, record_reachability
from utils.undertrained.scorecard import (
    headline_checks,
    rule_of_three,
    scorecard_figure,
    share_bound,
    worst_training_change,
)
from utils.undertrained.training import (
    created_removed,
    pick_stages,
    reachability,
    reachability_frame,
    seen_unseen_sample,
    size_reachability,
    unseen_recovery,
)
from utils.undertrained.wording import (
    geometry_wording,
    lift_wording,
    quantisation_wording,
    ranking_wording,
    training_bound_wording,
    training_effect_wording,
)

DEFAULTS = literal_defaults("06_undertrained")


def recorded_values(builder, *args) -> dict:
    """{name: value} of what ``builder(rec, *args)`` records, with a stand-in recorder collecting its calls."""
    values = {}
    builder(lambda name, value, fmt=None, description="": values.__setitem__(name, value), *args)
    return values


def planted_head(V=600, d=24, n_planted=12, n_reference=6, seed=0):
    """Trained-like rows plus a strong shared direction; reference and planted rows sit near one unused point."""
    rng = np.random.default_rng(seed)
    E = rng.normal(size=(V, d))
    shared = rng.normal(size=d)
    E += 8.0 * rng.normal(size=(V, 1)) * shared / np.linalg.norm(shared)  # a dominant first component
    unused = rng.normal(size=d) * 0.3
    reference = np.arange(n_reference)
    planted = np.arange(n_reference, n_reference + n_planted)
    E[np.concatenate([reference, planted])] = unused + 0.02 * rng.normal(size=(n_reference + n_planted, d))
    return E, reference, planted


def test_planted_undertrained_rows_are_the_closest_to_the_unused_mean():
    E, reference, planted = planted_head()
    distance = magikarp_distance(E, reference)
    found = top_tokens(-distance, len(planted), exclude=reference)
    assert set(found.tolist()) == set(planted.tolist())


def test_first_component_is_removed():
    E, _, _ = planted_head()
    X = remove_first_component(E)
    centred = E - E.mean(0)
    first = np.linalg.svd(centred, full_matrices=False)[2][0]
    assert np.abs(X @ first).max() < 1e-8
    np.testing.assert_allclose(X.mean(0), 0.0, atol=1e-9)


def test_impossible_utf8_bytes_and_gpt2_reference():
    impossible = utf8_impossible_bytes()
    assert impossible == frozenset([0xC0, 0xC1, *range(0xF5, 0x100)])
    tokenizer = gpt2_tokenizer()
    reference, rule = unused_reference(tokenizer)
    assert len(reference) == len(impossible) and "UTF-8" in rule
    assert 50256 not in reference and "'<|endoftext|>'" in rule  # unreachable as plain text, but a marker
    for token in reference:  # each is the single byte itself
        assert token_bytes(tokenizer)[token][0] in impossible
    # GPT-2's byte table round-trips every byte
    assert sorted(_byte_decoder().values()) == list(range(256))


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.name for t in TEMPLATES])
def test_repetition_probability_equals_a_direct_forward_pass(tiny_model_dir, template):
    loaded = load_model(str(tiny_model_dir))
    tokens = np.array([5, 17, 300, 1234, 50256])
    probabilities = repetition_probabilities(loaded, tokens, template, batch_size=2)
    prefix, pieces = template_ids(loaded.tokenizer, template)
    prompts = copy_prompts(tokens, prefix, pieces)
    slots = template.tail.count("{token}")
    for token, prompt, p in zip(tokens, prompts, probabilities):
        with torch.no_grad():
            logits = loaded.model(prompt[None]).logits[0, -1].double()
        assert prompt[len(prefix) + len(pieces[0])] == token and int((prompt == token).sum()) >= slots
        assert p == pytest.approx(float(torch.softmax(logits, -1)[token]), rel=1e-4, abs=1e-9)


class PlantedTokenizer:
    """A GPT-2 tokenizer with two added tokens: a planted chat marker (named in a chat template) and a planted token
    whose text, encoded as plain text, gives other ids (byte-level pieces)."""

    def __init__(self):
        from transformers import AddedToken
        self.inner = gpt2_tokenizer()
        self.inner.add_tokens([AddedToken("<|turn|>", special=True), AddedToken("<planted>", special=True)])
        self.marker, self.planted = self.inner.convert_tokens_to_ids(["<|turn|>", "<planted>"])
        self.inner.chat_template = "{% for m in messages %}<|turn|>{{ m['content'] }}{% endfor %}"


def test_reference_excludes_a_planted_chat_marker_and_includes_a_planted_unreachable_token():
    planted = PlantedTokenizer()
    assert planted.inner("<planted>", add_special_tokens=False, split_special_tokens=True)["input_ids"] != [
        planted.planted]  # its text, as plain text, gives other ids
    unreachable = plain_text_unreachable(planted.inner)
    assert {planted.marker, planted.planted, 50256} <= set(unreachable.tolist())
    assert set(marker_tokens(planted.inner).tolist()) == {50256, planted.marker}
    reference, rule = unused_reference(planted.inner)
    assert planted.planted in reference and planted.marker not in reference and 50256 not in reference
    assert len(reference) == 13 + 1 and "less 2 chat and end-of-text markers" in rule
    # every other byte-level token re-encodes to itself: the oracle is the tokenizer itself, token by token
    sample = np.random.default_rng(0).choice(50256, 300, replace=False)
    for token in sample:
        text = token_texts(planted.inner).get(int(token))
        if text is not None:
            assert (planted.inner(text, add_special_tokens=False)["input_ids"] == [token]) == (
                token not in unreachable)


def test_cosine_distance_against_a_direct_computation():
    E, reference, planted = planted_head()
    X = remove_first_component(E)
    mean = X[reference].mean(0)
    direct = [1 - X[i] @ mean / (np.linalg.norm(X[i]) * np.linalg.norm(mean)) for i in range(len(E))]
    np.testing.assert_allclose(magikarp_distance(E, reference, "cosine"), direct, rtol=1e-10, atol=1e-12)
    found = top_tokens(-magikarp_distance(E, reference, "cosine"), len(planted), exclude=reference)
    assert set(found.tolist()) == set(planted.tolist())
    with pytest.raises(ValueError, match="metric='manhattan' is not allowed"):
        magikarp_distance(E, reference, "manhattan")


def test_precision_table_and_overlap():
    scores = {"a": np.array([5.0, 4, 3, 2, 1]), "b": np.array([1.0, 2, 3, 4, 5])}
    verified = {0: True, 1: False, 3: True, 4: True}
    table = precision_table(scores, verified, 2)
    assert table.verified.tolist() == [1, 2] and table.precision.tolist() == [0.5, 1.0]
    assert "the b ranks best, with 100% of its top 2" in ranking_wording(table)
    tied = precision_table({"a": scores["a"], "c": scores["a"]}, verified, 2)
    assert ranking_wording(tied) == "the a and the c tie, with 50% of each top 2 verified"
    overlap = top_overlap(scores, 2)
    assert overlap.loc["a", "b"] == 0 and overlap.loc["a", "a"] == 2
    assert rank_agreement(scores).loc["a", "b"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="were not verified"):
        precision_table(scores, {0: True}, 2)


def test_lift_interval_and_wording():
    lift, interval = precision_lift_interval(np.ones(20), np.zeros(20))
    assert lift == 1.0 and interval.low == pytest.approx(1.0) and interval.unit == "token"
    assert lift_wording(lift, interval).startswith("more often")
    assert lift_wording(0.0, exact(0.0)).startswith("not distinguishable")


def test_reachability_verdicts_agree_with_the_hull_oracle():
    rng = np.random.default_rng(1)
    heads = {"initialisation": random_head(60, 3, "normal", bias=False, seed=1)[0],
             "end": random_head(60, 3, "uniform", bias=False, seed=2)[0]}
    counts = rng.integers(0, 3, size=60)  # zeros: never seen
    tokens = seen_unseen_sample(counts, 60, seed=0)
    verdicts = {stage: find_unargmaxable(E, tokens=tokens, cache=False, progress=False) for stage, E in heads.items()}
    frame = reachability_frame(verdicts, counts)
    for stage, E in heads.items():
        truth = hull_argmaxable(E)
        for group, mask in (("unseen", counts == 0), ("seen", counts > 0)):
            row = frame[(frame.stage == stage) & (frame.group == group)].iloc[0]
            assert row.unargmaxable == int((~truth & mask).sum())
            assert row.tested == int(mask.sum())
    change = created_removed(verdicts["initialisation"], verdicts["end"])
    before, after = ~hull_argmaxable(heads["initialisation"]), ~hull_argmaxable(heads["end"])
    assert change == {"created": int((after & ~before).sum()), "removed": int((before & ~after).sum()), "tested": 60,
                      "V": 60}


def test_sampling_stages_and_wording():
    counts = np.array([0] * 10 + [5] * 3)
    sample = seen_unseen_sample(counts, 8, seed=0)
    assert len(sample) == 8 and (counts[sample] > 0).sum() == 3  # seen tokens run out: unseen fill the rest
    assert pick_stages([0, 1, 2, 4, 8, 16], 3) == {"initialisation": 0, "early": 2, "end": 16}
    assert pick_stages([0, 6], 16)["early"] == 6
    assert training_effect_wording(0, 0).startswith("training neither")
    assert training_effect_wording(2, 1) == ("training created 2 unargmaxable tokens and removed 1 among "
                                             "those tested")


def test_unseen_recovery_on_planted_rows():
    E, reference, planted = planted_head()
    counts = np.ones(len(E), dtype=int)
    counts[planted] = 0
    counts[reference] = 0
    result = unseen_recovery(magikarp_distance(E, reference), counts, reference, len(planted))
    assert result["precision"] == 1.0 and result["auc"] == pytest.approx(1.0)
    assert result["base_rate"] == pytest.approx(len(planted) / (len(E) - len(reference)))


def test_geometry_wording():
    assert geometry_wording(0, 0).startswith("the head's geometry forbids none")
    assert "forbids a strict argmax" in geometry_wording(0, 4)
    with pytest.raises(ValueError, match="n_duplicate=-1"):
        geometry_wording(0, -1)


# ------------------------------------------------------------------------------------------------------------------
# the chapter's parameters
# ------------------------------------------------------------------------------------------------------------------


def test_default_parameters_pass():
    parameters = UndertrainedParameters.from_namespace(DEFAULTS)
    assert (parameters.n_candidates, parameters.max_tokens) == (DEFAULTS["n_candidates"], DEFAULTS["max_tokens"])
    UndertrainedParameters.from_namespace({**DEFAULTS, "max_tokens": 300, "device": "auto", "precision": "bfloat16",
                                           "patience": 0})
    with pytest.raises(ValueError, match=r"lack \['n_table'\]"):
        UndertrainedParameters.from_namespace({k: v for k, v in DEFAULTS.items() if k != "n_table"})


@pytest.mark.parametrize("name, value, error, message", [
    ("n_candidates", 0, ValueError, "n_candidates=0 must be >= 1"),  # the positive integers
    ("prompt_batch_size", -2, ValueError, "prompt_batch_size=-2 must be >= 1"),
    ("n_table", 2.5, TypeError, "n_table=2.5 must be an integer"),
    ("seed", -1, ValueError, "seed=-1 must be >= 0"),  # the seeds
    ("threshold", 1.5, ValueError, r"threshold=1.5 is outside the allowed interval \(0.0, 1.0\)"),
    ("threshold", 0.0, ValueError, r"threshold=0.0 is outside the allowed interval \(0.0, 1.0\)"),
    ("window_length", 1, ValueError, "window_length=1 must be >= 2"),
    ("n_tokens", 64, ValueError, "n_tokens=64 must be >= 128"),  # below one window of the default length
    ("max_tokens", 0, ValueError, "max_tokens=0 must be >= 1"),
    ("box", 0.0, ValueError, r"box=0.0 is outside the allowed interval \(0.0, inf\]"),
    ("patience", -1, ValueError, "patience=-1 must be >= 0"),
    ("start", "middle", ValueError, r"start='middle' is not allowed; choose one of \['row', 'centred'\]"),
    ("corpus", "nope", ValueError, "corpus='nope' is not allowed"),
    ("device", "tpu", ValueError, "device='tpu' is not allowed"),
    ("precision", "float16", ValueError, "precision='float16' is not allowed"),
    ("early_step", 0, ValueError, "early_step=0 must be >= 1"),
])
def test_a_bad_parameter_raises_naming_it(name, value, error, message):
    with pytest.raises(error, match=message):
        UndertrainedParameters.from_namespace({**DEFAULTS, name: value})


def test_model_parameters_against_the_tiny_model(tiny_model_dir):
    loaded = load_model(str(tiny_model_dir))
    reference, _ = unused_reference(loaded.tokenizer)
    pool = loaded.model.get_output_embeddings().weight.shape[0] - len(reference)
    tiny = {**DEFAULTS, "window_length": 16, "n_candidates": pool, "n_control": 6}
    UndertrainedParameters.from_namespace(tiny).check_model(loaded)  # every token outside the reference may be one
    with pytest.raises(ValueError, match=f"n_candidates={pool + 1} must be <= {pool}"):
        UndertrainedParameters.from_namespace({**tiny, "n_candidates": pool + 1}).check_model(loaded)
    with pytest.raises(ValueError, match=f"n_control={pool + 1} must be <= {pool}"):
        UndertrainedParameters.from_namespace({**tiny, "n_control": pool + 1}).check_model(loaded)
    with pytest.raises(ValueError, match=f"window_length={loaded.n_ctx + 1} must be <= {loaded.n_ctx}"):
        UndertrainedParameters.from_namespace({**tiny, "window_length": loaded.n_ctx + 1}).check_model(loaded)


# ------------------------------------------------------------------------------------------------------------------
# what the chapter computes and records
# ------------------------------------------------------------------------------------------------------------------


def test_control_tokens_leave_out_the_reference_and_repeat_the_seeded_draw():
    reference = np.array([0, 3, 7])
    control = control_tokens(20, 10, reference, seed=4)
    assert len(control) == 10 and len(np.unique(control)) == 10 and (np.diff(control) > 0).all()
    assert not np.isin(control, reference).any()
    pool = np.setdiff1d(np.arange(20), reference)  # the chapter's draw before the move to utils
    np.testing.assert_array_equal(control, np.sort(np.random.default_rng(4).choice(pool, 10, replace=False)))
    np.testing.assert_array_equal(control_tokens(20, 50, reference, seed=4), pool)  # fewer left: all of them


def planted_prompting(threshold=0.01):
    """Top lists, control and reference over 30 tokens with known probabilities: tokens below 10 are under-trained."""
    tops = {CLOSENESS: np.array([1, 2, 3, 12]), "small row norm": np.array([2, 13, 14, 15])}
    control, reference = np.array([4, 20, 21, 22, 23]), np.array([0, 5])
    prompted = prompted_tokens(tops, control, reference)
    probability = {int(t): (1e-4 if t < 10 else 0.5) for t in prompted}
    return Prompting(tops, control, reference, probability, threshold)


def test_prompting_counts_against_a_direct_count():
    prompting = planted_prompting()
    np.testing.assert_array_equal(prompting.prompted, [0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 20, 21, 22, 23])
    np.testing.assert_array_equal(prompting.candidates, [1, 2, 3, 12, 13, 14, 15])
    np.testing.assert_array_equal(prompting.under, [1, 2, 3])
    assert list(prompting.verified) == prompting.prompted.tolist()
    assert prompting.hits([1, 12, 0]).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="were not prompted"):
        prompting.hits([29])
    lift, interval = prompting.lift(seed=0)
    assert lift == pytest.approx(3 / 4 - 1 / 5)  # closeness: 3 of 4 verified; control: 1 of 5
    assert interval.unit == "token" and interval.low <= lift <= interval.high


def test_prompting_records_are_the_direct_numbers():
    prompting = planted_prompting()
    indicators = {name: np.zeros(30) for name in prompting.tops}
    for name, top in prompting.tops.items():
        indicators[name][top] = 1.0 + np.arange(len(top))[::-1]
    table = precision_table(indicators, prompting.verified, 4)
    lift, interval = prompting.lift(seed=0)
    values = recorded_values(record_prompting, prompting, "rule", table, lift, interval)
    assert values["n_reference"] == 2 and values["n_candidates"] == 4 and values["n_control"] == 5
    assert values["n_prompted"] == 14 and values["n_verified"] == 3
    assert values["control_rate"] == pytest.approx(0.2) and values["reference_rate"] == 1.0
    assert values["ranking"].startswith(f"the {CLOSENESS} ranks best, with 75%")
    assert values["lift_wording"] == lift_wording(lift, interval)
    assert scorecard_figure("m", prompting, 0, 1) == (
        "3 of 7 candidates of m under-trained (random tokens: 20%); of those, 0 unargmaxable, 1 duplicate rows")


def test_verify_by_prompting_asks_the_model_once_per_token(tiny_model_dir):
    loaded = load_model(str(tiny_model_dir))
    tops, control, reference = {CLOSENESS: np.array([9, 3])}, np.array([3, 40]), np.array([500])
    prompting = verify_by_prompting(loaded, tops, control, reference, 0.5, batch_size=2)
    np.testing.assert_array_equal(prompting.prompted, [3, 9, 40, 500])
    direct = np.stack([repetition_probabilities(loaded, prompting.prompted, t, batch_size=4)
                       for t in TEMPLATES], axis=1)  # (4 tokens, 3 templates)
    got = np.array([prompting.probability[t] for t in (3, 9, 40, 500)])
    np.testing.assert_allclose(got, direct.max(axis=1), rtol=1e-6)
    assert (got[:, None] >= direct * (1 - 1e-6)).all()  # the largest over templates is at least each template's
    assert not np.allclose(direct[:, 0], direct[:, 1])  # the templates differ, so the max is not one template's
    assert prompting.templates == tuple(t.name for t in TEMPLATES)
    assert prompting.verified == {t: p < 0.5 for t, p in zip((3, 9, 40, 500), got)}


def test_token_table_reads_each_column_at_the_token():
    tokenizer = gpt2_tokenizer()
    prompting = planted_prompting()
    tokens = np.array([12, 1])
    table = token_table(tokenizer, tokens, {"x": np.arange(30) * 2.0}, prompting)
    assert table.columns.tolist() == ["token", "text", "x", "p(repeat)", "under-trained"]
    assert table.x.tolist() == [24.0, 2.0] and table["under-trained"].tolist() == [False, True]
    assert table.text.tolist() == [repr(tokenizer.decode([12])), repr(tokenizer.decode([1]))]
    assert token_table(tokenizer, tokens).columns.tolist() == ["token", "text"]


def test_head_indicators_and_relative_margin():
    E = np.array([[3.0, 4.0], [0.0, 1.0]])
    indicators = head_indicators(E, np.array([1.0, 2.0]), np.array([5.0, 6.0]))
    assert indicators[CLOSENESS].tolist() == [-1.0, -2.0] and indicators["small row norm"].tolist() == [-5.0, -1.0]

    class Tested:  # the fields of a Verdicts that relative_margin reads
        tokens, margin, witness = np.array([2]), np.array([1.5]), np.array([[3.0, 4.0]])

    margin = relative_margin(Tested, 4)
    assert margin[2] == pytest.approx(0.3) and np.isnan(margin[[0, 1, 3]]).all()


def test_strict_win_losses_agree_with_the_hull_oracle():
    E, _ = random_head(80, 3, "normal", bias=False, seed=3)
    E[7] = E[5]  # a planted pair of identical rows: neither can win strictly
    sample = find_unargmaxable(E, tokens=np.arange(0, 80, 2), cache=False, progress=False)  # 7 is outside it
    tokens = np.arange(80)
    n_unargmaxable, n_duplicate = strict_win_losses(tokens, sample, E, box=100.0, patience=50, start="centred")
    others = np.setdiff1d(tokens, [5, 7])
    truth = hull_argmaxable(np.delete(E, 7, axis=0))[np.searchsorted(np.setdiff1d(tokens, [7]), others)]
    assert (n_unargmaxable, n_duplicate) == (int((~truth).sum()), 2)


def test_agreement_records_and_scorecard_checks():
    import pandas as pd

    names = [CLOSENESS, "predicted -log alpha", "measured -log alpha", "thin argmax margin"]
    correlations = pd.DataFrame(np.arange(16.0).reshape(4, 4), index=names, columns=names)
    overlap = pd.DataFrame(np.arange(16).reshape(4, 4), index=names, columns=names)
    values = recorded_values(record_agreement, correlations, overlap, 9, 0, 2, 1000)
    assert (values["rho_closeness_predicted"], values["rho_predicted_measured"]) == (1.0, 6.0)
    assert (values["rho_closeness_margin"], values["overlap_closeness_predicted"]) == (3.0, 1)
    assert values["under_geometry"] == geometry_wording(0, 2) and values["verdict_tokens"] == 1000
    lift, interval = precision_lift_interval(np.ones(20), np.zeros(20))
    checks = headline_checks(lift, interval, 0, 2)
    assert [c.verdict for c in checks] == ["reproduced", "not reproduced"]  # 2 tokens cannot win: above 0
    assert "exact: a property of the head" in checks[1].name and "interval over tokens" in checks[0].name
    from utils.results import short_checks  # the front page shows each check under its name up to the first colon
    assert short_checks(checks).startswith("closeness to the unused mean ") and "cannot win strictly " in short_checks(
        checks)
    quantised = headline_checks(lift, interval, 0, 2, quantised=True)[1]  # the duplicates may be ties
    assert (quantised.interval.low, quantised.interval.high, quantised.verdict) == (0.0, 2.0, "inconclusive")
    assert headline_checks(lift, interval, 1, 2, quantised=True)[1].verdict == "not reproduced"
    changes = {"d64": {"created": 0, "removed": 0, "tested": 1024, "V": 50257},
               "d128": {"created": 0, "removed": 0, "tested": 1024, "V": 50257}}
    training_check = headline_checks(lift, interval, 0, 0, changes=changes)[2]
    assert training_check.value == 0.0 and training_check.verdict == "inconclusive"  # a sample cannot show none
    assert training_check.interval.high == pytest.approx(1 - 0.05 ** (1 / 1024))
    assert "1,024 sampled of 50,257" in training_check.name
    with pytest.raises(ValueError, match="n_duplicate=-1"):
        headline_checks(lift, interval, 0, -1)


def test_share_bound_is_the_exact_binomial_bound_and_the_rule_of_three():
    from scipy import stats

    for n in (10, 1024, 50257):
        bound = share_bound(0, n)
        assert stats.binom.cdf(0, n, bound.high) == pytest.approx(0.05, rel=1e-9)  # P(no hit | p = bound) = 5%
        assert bound.low == 0.0 and bound.unit == "sampled token"
        assert rule_of_three(n) == pytest.approx(bound.high, rel=0.01 if n >= 1024 else 0.2)  # 3/n: large n
    bound = share_bound(7, 200)  # with hits: each end is the one-sided 95% exact bound
    assert stats.binom.sf(6, 200, bound.low) == pytest.approx(0.05, rel=1e-6)  # P(X >= 7 | p = low) = 5%
    assert stats.binom.cdf(7, 200, bound.high) == pytest.approx(0.05, rel=1e-6)  # P(X <= 7 | p = high) = 5%
    assert bound.low < 7 / 200 < bound.high
    with pytest.raises(ValueError, match="k=5 must be <= 4"):
        share_bound(5, 4)
    changes = {"a": {"created": 0, "tested": 1024, "V": 50257}, "b": {"created": 2, "tested": 1024, "V": 50257}}
    assert worst_training_change(changes) == (2, 1024, 50257)
    assert training_bound_wording({"a": changes["a"]}).startswith("none of the 1,024 sampled tokens")
    assert "0.29%" in training_bound_wording({"a": changes["a"]})


def test_quantisation_grid_and_ties_on_a_planted_q8_0_head():
    rng = np.random.default_rng(0)
    floats = rng.normal(size=(40, 64))
    floats[5] = floats[4] + 1e-7  # two float rows closer than a step: rounding merges them
    steps = (np.abs(floats.reshape(40, 2, 32)).max(axis=2) / 127).astype(np.float16).astype(np.float64)  # as GGUF
    ints = np.clip(np.round(floats.reshape(40, 2, 32) / steps[..., None]), -127, 127)
    stored = (ints * steps[..., None]).reshape(40, 64)
    grid = quantisation_grid(stored)
    assert grid["on_grid"] == 1.0 and grid["median_step"] == pytest.approx(np.median(steps))
    assert quantisation_grid(floats)["on_grid"] < 0.05  # a float head is off the grid
    np.testing.assert_array_equal(duplicate_rows(stored), [4, 5])
    assert len(duplicate_rows(floats)) == 0
    stored[6] = stored[4]
    stored[6, 3] += steps[4, 0]  # one step away in one value: the nearest row stored differently
    ties = nearest_distinct_steps(stored, [4])
    assert ties.iloc[0].to_dict() == {"token": 4, "twins": 1, "nearest": 6, "max_steps": pytest.approx(1.0),
                                      "n_differ": 1}
    assert "may be rounding ties" in quantisation_wording({**grid, "d": 64}, ties, 0)
    with pytest.raises(ValueError, match="block=32 must divide the head's dimension d=40"):
        quantisation_steps(np.ones((3, 40)))
    assert nearest_distinct_steps(np.ones((3, 40)), [0]).empty and nearest_distinct_steps(stored, []).empty
    assert quantisation_grid(np.ones((3, 40)))["on_grid"] == 0.0


# ------------------------------------------------------------------------------------------------------------------
# reachability through training
# ------------------------------------------------------------------------------------------------------------------


def test_reachability_records_without_chapter_4():
    reach, changes, recovery = reachability(None, early_step=2, n_tokens=10, seed=0, box=100.0,
                                            patience=50, start="centred", k=4)
    assert reach.empty and changes == {} and recovery.empty
    values = recorded_values(record_reachability, reach, changes, recovery)
    assert values["dyn_sizes"] == "none" and values["dyn_tested"] == 0 and values["dyn_unargmaxable"] == 0
    assert values["dyn_wording"] == training_effect_wording(0, 0)
    assert all(np.isnan(values[name]) for name in ("recovery_precision", "recovery_base", "recovery_auc"))


def test_size_reachability_finds_rows_that_training_shrank_into_the_hull(tmp_path):
    import pandas as pd
    from conftest import save_tiny_model
    from safetensors.torch import load_file, save_file

    counts = np.ones(50257, dtype=np.int64)
    counts[100:200] = 0  # never seen
    sample = seen_unseen_sample(counts, 20, seed=0)
    shrunk = sample[:3]  # rows pulled to the centre by the end of training: unargmaxable there
    steps = {step: save_tiny_model(tmp_path / f"step{step}", "gpt2", seed=0) for step in (0, 2, 6)}
    weights = load_file(steps[6] / "model.safetensors")
    weights["transformer.wte.weight"][shrunk] *= 1e-3
    save_file(weights, steps[6] / "model.safetensors", metadata={"format": "pt"})
    reference = np.arange(100, 110)
    frame, change, recovery = size_reachability(steps, counts, reference, early_step=3, n_tokens=20,
                                                seed=0, box=100.0, patience=50, start="centred", k=5)
    at = {(row.stage, row.group): row for row in frame.itertuples()}
    assert at["initialisation", "unseen"].tested == 10 and at["end", "seen"].tested == 10
    assert sum(at["end", group].unargmaxable for group in ("seen", "unseen")) == 3
    assert sum(at["early", group].unargmaxable for group in ("seen", "unseen")) == 0  # step 2, before the change
    assert change == {"created": 3, "removed": 0, "tested": 20, "V": 50257}
    assert recovery["duplicates"] == 0  # float32 rows of a random head: none identical
    assert recovery["k"] == 5 and recovery["base_rate"] == pytest.approx(90 / (50257 - 10))
    values = recorded_values(record_reachability, frame.assign(size="tiny"), {"tiny": change},
                             pd.DataFrame([recovery]))
    assert values["dyn_created"] == 3 and values["dyn_unargmaxable"] == 3 and values["dyn_tested"] == 20
