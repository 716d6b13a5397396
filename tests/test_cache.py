"""The one cache: keys follow their payload, writes are all or nothing, bad files are rebuilt, never read back."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from utils import cache


def test_keys_follow_every_field_of_the_payload():
    base = cache.key_of({"model": "m", "n_tokens": 64, "code_version": "1"})
    assert base == cache.key_of({"n_tokens": 64, "code_version": "1", "model": "m"})  # order does not matter
    assert base != cache.key_of({"model": "m", "n_tokens": 65, "code_version": "1"})
    assert base != cache.key_of({"model": "m", "n_tokens": 64, "code_version": "2"})
    a = np.arange(6, dtype=np.float32)
    assert cache.fingerprint(a) == cache.fingerprint(torch.arange(6, dtype=torch.float32))
    assert cache.fingerprint(a) != cache.fingerprint(a.reshape(2, 3))  # the shape is part of it
    assert cache.fingerprint(a) != cache.fingerprint(a.astype(np.float64))  # and the dtype


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    path = tmp_path / "kind" / "result.pt"

    def broken(target):
        target.write_bytes(b"half of it")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cache.write(path, broken)
    assert not path.exists() and list(path.parent.iterdir()) == []
    cache.write(path, cache.save_torch({"x": torch.ones(3)}))
    assert torch.equal(cache.read(path, cache.load_torch)["x"], torch.ones(3))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "mismatch"])
def test_unreadable_or_mismatched_files_are_not_read_back(tmp_path, damage, capsys):
    path = tmp_path / "result.pt"
    cache.write(path, cache.save_torch({"key": "abc", "x": torch.arange(1000.0)}))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a torch file")
    expected = "xyz" if damage == "mismatch" else "abc"
    assert cache.read(path, cache.load_torch, lambda saved: saved["key"] == expected) is None
    assert "rebuilding it" in capsys.readouterr().out
    assert cache.read(tmp_path / "missing.pt", cache.load_torch) is None


def test_an_exclusive_lock_lets_one_process_in_at_a_time(tmp_path):
    """Two processes that make the same entry at once (the build's pages side by side) take turns."""
    import multiprocessing

    from schedule_tasks import locked_task

    context = multiprocessing.get_context("spawn")
    log = tmp_path / "log"
    workers = [context.Process(target=locked_task, args=(str(tmp_path / "entry.lock"), str(log), 0.5))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(worker.exitcode == 0 for worker in workers)
    (_, end_first), (start_second, _) = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert end_first <= start_second  # the second waited for the first to let go
