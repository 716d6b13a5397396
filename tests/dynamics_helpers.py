"""Shared helpers of the tests of :mod:`utils.dynamics` (a tiny training configuration, a synthetic text)."""
from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load_file

TINY = dict(size="tiny", steps=6, batch_size=2, checkpoint_every=2, lr=3e-3)


def synthetic_text(n_words: int = 6000, seed: int = 0) -> str:
    """Zipf-distributed words over a small vocabulary, in lines and blank-line-separated paragraphs."""
    rng = np.random.default_rng(seed)
    words = np.array(["the", "of", "and", "river", "castle", "moon", "quietly", "seventeen", "harbour", "ink",
                      "lantern", "orbit", "pepper", "quartz", "saddle", "tundra", "velvet", "walnut", "yonder"])
    ranks = np.minimum(rng.zipf(1.3, size=n_words), len(words)) - 1
    lines = [" ".join(words[ranks[i : i + 12]]) + "." for i in range(0, n_words, 12)]
    return "\n".join(line + ("\n" if k % 5 == 4 else "") for k, line in enumerate(lines)) + "\n"


def final_weights(run) -> dict[str, torch.Tensor]:
    return load_file(run.checkpoints[run.final_step] / "model.safetensors")


def assert_same_run(straight, resumed) -> None:
    """Every checkpoint of ``straight`` is bit-identical in ``resumed``, and so are the training losses."""
    for step in straight.checkpoints:
        expected = load_file(straight.checkpoints[step] / "model.safetensors")
        got = load_file(resumed.checkpoints[step] / "model.safetensors")
        assert all(torch.equal(expected[k], got[k]) for k in expected), step
    assert np.array_equal(straight.train_loss, resumed.train_loss)
