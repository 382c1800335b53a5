"""The whole trainer with ``--seeds`` against runs of one seed: what a user's sweep gains from replicas.

``benchmarks/replicas.py`` times the training step alone. A run of ``concretelab train`` also draws each replica's
batch, updates the metrics, advances the schedules and checks for checkpoints and signals at every step, and that
per-step work is shared by the replicas of one process as well. This script times the training loop of
``concretelab train`` itself (relaxed bound, m = 1, batch 64, the defaults otherwise) on one seed and on R seeds as
replicas (``--seeds 0-(R-1)``), eager and with ``--compile``.

Per-step cost is the difference of two runs' CPU time (this process, one thread) over the difference of their
budgets (``--steps`` and ``--steps`` + ``--extra``), so the setup, the data loading and the validation at the end of
a run cancel; the runs validate on 10 images. An untimed run of each variant first compiles its graph (a model of
the same shape reuses it: Dynamo treats the parameters as inputs), so no timed run compiles. Variants are timed in
interleaved blocks (variant after variant, block after block) and the median block is kept. R runs of the trainer
one after the other on one core give the single seed's replica-steps/s at any R, the baseline of the ratio. Run:
``OMP_NUM_THREADS=1 python benchmarks/replicas_trainer.py [--models 200H-784V,200H~784V] [--replicas 1,8]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from concretelab.data import load_dataset
from concretelab.train import TrainConfig, train


def seconds_of_run(data: str, model: str, replicas: int, steps: int, compiled: bool, out: Path) -> float:
    """CPU seconds of one ``concretelab train`` run (a fresh folder) of ``steps`` steps."""
    shutil.rmtree(out, ignore_errors=True)
    config = TrainConfig(model=model, data=data, objective="relaxed", samples=1, steps=steps,
                         seeds=f"0-{replicas - 1}" if replicas > 1 else None, eval_every=10**9, eval_images=10,
                         checkpoint_every=10**9, log_every=50, threads=1, progress=False, compile=compiled,
                         out=str(out))
    started = time.process_time()
    train(config)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/binarized_mnist", help="binarized MNIST folder or 'embedded'")
    parser.add_argument("--models", default="200H-784V,200H~784V")
    parser.add_argument("--replicas", default="1,8", help="replica counts R (default: 1,8; 1 is the baseline)")
    parser.add_argument("--steps", type=int, default=100, help="the shorter run's steps (default 100)")
    parser.add_argument("--extra", type=int, default=600, help="the longer run's further steps (default 600)")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per variant (default 3)")
    parser.add_argument("--no-compile", action="store_true", help="eager runs only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    replica_counts = [int(r) for r in args.replicas.split(",")]
    if 1 not in replica_counts:
        replica_counts.insert(0, 1)
    load_dataset(args.data)  # cached for every run
    variants = [(model, r, compiled) for model in args.models.split(",") for r in replica_counts
                for compiled in ((False,) if args.no_compile else (False, True))]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, CPU time per step of the training loop, "
          f"runs of {args.steps} and {args.steps + args.extra} steps, median of {args.blocks} interleaved blocks",
          flush=True)
    per_step: dict[tuple[str, int, bool], list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.blocks):
            for model, r, compiled in variants:
                out = Path(scratch) / "run"
                torch._dynamo.reset()  # each variant compiles afresh (and the recompile limit never applies)
                seconds_of_run(args.data, model, r, args.steps, compiled, out)  # warm-up: compiles, fills caches
                short = seconds_of_run(args.data, model, r, args.steps, compiled, out)
                long = seconds_of_run(args.data, model, r, args.steps + args.extra, compiled, out)
                per_step[(model, r, compiled)].append((long - short) / args.extra)
    ms = {v: 1e3 * statistics.median(times) for v, times in per_step.items()}
    print("\n| model | R | ms per step | ms per replica-step | replica-steps/s | over R runs of one seed (eager) | "
          "compiled: ms per replica-step | compiled: over R runs of one seed (eager) |")
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        baseline = ms[(model, 1, False)]
        for r in replica_counts:
            eager = ms[(model, r, False)]
            row = (f"| {model} | {r} | {eager:.2f} | {eager / r:.3f} | {1e3 * r / eager:.0f} | "
                   f"{baseline * r / eager:.2f}x |")
            if not args.no_compile:
                compiled = ms[(model, r, True)]
                row += f" {compiled / r:.3f} | {baseline * r / compiled:.2f}x |"
            else:
                row += " – | – |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
