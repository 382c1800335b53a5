"""The small JSON result of one cell (results/table1/{cell}.json), read and written atomically.

A finished cell has ``status = "done"`` and at least: ``cell``, ``model`` (spec string), ``objective``
(``relaxed``, ``vimco``, ``nvil`` or an estimator's name), ``samples`` (m), ``dataset``, ``steps`` (optimizer
steps actually taken), ``k``, ``test_nll`` (nats, positive: -mean L_k on the test images), ``paper_nll`` (or
null), ``seconds`` (training plus evaluation wall time), ``commit`` and ``command``; plus the test images
used, the optional large-k evaluation (``large_k``: its k, subset, NLL and 95% interval), the device, the
validation curve and a thinned training curve. A cell that could not run has ``status = "not run"`` and a
``reason``, and no numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from concretelab.files import read_json_object
from concretelab.reproduce.cells import Cell
from concretelab.train.io import atomic_write_json

__all__ = ["REQUIRED_FIELDS", "load_result", "load_results", "not_run_result", "result_path", "write_result"]

REQUIRED_FIELDS: tuple[str, ...] = (
    "cell", "status", "model", "objective", "samples", "dataset", "steps", "k", "test_nll", "paper_nll",
    "seconds", "commit", "command",
)


def result_path(results_dir: str | Path, cell: Cell | str) -> Path:
    name = cell if isinstance(cell, str) else cell.name
    return Path(results_dir) / f"{name}.json"


def write_result(results_dir: str | Path, result: dict[str, Any]) -> Path:
    """Check the required fields and write ``{cell}.json`` atomically; returns its path."""
    missing = [field for field in REQUIRED_FIELDS if field not in result]
    if missing:
        raise ValueError(f"result of cell {result.get('cell')!r} lacks the fields {', '.join(missing)}")
    if result["status"] == "done" and not (isinstance(result["test_nll"], float) and result["test_nll"] > 0):
        raise ValueError(f"result of cell {result['cell']!r}: test_nll must be a positive float, "
                         f"got {result['test_nll']!r}")
    path = result_path(results_dir, result["cell"])
    atomic_write_json(path, result)
    return path


def load_result(results_dir: str | Path, cell: Cell | str) -> dict[str, Any] | None:
    """The stored result of ``cell``, or None when there is none (or it is unreadable)."""
    return read_json_object(result_path(results_dir, cell))


def load_results(results_dir: str | Path, cells: list[Cell]) -> dict[str, dict[str, Any]]:
    """Stored results by cell name (cells without one are absent)."""
    found = {}
    for cell in cells:
        value = load_result(results_dir, cell)
        if value is not None:
            found[cell.name] = value
    return found


def not_run_result(cell: Cell, reason: str, *, commit: str, command: str) -> dict[str, Any]:
    """The record of a cell the command tried but could not run (for example an unsupported estimator)."""
    return {
        "cell": cell.name, "status": "not run", "reason": reason, "model": cell.model,
        "objective": cell.objective, "samples": cell.samples, "dataset": cell.dataset, "steps": None, "k": None,
        "test_nll": None, "paper_nll": cell.paper_nll, "seconds": None, "commit": commit, "command": command,
    }
