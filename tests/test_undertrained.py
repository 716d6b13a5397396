"""Chapter 6: the under-trained-token indicators, the prompting verification and reachability through training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from utils import undertrained as ut
from utils import undertrained_training as training
from utils.argmax.hull import hull_argmaxable
from utils.argmax.sweeps import random_head
from utils.argmax.verdicts import find_unargmaxable
from utils.models import load_model
from utils.tokenizers import gpt2_tokenizer
from utils.uncertainty import exact

PARAMETERS = dict(n_candidates=8, threshold=0.01, n_control=8, seed=0, corpus="wikipedia", window_length=16,
                  n_tokens=512, sample_seed=0, batch_size=4, prompt_batch_size=4, box=100.0, patience=50,
                  start="centred", dynamics_max_tokens=40, early_step=2, n_table=5)


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
    distance = ut.magikarp_distance(E, reference)
    found = ut.top_tokens(-distance, len(planted), exclude=reference)
    assert set(found.tolist()) == set(planted.tolist())


def test_first_component_is_removed():
    E, _, _ = planted_head()
    X = ut.remove_first_component(E)
    centred = E - E.mean(0)
    first = np.linalg.svd(centred, full_matrices=False)[2][0]
    assert np.abs(X @ first).max() < 1e-8
    np.testing.assert_allclose(X.mean(0), 0.0, atol=1e-9)


def test_impossible_utf8_bytes_and_gpt2_reference():
    impossible = ut.utf8_impossible_bytes()
    assert impossible == frozenset([0xC0, 0xC1, *range(0xF5, 0x100)])
    tokenizer = gpt2_tokenizer()
    reference, rule = ut.unused_reference(tokenizer)
    assert len(reference) == len(impossible) and "UTF-8" in rule
    for token in reference:  # each is the single byte itself
        assert ut.token_bytes(tokenizer)[token][0] in impossible
    # GPT-2's byte table round-trips every byte
    assert sorted(ut._byte_decoder().values()) == list(range(256))


def test_repetition_probability_equals_a_direct_forward_pass(tiny_model_dir):
    loaded = load_model(str(tiny_model_dir))
    tokens = np.array([5, 17, 300, 1234, 50256])
    probabilities = ut.repetition_probabilities(loaded, tokens, batch_size=2)
    prefix, suffix = ut.repetition_template(loaded.tokenizer)
    prompts = ut.repetition_prompts(tokens, prefix, suffix)
    for token, prompt, p in zip(tokens, prompts, probabilities):
        with torch.no_grad():
            logits = loaded.model(prompt[None]).logits[0, -1].double()
        assert prompt[len(prefix)] == token
        assert p == pytest.approx(float(torch.softmax(logits, -1)[token]), rel=1e-4, abs=1e-9)


def test_precision_table_and_overlap():
    scores = {"a": np.array([5.0, 4, 3, 2, 1]), "b": np.array([1.0, 2, 3, 4, 5])}
    verified = {0: True, 1: False, 3: True, 4: True}
    table = ut.precision_table(scores, verified, 2)
    assert table.verified.tolist() == [1, 2] and table.precision.tolist() == [0.5, 1.0]
    assert "the b ranks best" in ut.ranking_wording(table)
    overlap = ut.top_overlap(scores, 2)
    assert overlap.loc["a", "b"] == 0 and overlap.loc["a", "a"] == 2
    assert ut.rank_agreement(scores).loc["a", "b"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="were not verified"):
        ut.precision_table(scores, {0: True}, 2)


def test_lift_interval_and_wording():
    lift, interval = ut.precision_lift_interval(np.ones(20), np.zeros(20))
    assert lift == 1.0 and interval.low == pytest.approx(1.0) and interval.unit == "token"
    assert ut.lift_wording(lift, interval).startswith("more often")
    assert ut.lift_wording(0.0, exact(0.0)).startswith("not distinguishable")


def test_bad_parameters_name_the_parameter():
    with pytest.raises(ValueError, match="threshold=1.5"):
        ut.UndertrainedParameters(**{**PARAMETERS, "threshold": 1.5})
    with pytest.raises(ValueError, match="threshold=0.0"):
        ut.UndertrainedParameters(**{**PARAMETERS, "threshold": 0.0})
    parameters = ut.UndertrainedParameters(**PARAMETERS)
    with pytest.raises(ValueError, match="n_candidates=8 must be <= 5"):
        parameters.check_vocabulary(5)
    with pytest.raises(ValueError, match="lack"):
        ut.UndertrainedParameters.from_namespace({"seed": 0})


def test_reachability_verdicts_agree_with_the_hull_oracle():
    rng = np.random.default_rng(1)
    heads = {"initialisation": random_head(60, 3, "normal", bias=False, seed=1)[0],
             "end": random_head(60, 3, "uniform", bias=False, seed=2)[0]}
    counts = rng.integers(0, 3, size=60)  # zeros: never seen
    tokens = training.seen_unseen_sample(counts, 60, seed=0)
    verdicts = {stage: find_unargmaxable(E, tokens=tokens, cache=False, progress=False) for stage, E in heads.items()}
    frame = training.reachability_frame(verdicts, counts)
    for stage, E in heads.items():
        truth = hull_argmaxable(E)
        for group, mask in (("unseen", counts == 0), ("seen", counts > 0)):
            row = frame[(frame.stage == stage) & (frame.group == group)].iloc[0]
            assert row.unargmaxable == int((~truth & mask).sum())
            assert row.tested == int(mask.sum())
    change = training.created_removed(verdicts["initialisation"], verdicts["end"])
    before, after = ~hull_argmaxable(heads["initialisation"]), ~hull_argmaxable(heads["end"])
    assert change == {"created": int((after & ~before).sum()), "removed": int((before & ~after).sum()), "tested": 60}


def test_sampling_stages_and_wording():
    counts = np.array([0] * 10 + [5] * 3)
    sample = training.seen_unseen_sample(counts, 8, seed=0)
    assert len(sample) == 8 and (counts[sample] > 0).sum() == 3  # seen tokens run out: unseen fill the rest
    assert training.pick_stages([0, 1, 2, 4, 8, 16], 3) == {"initialisation": 0, "early": 2, "end": 16}
    assert training.pick_stages([0, 6], 16)["early"] == 6
    assert training.training_effect_wording(0, 0).startswith("training neither")
    assert training.training_effect_wording(2, 1) == ("training created 2 unargmaxable tokens and removed 1 among "
                                                      "those tested")


def test_unseen_recovery_on_planted_rows():
    E, reference, planted = planted_head()
    counts = np.ones(len(E), dtype=int)
    counts[planted] = 0
    counts[reference] = 0
    result = training.unseen_recovery(ut.magikarp_distance(E, reference), counts, reference, len(planted))
    assert result["precision"] == 1.0 and result["auc"] == pytest.approx(1.0)
    assert result["base_rate"] == pytest.approx(len(planted) / (len(E) - len(reference)))


def test_geometry_wording():
    assert ut.geometry_wording(0, 0).startswith("the head's geometry forbids none")
    assert "forbids a strict argmax" in ut.geometry_wording(0, 4)
    with pytest.raises(ValueError, match="n_duplicate=-1"):
        ut.geometry_wording(0, -1)
