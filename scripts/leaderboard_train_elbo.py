"""Measure the training ELBO of finished leaderboard cells, with this commit's ``training_elbo``, and record it in
their results.

The cells that ran before 2026-12-07 report the training objective (what each estimator optimises: the relaxed bound
for Concrete, L_K for VIMCO) but not the ELBO of the discrete model that the papers report for every estimator. This
measures it from each seed's run folder (the best checkpoint, 10,000 fixed training images, 10 proposal samples
each), stores it per seed and over seeds, and records the commit and command under ``train_elbo_measured``.

    python scripts/leaderboard_train_elbo.py mnist-linear-concrete-K2 --runs ../runs/leaderboard \
        --results results/leaderboard
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from concretelab.files import atomic_write_json, read_json_object
from concretelab.reproduce.leaderboard import seed_summary, training_elbo
from concretelab.reproduce.runner import git_commit
from concretelab.train.replicas import replica_folder


def measure(cell: str, runs: Path, results: Path, command: str, commit: str) -> dict:
    """The cell's result with every seed's training ELBO (written atomically); the result."""
    path = results / f"{cell}.json"
    result = read_json_object(path)
    if not result or result.get("status") != "done":
        raise SystemExit(f"{path}: the cell is not done")
    for seed in result["replicas"]:
        seed["train_elbo"] = training_elbo(replica_folder(runs / cell, seed["seed"]))["mean"]
    result["train_elbo"] = seed_summary(result["replicas"], "train_elbo")
    result["train_elbo_measured"] = {"commit": commit, "command": command}
    atomic_write_json(path, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cells", nargs="+", help="leaderboard run names, e.g. mnist-linear-nvil-K2")
    parser.add_argument("--runs", type=Path, default=Path("../runs/leaderboard"), help="the cells' run folders")
    parser.add_argument("--results", type=Path, default=Path("results/leaderboard"), help="the cells' results")
    args = parser.parse_args(argv)
    command = "python scripts/leaderboard_train_elbo.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    commit = git_commit()
    for cell in args.cells:
        result = measure(cell, args.runs, args.results, command, commit)
        seeds = ", ".join(f"{s['train_elbo']:.2f}" for s in result["replicas"])
        print(f"{cell}: training ELBO {result['train_elbo']['mean']:.2f} (seeds: {seeds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
