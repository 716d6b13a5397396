"""Speed of chapter 4's training step, per model size: the streamed output-layer loss against the model's own loss.

    .venv/bin/python benchmarks/bench_dynamics.py [--sizes d64 d128] [--batch-size 4] [--steps 10]

Prints wall-clock and process CPU milliseconds per optimizer step (forward, backward, clipping, AdamW) on random
token windows, and the projected training time of the chapter's default run. Timings depend on what else the
machine is running: compare the two columns of one run, not runs made at different times.
"""
from __future__ import annotations

import argparse
import time

import torch

from utils.dynamics.training import MODEL_SIZES, TrainingConfig, build_model, linear_cross_entropy


def time_steps(size: str, batch_size: int, steps: int, streamed: bool) -> tuple[float, float]:
    """(wall ms, CPU ms) per training step, after two warm-up steps."""
    config = TrainingConfig(size=size, batch_size=batch_size)
    model = build_model(config, 50257, 50256)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), fused=True)
    batch = torch.randint(0, 50257, (batch_size, config.shape.n_ctx), generator=torch.Generator().manual_seed(0))
    for step in range(steps + 2):
        if step == 2:
            wall, cpu = time.perf_counter(), time.process_time()
        if streamed:
            hidden = model.gpt_neox(input_ids=batch, use_cache=False).last_hidden_state
            loss = linear_cross_entropy(hidden[:, :-1].reshape(-1, hidden.shape[-1]),
                                        model.get_output_embeddings().weight, batch[:, 1:].reshape(-1))
        else:
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - wall) / steps * 1000, (time.process_time() - cpu) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["d64", "d128"], choices=sorted(MODEL_SIZES))
    parser.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    default_steps = TrainingConfig.steps
    print(f"torch threads: {torch.get_num_threads()}; batch {args.batch_size} windows")
    print(f"{'size':>6} {'loss':>9} {'wall ms/step':>13} {'cpu ms/step':>12} {'default run (min)':>18}")
    for size in args.sizes:
        for streamed in (True, False):
            wall, cpu = time_steps(size, args.batch_size, args.steps, streamed)
            label = "streamed" if streamed else "model"
            print(f"{size:>6} {label:>9} {wall:>13.0f} {cpu:>12.0f} {wall * default_steps / 60000:>18.1f}")


if __name__ == "__main__":
    main()
