"""Regenerate docs/RESULTS.md and docs/figures/table1/*.png from results/table1/*.json.

    .venv/bin/python scripts/render_results.py [--results results/table1] [--markdown docs/RESULTS.md]

The same page is written by `concretelab reproduce table1` after every run; never edit it by hand.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from concretelab.reproduce.render import render_results

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "table1")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "RESULTS.md")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures" / "table1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    render_results(args.results, args.markdown, args.figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
