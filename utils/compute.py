"""Where and in what precision the model body runs: the one place behind every chapter's ``device`` and
``precision`` parameters.

- ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (cuda where a GPU is visible, else cpu). Asking for cuda where none
  is visible is an error, never a silent fallback.
- ``precision``: ``"float32"`` (every default of the book, so that every machine builds the same book),
  ``"bfloat16"`` or ``"auto"``. bfloat16 runs the model *body* under ``torch.autocast``; the output head's product, the
  log-softmax and the accumulators of alpha stay float32/float64 whatever the precision. ``"bfloat16"`` is used as
  asked; on a CPU its matrix-multiply rate is measured against fp32's and printed where it is slower (many CPUs have
  no bf16 matrix units, and there bf16 runs many times *slower* than fp32). ``"auto"`` is the one setting that
  decides by measurement: bf16 on a GPU, and on a CPU only where bf16 is at least ``MIN_BF16_SPEEDUP`` times faster,
  else float32 (saying why). No default of the book is ``"auto"``: a default never depends on a timing.
- ``device_map`` (of :func:`utils.models.load_model` only): for a model larger than one device, accelerate places
  its layers (``"auto"``: over every visible GPU, then the CPU; or an explicit ``{module name: device}``), with
  ``device="auto"``; see :func:`check_device_map`. Without a GPU, ``"auto"`` places the whole model on the CPU
  through the same code.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from .validation import check_choice

DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("float32", "bfloat16", "auto")
MIN_BF16_SPEEDUP = 1.5  # under "auto", bf16 must multiply matrices at least this many times faster than fp32


@dataclass(frozen=True)
class Compute:
    """A resolved device and precision.

    Attributes:
        device: where the model body and the head's chunked softmax run.
        precision: the precision used (``"float32"`` or ``"bfloat16"``), after any fallback.
        requested: the precision asked for.
        reason: why ``precision`` is what it is (a measured speed-up or a fallback), for the page.
    """

    device: torch.device
    precision: str = "float32"
    requested: str = "float32"
    reason: str = "float32 as asked"

    def autocast(self) -> AbstractContextManager:
        """The context the model body runs in: bf16 autocast, or nothing for float32."""
        if self.precision == "bfloat16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()


CPU_FLOAT32 = Compute(torch.device("cpu"))


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` as a ``torch.device``; cuda without a visible GPU raises."""
    check_choice("device", device, DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' is not available: no GPU is visible to torch here; use 'cpu' or 'auto'")
    return torch.device(device)


def check_device_map(device_map: Any) -> str | dict[str, str | int] | None:
    """Validate ``device_map`` for :func:`utils.models.load_model`: None (the whole model on ``device``), ``"auto"``
    (accelerate places the layers over every visible GPU, then the CPU), or a dict ``{module name: device}`` whose
    devices are ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a GPU index N of a visible GPU. Offloading to "disk" or
    "meta" is refused: the book reads the output head's weights directly. Returns the map unchanged.

    Raises:
        ValueError: any other value (naming ``device_map``, the value and what is allowed), or a GPU entry where no
            such GPU is visible.
    """
    allowed = "None, 'auto', or a dict {module name: 'cpu' | 'cuda' | 'cuda:N' | N}"
    if device_map is None or device_map == "auto":
        return device_map
    if not isinstance(device_map, dict) or not device_map:
        raise ValueError(f"device_map={device_map!r} is not allowed; use {allowed}")
    for module, place in device_map.items():
        if not isinstance(module, str):
            raise ValueError(f"device_map={device_map!r}: module names must be strings, not {module!r}; use {allowed}")
        index = place if isinstance(place, int) and not isinstance(place, bool) else None
        if isinstance(place, str) and (place == "cuda" or place.startswith("cuda:") and place[5:].isdigit()):
            index = int(place[5:] or 0)
        elif place != "cpu" and index is None:
            raise ValueError(f"device_map={device_map!r}: {module!r} -> {place!r} is not allowed; use {allowed}")
        if index is not None and index >= torch.cuda.device_count():
            raise ValueError(f"device_map={device_map!r}: {module!r} -> {place!r} is not available: "
                             f"{torch.cuda.device_count()} GPU(s) are visible to torch here")
    return device_map


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(dtype: torch.dtype, device: torch.device, size: int = 1024, repeats: int = 3) -> float:
    """Best-of matrix-multiply rate (GFLOP/s) of (size x size) matrices in ``dtype`` on ``device``, measured now."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b  # first-call allocations and kernel selection are not part of the rate
    best = float("inf")
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        a @ b
        _synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / max(best, 1e-9) / 1e9


def bf16_speedup(device: torch.device) -> float:
    """bf16 matmul rate over fp32 matmul rate on ``device``, measured now (about a second on a CPU)."""
    return matmul_rate(torch.bfloat16, device) / matmul_rate(torch.float32, device)


def resolve_compute(
    device: str = "cpu", precision: str = "float32", *, speedup: Callable[[torch.device], float] = bf16_speedup
) -> Compute:
    """Resolve the ``device`` and ``precision`` parameters.

    ``"float32"`` measures nothing. ``"bfloat16"`` is used as asked; on a CPU bf16's matmul speed-up is measured and
    a warning printed where it is below 1 (no bf16 units: the run will be slow). ``"auto"`` measures and takes bf16
    only on a GPU or where the speed-up is at least ``MIN_BF16_SPEEDUP``, else float32, printing why.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        precision: ``"float32"``, ``"bfloat16"`` or ``"auto"``.
        speedup: measures bf16's matmul speed-up on a device (replaceable in tests).
    Raises:
        ValueError: a device or precision not in the allowed lists, or cuda where no GPU is visible.
    """
    check_choice("precision", precision, PRECISIONS)
    resolved = resolve_device(device)
    if precision == "float32":
        return Compute(resolved)
    if resolved.type == "cuda":
        how = "as asked" if precision == "bfloat16" else "chosen by auto"
        return Compute(resolved, "bfloat16", precision, f"bfloat16 {how}, on a GPU")
    ratio = speedup(resolved)
    if precision == "bfloat16":
        if ratio < 1:
            print(f"[compute] bfloat16 as asked, but its matmul ran only {ratio:.2f}x the float32 rate on this CPU "
                  "(no fast bf16 units): this run will be slower than in float32")
        return Compute(resolved, "bfloat16", precision,
                       f"bfloat16 as asked (its matmul ran {ratio:.2f}x the float32 rate on this CPU)")
    if ratio >= MIN_BF16_SPEEDUP:
        return Compute(resolved, "bfloat16", precision,
                       f"bfloat16 chosen by auto: its matmul ran {ratio:.1f}x the float32 rate on this CPU "
                       "(measured at start)")
    reason = (f"auto chose float32: bf16 matmul ran only {ratio:.2f}x the float32 rate on this CPU (measured at "
              f"start; at least {MIN_BF16_SPEEDUP}x is needed)")
    print(f"[compute] {reason}")
    return Compute(resolved, "float32", precision, reason)


def single_threaded_blas(function: Callable) -> Callable:
    """Run ``function`` with numpy's BLAS on one thread.

    For numpy work made of many small products and solves (the LP and braid tests, refits on (d, d) systems, their
    bootstraps): multi-threaded OpenBLAS makes each small call wait for its second thread, and a busy second core
    (a torch thread still spinning, another process) turns a 0.2 ms solve into 150 ms (measured on a 2-core
    machine: the encoding's headline checks 48 s with two BLAS threads, 7-11 s with one; ``benchmarks/bench_argmax.py``
    measures the argmax tests). The large products run in torch, whose threads this does not touch; results change
    at most in the last bits (the summation order of a threaded product).
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return wrapper


_SCRATCH: dict[str, torch.Tensor] = {}  # name -> the last block handed out under that name


def scratch_block(name: str, rows: int, columns: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A (rows, columns) work tensor, reused from the previous call under ``name`` when its shape, dtype and device
    match (its contents are then whatever the last user left).

    For the large blocks written again and again on a hot path (the training loss's (504, V) logits, the activation
    pass's (positions, V) log-softmax): allocating 100-200 MB afresh each time makes the operating system map and zero
    new pages, which took a third of the logits product's time on a 2-core CPU. One block is kept per name, so a
    process holds at most one of each; a caller must be done with its block before the next call under its name.
    """
    block = _SCRATCH.get(name)
    if block is None or block.shape != (rows, columns) or block.dtype != dtype or block.device != device:
        block = torch.empty((rows, columns), dtype=dtype, device=device)
        _SCRATCH[name] = block
    return block
