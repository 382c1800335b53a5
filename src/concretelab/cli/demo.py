"""``concretelab demo``: the main job on embedded defaults, with no network.

1. A tour of the distributions (``concretelab.tour``): prints the properties it checks and writes the
   simplex figures.
2. Trains the paper's one-layer nonlinear sigmoid belief net (200H~784V) with the relaxed objective on the
   embedded subset of binarized MNIST for a few minutes, evaluates L_k, and writes plots and a summary
   (``concretelab.train.demo``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from concretelab.cli._args import positive_int

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the main job on the embedded defaults (distribution tour + a short SBN training)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="demo-output", help="folder for figures and the summary")
    parser.add_argument("--steps", type=positive_int, default=30_000, help="training steps of the SBN (default 30000)")
    parser.add_argument("--eval-k", type=positive_int, default=500, help="k of the final L_k evaluation (default 500)")
    parser.add_argument("--skip-training", action="store_true", help="only the distribution tour")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from concretelab.tour import run_tour

    out = Path(args.out)
    log.info("== Part 1: the Concrete distributions, checked (figures in %s) ==", out / "tour")
    run_tour(out / "tour")
    if args.skip_training:
        return 0
    from concretelab.train.demo import run_training_demo

    log.info("== Part 2: training a 200H~784V sigmoid belief net on the embedded binarized MNIST ==")
    summary = run_training_demo(
        out / "training", steps=args.steps, eval_k=args.eval_k, progress=not args.no_progress
    )
    log.info("Summary: %s", out / "training" / "summary.md")
    for key in ("steps", "train_seconds", "best_valid_nll", "test_nll", "valid_nll"):
        if key in summary:
            log.info("  %s: %s", key, summary[key])
    log.info("Everything is in %s", out.resolve())
    return 0
