"""Measuring finished leaderboard cells again from their run folders (``scripts/leaderboard_variance.py``,
``scripts/leaderboard_train_elbo.py``).

A cell's result keeps the commit that trained and evaluated it. A number measured again later, by a newer commit's
code or one the cell did not yet report, replaces the old one in each seed's entry and in the summary over seeds, and
the result records which commit and command measured it under ``{key}_measured``. The result is written atomically,
so an interrupted measurement leaves the old result whole.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concretelab.files import atomic_write_json, read_json_object
from concretelab.reproduce.leaderboard import seed_summary
from concretelab.reproduce.runner import git_commit
from concretelab.train.replicas import replica_folder

__all__ = ["Remeasurement", "remeasure", "remeasure_main"]


@dataclass(frozen=True)
class Remeasurement:
    """What a script measures again.

    ``measure_seed(run, result)`` returns the new entries of one seed, from its run folder ``run`` and the cell's
    result; ``key`` is the headline number among them, summarised over seeds (``seed_summary``) and printed with
    ``number_format``; the other entries it returns are summarised by ``summaries`` (``key -> f(per_seed, key)``).
    """

    label: str
    key: str
    measure_seed: Callable[[Path, dict[str, Any]], dict[str, Any]]
    number_format: str = ".2f"
    summaries: dict[str, Callable[[list[dict[str, Any]], str], Any]] | None = None


def remeasure(cell: str, runs: Path, results: Path, what: Remeasurement, *, command: str,
              commit: str) -> dict[str, Any]:
    """The result of the finished cell ``cell`` (``results/{cell}.json``) with ``what`` measured again on every seed
    (``runs/{cell}/seed-{s}``) and over the seeds, written back atomically; returns the result.
    Raises SystemExit naming the file when the cell is not done."""
    path = results / f"{cell}.json"
    result = read_json_object(path)
    if not result or result.get("status") != "done":
        raise SystemExit(f"{path}: the cell is not done (status {result.get('status') if result else None!r})")
    for seed in result["replicas"]:
        seed.update(what.measure_seed(replica_folder(runs / cell, seed["seed"]), result))
    result[what.key] = seed_summary(result["replicas"], what.key)
    for key, summarise in (what.summaries or {}).items():
        result[key] = summarise(result["replicas"], key)
    result[f"{what.key}_measured"] = {"commit": commit, "command": command}
    atomic_write_json(path, result)
    return result


def remeasure_main(argv: Sequence[str] | None, what: Remeasurement, *, script: str, description: str) -> int:
    """The command line of a script that measures ``what`` again: ``CELL... [--runs DIR] [--results DIR]``."""
    parser = argparse.ArgumentParser(prog=f"python scripts/{script}", description=description)
    parser.add_argument("cells", nargs="+", help="leaderboard run names, e.g. mnist-linear-nvil-K2")
    parser.add_argument("--runs", type=Path, default=Path("../runs/leaderboard"), help="the cells' run folders")
    parser.add_argument("--results", type=Path, default=Path("results/leaderboard"), help="the cells' results")
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    command, commit = f"python scripts/{script} " + shlex.join(arguments), git_commit()
    for cell in args.cells:
        result = remeasure(cell, args.runs, args.results, what, command=command, commit=commit)
        seeds = ", ".join(format(s[what.key], what.number_format) for s in result["replicas"])
        print(f"{cell}: {what.label} {format(result[what.key]['mean'], what.number_format)} (seeds: {seeds})")
    return 0
