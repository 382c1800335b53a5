"""The ``concretelab`` command line: parses arguments and dispatches; each subcommand lives in its own
module of this package with a ``register(subparsers)`` function that adds its parser and sets ``func``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# One module per subcommand (concretelab.cli.<name>); each defines register(subparsers).
SUBCOMMANDS: tuple[str, ...] = ("demo", "lab", "data", "train", "evaluate", "plot", "reproduce")


class CLIError(Exception):
    """A user error: printed as 'concretelab: error: ...' with exit status 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="concretelab",
        description="Concrete relaxations of discrete random variables: distributions, training, gradient lab.",
    )
    from concretelab import __version__

    parser.add_argument("--version", action="version", version=f"concretelab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"concretelab.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    from concretelab.train.run_lock import RunFolderBusyError

    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, FileNotFoundError) as error:
        print(f"concretelab: error: {error}", file=sys.stderr)
        return 2
    except RunFolderBusyError as error:
        print(f"concretelab: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:  # Ctrl-C outside the trainer (evaluate, lab, reproduce's evaluation)
        print(f"concretelab: interrupted{f' ({error})' if str(error) else ''}; nothing half-written was kept",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
