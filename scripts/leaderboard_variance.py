"""Measure the encoder gradient variance of finished leaderboard cells again, with this commit's
``encoder_gradient_variance``, and record it in their results: at the best checkpoint and at the fixed checkpoints
the run folders hold (``variances_at_fixed_steps``).

A cell's result keeps the commit that trained and evaluated it; the variances measured again are stored in their
place, each seed's too, with the commit and command that measured them under ``encoder_gradient_variance_measured``.
Needed for the cells that ran before 2026-12-07: the NVIL cells measured the variance of NVIL's rescaled step (its
signal divided by the running standard deviation) instead of its estimate, and no cell measured it at fixed
checkpoints (the cells that ran before ``--snapshot-steps`` have the last one only).

    python scripts/leaderboard_variance.py mnist-linear-nvil-K2 --runs ../runs/leaderboard --results results/leaderboard
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from concretelab.files import atomic_write_json, read_json_object
from concretelab.reproduce.leaderboard import (
    encoder_gradient_variance,
    seed_summary,
    summary_at_steps,
    variances_at_fixed_steps,
)
from concretelab.reproduce.runner import git_commit
from concretelab.train.replicas import replica_folder


def remeasure(cell: str, runs: Path, results: Path, command: str, commit: str) -> dict:
    """The cell's result with every seed's variance measured again (written atomically); the result."""
    path = results / f"{cell}.json"
    result = read_json_object(path)
    if result.get("status") != "done":
        raise SystemExit(f"{path}: the cell is not done (status {result.get('status')!r})")
    for seed in result["replicas"]:
        run = replica_folder(runs / cell, seed["seed"])
        seed["encoder_gradient_variance"] = encoder_gradient_variance(run)
        seed["encoder_gradient_variance_at"] = variances_at_fixed_steps(run, result["request"]["steps"])
    result["encoder_gradient_variance"] = seed_summary(result["replicas"], "encoder_gradient_variance")
    result["encoder_gradient_variance_at"] = summary_at_steps(result["replicas"], "encoder_gradient_variance_at")
    result["encoder_gradient_variance_measured"] = {"commit": commit, "command": command}
    atomic_write_json(path, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cells", nargs="+", help="leaderboard cell names, e.g. mnist-linear-nvil-K2")
    parser.add_argument("--runs", type=Path, default=Path("../runs/leaderboard"), help="the cells' run folders")
    parser.add_argument("--results", type=Path, default=Path("results/leaderboard"), help="the cells' results")
    args = parser.parse_args(argv)
    command = "python scripts/leaderboard_variance.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    commit = git_commit()
    for cell in args.cells:
        result = remeasure(cell, args.runs, args.results, command, commit)
        seeds = ", ".join(f"{s['encoder_gradient_variance']:.4g}" for s in result["replicas"])
        print(f"{cell}: encoder gradient variance {result['encoder_gradient_variance']['mean']:.4g} (seeds: {seeds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
