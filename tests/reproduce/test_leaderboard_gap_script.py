"""scripts/leaderboard_gap.py, the command behind the gaps "seed by seed" of docs/estimators.md: on the committed
results it prints the gaps that page quotes (ReinMax against DisARM at 10^6 steps on MNIST's linear model)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("leaderboard_gap", REPO / "scripts" / "leaderboard_gap.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def test_it_prints_the_gaps_the_page_quotes(capsys) -> None:
    results = str(REPO / "results" / "leaderboard")
    assert script.main(["mnist-linear-reinmax-K2-steps1000000", "mnist-linear-disarm-K2-steps1000000",
                        "--results", results]) == 0
    line = capsys.readouterr().out.strip()
    assert line == ("mnist-linear-reinmax-K2-steps1000000 ahead of mnist-linear-disarm-K2-steps1000000 (3 seeds): "
                    "test −L_100 -0.04 ± 1.00; −L_5000 -0.43 ± 1.24; training ELBO +1.46 ± 1.41")
    page = (REPO / "docs" / "estimators.md").read_text(encoding="utf-8")
    assert "0.04 ± 1.00" in page and "0.43 ± 1.24" in page and "1.46 ± 1.41" in page


def test_an_unknown_cell_is_named(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        script.main(["nothing-K2", "mnist-linear-disarm-K2", "--results", str(tmp_path)])
    assert f"no result {tmp_path / 'nothing-K2.json'}" in capsys.readouterr().err
