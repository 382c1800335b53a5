"""CPU time per replica-step of every leaderboard cell's training loop: the leaderboard at equal time.

The leaderboard's own steps/s come from runs that shared this machine's two cores with up to seven other jobs, under
a load that changed from cell to cell, so its wall-time curves compare the load as much as the estimators. This
script times each cell's training loop (``concretelab.reproduce.leaderboard.cell_config``: the cell's model,
estimator, samples, batch 50, its seeds as replicas where the estimator allows, one seed otherwise) on one thread,
in CPU time of this process, interleaved: every selected cell once per block, block after block, the median block
kept, each cell's timed runs after an untimed short one. The cost of a step is the difference of two runs' CPU time
over the difference of their budgets (``--steps`` and ``--steps`` + ``--extra``; for a cell that trains one seed per
process, ``--extra`` times its seeds, so that every cell times as many replica-steps), so the set-up, the data
loading and the last validation cancel; periodic validation and checkpoints are off, so it is the training step
alone (with its batch draw, metrics and schedules). A cell whose seeds are replicas of one process divides by its
seeds: the result is CPU milliseconds per replica-step, what one seed's step costs. Beside each, its ratio to the
Concrete cell of the same data set, model and K.

With ``--write``, the numbers go to ``results/leaderboard/measured/step-cost.json`` (atomically, merged with cells
measured before), and ``docs/leaderboard.md``'s figures then plot the validation bound against CPU minutes per seed
at the measured cost (steps × ms per replica-step), the same for every cell whatever else ran beside it. Pause other
jobs while it runs: CPU time is charged to this process only, but cores shared with other processes still slow its
caches. Run: ``OMP_NUM_THREADS=1 python benchmarks/leaderboard_cost.py --cells 'mnist-*' --write``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from concretelab.data import load_dataset
from concretelab.files import read_json_object
from concretelab.reproduce.leaderboard import (
    DATASETS,
    LeaderboardCell,
    LeaderboardOptions,
    cell_config,
    leaderboard_cells,
)
from concretelab.reproduce.leaderboard_render import STEP_COST_FILE
from concretelab.reproduce.runner import git_commit, uncommitted_changes
from concretelab.train import train
from concretelab.train.io import atomic_write_json


def seconds_of_run(cell: LeaderboardCell, options: LeaderboardOptions, steps: int, out: Path) -> float:
    """CPU seconds of one run of ``steps`` steps of the cell's training loop (first seed only where the seeds train
    one after the other), in a fresh folder, with no validation or checkpoint before its end."""
    config = dataclasses.replace(cell_config(cell, options), steps=steps, eval_every=10**9, eval_images=10,
                                 checkpoint_every=10**9, snapshot_steps=None, log_every=50, out=str(out))
    if not cell.replicable:
        config = dataclasses.replace(config, seeds=None, seed=config.seed_list[0])
    shutil.rmtree(out, ignore_errors=True)
    started = time.process_time()
    train(config)
    return time.process_time() - started


def replicas_of(cell: LeaderboardCell, options: LeaderboardOptions) -> int:
    """How many seeds one step of the cell's timed run advances."""
    return len(cell_config(cell, options).seed_list) if cell.replicable else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=None, metavar="PATTERN",
                        help="glob patterns of cell names (default: every cell)")
    parser.add_argument("--mnist", default=DATASETS["mnist"][1], help="binarized MNIST folder")
    parser.add_argument("--fashion", default=DATASETS["fashion"][1], help="Fashion-MNIST IDX folder")
    parser.add_argument("--steps", type=int, default=20, help="the shorter run's steps (default 20)")
    parser.add_argument("--extra", type=int, default=200, help="the longer run's further steps (default 200)")
    parser.add_argument("--blocks", type=int, default=3, help="interleaved blocks, median kept (default 3)")
    parser.add_argument("--write", action="store_true",
                        help=f"merge the numbers into results/leaderboard/{STEP_COST_FILE}")
    parser.add_argument("--results", type=Path, default=Path("results/leaderboard"),
                        help="the leaderboard's results folder (default results/leaderboard)")
    args = parser.parse_args()
    if args.steps < 1 or args.extra < 1 or args.blocks < 1:
        parser.error("--steps, --extra and --blocks must be positive")
    torch.set_num_threads(1)
    cells = leaderboard_cells(args.cells)
    with tempfile.TemporaryDirectory() as scratch:
        options = LeaderboardOptions(out=Path(scratch), results=args.results,
                                     data={"mnist": args.mnist, "fashion": args.fashion})
        for dataset in sorted({c.dataset for c in cells}):
            load_dataset(options.data[dataset])  # cached for every run
        print(f"torch {torch.__version__}, 1 thread, CPU time per replica-step of each cell's training loop, runs "
              f"of {args.steps} and {args.steps + args.extra} steps (seeds x {args.extra} further steps for a cell of "
              f"one seed per process), median of {args.blocks} interleaved blocks",
              flush=True)
        per_step: dict[str, list[float]] = {c.name: [] for c in cells}
        out = Path(scratch) / "run"
        for block in range(args.blocks):
            for cell in cells:
                # a cell of one seed per process runs seeds times the steps: every cell times as many replica-steps
                extra = args.extra * len(cell_config(cell, options).seed_list) // replicas_of(cell, options)
                seconds_of_run(cell, options, args.steps, out)  # untimed: first-call allocations and caches
                short = seconds_of_run(cell, options, args.steps, out)
                long = seconds_of_run(cell, options, args.steps + extra, out)
                per_step[cell.name].append((long - short) / extra / replicas_of(cell, options))
            print(f"block {block + 1} of {args.blocks} done", flush=True)
    ms = {name: 1e3 * statistics.median(times) for name, times in per_step.items()}
    print("\n| cell | seeds per process | CPU ms per replica-step | spread of blocks | × Concrete (same K) |")
    print("|---|---|---|---|---|")
    for cell in cells:
        concrete = ms.get(dataclasses.replace(cell, estimator="concrete").name)
        times = per_step[cell.name]
        spread = (max(times) - min(times)) / statistics.median(times)
        ratio = f"{ms[cell.name] / concrete:.2f}" if concrete else "–"
        print(f"| {cell.name} | {replicas_of(cell, options)} | {ms[cell.name]:.2f} | {spread:.0%} | {ratio} |")
    if args.write:
        path = args.results / STEP_COST_FILE
        stored = read_json_object(path) or {}
        measured = dict(stored.get("cells", {}))
        command = "python " + shlex.join(["benchmarks/leaderboard_cost.py", *sys.argv[1:]])
        # what the timings depend on: the package and this script (results and docs written since do not count)
        commit, clean = git_commit(), not uncommitted_changes(paths=("src", "configs", "benchmarks"))
        for cell in cells:
            measured[cell.name] = {
                "ms_per_replica_step": ms[cell.name],
                "blocks_ms": [1e3 * t for t in per_step[cell.name]],
                "seeds_per_process": replicas_of(cell, options),
                "commit": commit, "clean": clean, "command": command,
                "measured_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        atomic_write_json(path, {"what": "CPU milliseconds per replica-step of each cell's training loop, one "
                                         "thread (benchmarks/leaderboard_cost.py)",
                                 "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
                                            f"torch {torch.__version__}",
                                 "cells": dict(sorted(measured.items()))})
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
