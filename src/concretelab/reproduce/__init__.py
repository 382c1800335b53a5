"""Reproduction of Table 1 of Maddison, Mnih & Teh (2017): the cells and their configs, a resumable runner
that trains and evaluates them, JSON results, and the generated docs/RESULTS.md.

    concretelab reproduce table1 --cells '200H-784V-m1-*' --steps 100000 --k 5000

See ``concretelab.reproduce.runner`` for resumption and ``concretelab.reproduce.render`` for the page.
"""

from concretelab.reproduce.cells import BEYOND_PAPER, CELLS, TABLE1, Cell, cell_by_name, select_cells
from concretelab.reproduce.render import render_results
from concretelab.reproduce.results import REQUIRED_FIELDS, load_result, load_results
from concretelab.reproduce.runner import CellState, ReproduceOptions, default_out, run_cells

__all__ = [
    "BEYOND_PAPER",
    "CELLS",
    "REQUIRED_FIELDS",
    "TABLE1",
    "Cell",
    "CellState",
    "ReproduceOptions",
    "cell_by_name",
    "default_out",
    "load_result",
    "load_results",
    "render_results",
    "run_cells",
    "select_cells",
]
