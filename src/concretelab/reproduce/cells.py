"""The cells of Table 1 of Maddison, Mnih & Teh (2017) on binarized MNIST, with the published test NLLs.

A cell is one model trained with one objective at one number of training samples m; it is named
``{model}-m{m}-{objective}`` (for example ``200H~784V-m1-relaxed``) and its training settings live in
``configs/table1/{name}.toml``. The paper's objectives are the relaxed (Concrete) bound and VIMCO on the
discrete bound; VIMCO's leave-one-out baseline needs m >= 2, so the m = 1 column uses NVIL (labelled
``nvil``). Cells marked ``beyond_paper`` are rows this project adds (a lab estimator on the linear models,
where the paper's Concrete numbers trail VIMCO); they have no published value.

Published values: test -L_50000 in nats (Maddison et al. 2017, Table 1; ../shared/reference/).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "BEYOND_PAPER",
    "CELLS",
    "DENSITY_MODELS",
    "SAMPLES",
    "STRUCTURED_MODEL",
    "TABLE1",
    "Cell",
    "cell_by_name",
    "select_cells",
]

DENSITY_MODELS: tuple[str, ...] = ("200H-784V", "200H-200H-784V", "200H~784V", "200H~200H~784V")
STRUCTURED_MODEL = "392V-240H-240H-392V"
SAMPLES: tuple[int, ...] = (1, 5, 50)

# Maddison et al. (2017), Table 1, binarized MNIST, in its layout: per model, the test NLL in nats at m = 1, 5
# and 50 (SAMPLES), each as (Concrete, VIMCO; NVIL at m = 1).
_PAPER_TABLE: dict[str, tuple[tuple[float, float], ...]] = {
    "200H-784V": ((107.3, 104.4), (104.9, 101.9), (104.3, 98.8)),
    "200H-200H-784V": ((102.1, 92.9), (99.9, 91.7), (99.5, 90.7)),
    "200H~784V": ((92.1, 93.8), (89.5, 91.4), (88.5, 89.3)),
    "200H~200H~784V": ((87.9, 88.4), (86.3, 86.4), (85.7, 85.5)),
    STRUCTURED_MODEL: ((58.5, 61.4), (54.3, 54.5), (53.4, 51.8)),
}
# (model, m) -> (Concrete, VIMCO/NVIL)
_PAPER: dict[tuple[str, int], tuple[float, float]] = {
    (model, m): pair for model, row in _PAPER_TABLE.items() for m, pair in zip(SAMPLES, row, strict=True)
}


@dataclass(frozen=True)
class Cell:
    """One row of the reproduction: ``model`` (spec string), ``objective`` (``relaxed``, ``vimco``, ``nvil`` or
    a lab estimator's name), ``samples`` (m), the published NLL (None beyond the paper), the table it belongs
    to (``density`` or ``structured``) and whether it is a row beyond the paper."""

    model: str
    objective: str
    samples: int
    paper_nll: float | None
    table: str
    beyond_paper: bool = False
    dataset: str = "binarized-mnist"

    @property
    def name(self) -> str:
        return f"{self.model}-m{self.samples}-{self.objective}"

    @property
    def linear(self) -> bool:
        return "~" not in self.model

    @property
    def discrete_estimator(self) -> str | None:
        """The estimator trained on the discrete objective, or None for the relaxed objective."""
        return None if self.objective == "relaxed" else self.objective


def _table1() -> tuple[Cell, ...]:
    cells = []
    for model in (*DENSITY_MODELS, STRUCTURED_MODEL):
        table = "structured" if model == STRUCTURED_MODEL else "density"
        for m in SAMPLES:
            concrete, vimco = _PAPER[(model, m)]
            cells.append(Cell(model, "relaxed", m, concrete, table))
            cells.append(Cell(model, "nvil" if m == 1 else "vimco", m, vimco, table))
    return tuple(cells)


#: The 30 cells of Table 1 (binarized MNIST density estimation and structured prediction).
TABLE1: tuple[Cell, ...] = _table1()

#: Rows beyond the paper: DisARM (Dong, Mnih & Tucker 2020) at m = 1 on the linear SBNs.
BEYOND_PAPER: tuple[Cell, ...] = (
    Cell("200H-784V", "disarm", 1, None, "density", beyond_paper=True),
    Cell("200H-200H-784V", "disarm", 1, None, "density", beyond_paper=True),
)

CELLS: tuple[Cell, ...] = TABLE1 + BEYOND_PAPER


def cell_by_name(name: str) -> Cell:
    """The cell called ``name``; ValueError listing the names otherwise."""
    for cell in CELLS:
        if cell.name == name:
            return cell
    raise ValueError(f"unknown cell {name!r}; expected one of {', '.join(c.name for c in CELLS)}")


def select_cells(patterns: Sequence[str] | None, cells: Iterable[Cell] = CELLS) -> list[Cell]:
    """Cells whose name matches any of ``patterns`` (shell globs or exact names, comma-separated lists
    allowed), in table order; all Table 1 cells when ``patterns`` is empty or None. A pattern that matches
    nothing raises ValueError."""
    cells = list(cells)
    if not patterns:
        return [cell for cell in cells if not cell.beyond_paper]
    wanted = [p.strip() for pattern in patterns for p in pattern.split(",")]
    if any(not p for p in wanted):
        raise ValueError(f"--cells must be cell names or globs, comma-separated without empty items, got {patterns!r}")
    chosen: set[str] = set()
    for pattern in wanted:
        if pattern == "all":
            hits = [cell.name for cell in cells]
        else:
            hits = [cell.name for cell in cells if cell.name == pattern or fnmatch.fnmatchcase(cell.name, pattern)]
        if not hits:
            raise ValueError(f"cells: pattern {pattern!r} matches no cell; names look like '200H~784V-m1-relaxed'")
        chosen.update(hits)
    return [cell for cell in cells if cell.name in chosen]
