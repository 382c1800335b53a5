"""``concretelab plot RUN``: learning curves, samples and reconstructions as PNG files in ``RUN/plots/``."""

from __future__ import annotations

import argparse

from concretelab.cli._args import non_negative_int, positive_int

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help="learning curves, samples and reconstructions of a run (PNG)",
                                   description=__doc__)
    parser.add_argument("run", metavar="RUN", help="run folder written by concretelab train")
    parser.add_argument("--checkpoint", choices=("best", "last"), default=None,
                        help="checkpoint for samples and reconstructions (default: best, else last)")
    parser.add_argument("--num-images", type=positive_int, default=64, help="images per figure (default: 64)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the samples (default: 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from concretelab.train.plots import plot_run

    for path in plot_run(args.run, checkpoint=args.checkpoint, num_images=args.num_images, seed=args.seed):
        print(path)
    return 0
