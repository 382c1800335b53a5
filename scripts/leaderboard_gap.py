"""Seed-by-seed gaps between leaderboard cells: how far LEADER is ahead of each OTHER.

Every gap "seed by seed" quoted in docs/estimators.md and in the closing notes is this: for each number (test −L_100,
−L_5000 on its 1,000 images, the training ELBO) the mean over the seeds the two cells share of the difference, signed
so that a positive gap means LEADER is ahead, with its Student's t 95% half-width
(``concretelab.reproduce.leaderboard_render.leader_gap``, the function behind the leaderboard's own tables). Cells of
one seed start from the same weights, so the difference cancels what the seeds share.

    python scripts/leaderboard_gap.py mnist-linear-reinmax-K2-steps1000000 mnist-linear-disarm-K2-steps1000000
    python scripts/leaderboard_gap.py fashion-linear-gumbel_rao-K2 fashion-linear-straight_through-K2 \
        fashion-linear-disarm-K2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from concretelab.reproduce.leaderboard_render import leader_gap

NUMBERS = (("test_nll_100", "test −L_100", False), ("test_nll_5000", "−L_5000", False),
           ("train_elbo", "training ELBO", True))


def gap_line(leader: dict, other: dict) -> str:
    """One line: each number's gap, '+m ± h' (no interval with one common seed), over n common seeds."""
    parts, common = [], 0
    for key, label, larger_better in NUMBERS:
        mean, half, common = leader_gap(leader, other, key, larger_better)
        parts.append(f"{label} {mean:+.2f}" + (f" ± {half:.2f}" if half is not None else ""))
    return f"{leader['run_name']} ahead of {other['run_name']} ({common} seeds): " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("leader", help="the cell measured against the others (its result's file name, no .json)")
    parser.add_argument("others", nargs="+", help="the cells it is compared with")
    parser.add_argument("--results", type=Path, default=Path("results/leaderboard"),
                        help="the folder of the cells' results (default: results/leaderboard)")
    args = parser.parse_args(argv)

    def load(name: str) -> dict:
        path = args.results / f"{name}.json"
        if not path.is_file():
            parser.error(f"no result {path}: give a cell's result name, e.g. mnist-linear-disarm-K2")
        return json.loads(path.read_text(encoding="utf-8"))

    leader = load(args.leader)
    for name in args.others:
        print(gap_line(leader, load(name)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
