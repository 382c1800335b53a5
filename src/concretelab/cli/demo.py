"""``concretelab demo``: placeholder registration, filled by the distributions tour."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the main job on the embedded defaults")
    parser.add_argument("--out", default="demo-output", help="folder for figures and the summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from concretelab.tour import run_tour

    run_tour(args.out)
    return 0
