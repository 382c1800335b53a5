"""Speed of the relaxed objectives (training steps/s) and of discrete_bound against its matmul floor.

Baseline stated in the objectives issue: ~200 steps/s for 200H~784V at batch 64 on 2 cores in plain PyTorch.
Run: .venv/bin/python benchmarks/bench_objectives.py [--threads 2] [--model 200H~784V] [--k 1000]
Numbers are the best of several timed blocks (the machine may be shared); nothing here is asserted.
"""

from __future__ import annotations

import argparse
import time

import torch

from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES, default_chunk_size, discrete_bound


def _best_rate(step, count: int, blocks: int) -> float:
    best = 0.0
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(count):
            step()
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="200H~784V")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--k", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.rand(args.batch, 784) < 0.3).float()
    model = build_model(args.model, train_mean=x.mean(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    for name, fn in OBJECTIVES.items():
        for samples in (1, 5):

            def step(fn=fn, samples=samples) -> None:
                loss = -fn(model, x, samples=samples, prior_temperature=0.5, posterior_temperature=2 / 3).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            for _ in range(20):
                step()
            rate = _best_rate(step, 100, 5)
            print(f"{args.model} batch {args.batch} {name} m={samples}: {rate:.0f} steps/s (fwd+bwd+Adam)")

    xe = (torch.rand(100, 784) < 0.3).float()
    discrete_bound(model, xe, 50)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        discrete_bound(model, xe, args.k)
        best = min(best, time.perf_counter() - start)
    # the floor: the generative network's matmuls alone on the same (chunk * batch) rows
    chunk = default_chunk_size(100, 784, args.k)
    with torch.no_grad():
        h = (torch.rand(chunk, 100, model.latent_units[0]) < 0.5).float()
        floor = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(-(-args.k // chunk)):
                model.decoder(h)
            floor = min(floor, time.perf_counter() - start)
    print(
        f"discrete_bound {args.model} batch 100 k={args.k}: {best:.2f} s ({100 * args.k / best:.0f} samples/s); "
        f"decoder alone {floor:.2f} s; ratio {best / floor:.2f}"
    )


if __name__ == "__main__":
    main()
