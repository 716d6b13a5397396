"""Windows drawn across the whole split: spread, seeded, non-overlapping, and attributed to their documents."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.corpora import documents, read_corpus, sample_windows, split_token_stream
from utils.tokenizers import gpt2_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return gpt2_tokenizer()


def find_starts(stream: np.ndarray, windows: torch.Tensor) -> list[int]:
    """Where each window sits in the stream (brute force over every offset)."""
    starts = []
    length = windows.shape[1]
    views = np.lib.stride_tricks.sliding_window_view(stream, length)
    for window in windows.numpy():
        matches = np.flatnonzero((views == window).all(axis=1))
        assert len(matches) >= 1
        starts.append(int(matches[0]))
    return starts


def test_windows_are_spread_over_the_split_and_do_not_overlap(tokenizer):
    text = read_corpus("wikipedia", "test")
    stream, owner = split_token_stream(tokenizer, text)
    sample = sample_windows(tokenizer, text, 32, 32 * 40, seed=3)
    starts = np.sort(find_starts(stream, sample.token_ids))
    assert np.all(np.diff(starts) >= 32)  # no two windows overlap
    assert starts[0] < len(stream) / 40 and starts[-1] > len(stream) * (1 - 2 / 40)  # first and last strata
    assert sample.n_documents == len(documents(text))
    assert sample.documents_covered >= 0.7 * sample.n_documents
    middle = {int(s): int(owner[s + 16]) for s in starts}
    assert sorted(middle.values()) == sorted(sample.document.tolist())


def test_the_seed_changes_the_windows_and_the_same_seed_repeats_them(tokenizer):
    text = read_corpus("bible", "test")
    first = sample_windows(tokenizer, text, 16, 16 * 20, seed=0)
    again = sample_windows(tokenizer, text, 16, 16 * 20, seed=0)
    other = sample_windows(tokenizer, text, 16, 16 * 20, seed=1)
    assert torch.equal(first.token_ids, again.token_ids)
    assert not torch.equal(first.token_ids, other.token_ids)


def test_a_prefix_of_the_windows_is_itself_spread(tokenizer):
    text = read_corpus("wikipedia", "test")
    stream, _ = split_token_stream(tokenizer, text)
    sample = sample_windows(tokenizer, text, 16, 16 * 64, seed=0)
    first_eight = find_starts(stream, sample.token_ids[:8])
    assert max(first_eight) - min(first_eight) > len(stream) / 4  # not the opening of one document


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"window_length": 16, "n_tokens": 10**7, "seed": 0}, "n_tokens=10000000 asks for"),
        ({"window_length": 16, "n_tokens": 64, "seed": 0.5}, "seed=0.5 must be an integer"),
        ({"window_length": 16, "n_tokens": 64, "seed": -2}, "seed=-2 must be >= 0"),
        ({"window_length": 32, "n_tokens": 16, "seed": 0}, "n_tokens=16 must be at least window_length=32"),
    ],
)
def test_bad_sampling_parameters_are_named(tokenizer, arguments, message):
    with pytest.raises((ValueError, TypeError), match=message):
        sample_windows(tokenizer, read_corpus("bible", "test"), **arguments)
