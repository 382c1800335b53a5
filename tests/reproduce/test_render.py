"""The generated RESULTS.md: one row per cell, "not run (reason)" rows, and the beyond-paper comparison."""

from __future__ import annotations

from concretelab.reproduce.cells import CELLS, cell_by_name
from concretelab.reproduce.render import DEFAULT_NOT_RUN, render_markdown


def _done(name: str, nll: float, steps: int = 100) -> dict:
    cell = cell_by_name(name)
    return {
        "cell": name, "status": "done", "model": cell.model, "objective": cell.objective, "samples": cell.samples,
        "dataset": "binarized-mnist", "steps": steps, "k": 10, "test_images": 20, "test_subset_seed": 0,
        "test_nll": nll, "test_nll_ci95": [nll - 1.0, nll + 1.0], "paper_nll": cell.paper_nll, "seconds": 5.0,
        "train_seconds": 4.0, "eval_seconds": 1.0, "commit": "0123456789abcdef", "command": f"cmd {name}",
    }


def test_rows_reasons_commands_and_comparison() -> None:
    results = {
        "200H-784V-m1-relaxed": _done("200H-784V-m1-relaxed", 120.0),
        "200H-784V-m1-disarm": _done("200H-784V-m1-disarm", 118.5),
        "200H-200H-784V-m1-disarm": _done("200H-200H-784V-m1-disarm", 130.0, steps=50),
        "200H-200H-784V-m1-relaxed": _done("200H-200H-784V-m1-relaxed", 125.0),
        "392V-240H-240H-392V-m1-nvil": {"cell": "392V-240H-240H-392V-m1-nvil", "status": "not run",
                                        "reason": "ValueError: structured | not an SBN"},
    }
    text = render_markdown(results, {"200H-784V-m1-relaxed": "figures/x.png"})
    table = text.split("## Commands")[0]  # the per-cell tables (the run details below repeat names)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert sorted(row.split("`")[1] for row in rows) == sorted(cell.name for cell in CELLS)
    row = next(r for r in rows if r.startswith("| `200H-784V-m1-relaxed`"))
    assert "**120.00** ± 1.00 (+12.70)" in row and "100 (0.00% of 10^7)" in row and "[curve](figures/x.png)" in row
    assert "`0123456789`" in row
    nvil = next(r for r in rows if r.startswith("| `392V-240H-240H-392V-m1-nvil`"))
    assert "not run (ValueError: structured \\| not an SBN)" in nvil
    untouched = next(r for r in rows if r.startswith("| `200H~784V-m5-vimco`"))
    assert f"not run ({DEFAULT_NOT_RUN})" in untouched
    assert "cmd 200H-784V-m1-disarm" in text
    assert "118.50 vs 120.00 nats (difference -1.50" in text
    assert "`200H-200H-784V-m1-disarm` and `200H-200H-784V-m1-relaxed` differ in budget" in text
