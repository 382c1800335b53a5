"""lab/report.py: the sweep's tables (CSV and JSON, non-finite values kept honest) and its figures."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from concretelab.lab.report import CSV_NAME, JSON_NAME, plot_rows, write_tables


def _rows() -> list[dict]:
    rows = []
    for estimator, temperatures in (("concrete", (0.1, 0.5, 1.0)), ("reinforce", (None,))):
        for t in temperatures:
            rows.append({
                "problem": "toy", "estimator": estimator, "temperature": t, "evaluations_per_estimate": 10,
                "bias_norm": 0.1 if t is None else t, "bias_norm_low": 0.05, "bias_norm_high": 2.0,
                "variance": 1.0 if t is None else 1 / t, "variance_low": 0.5, "variance_high": 20.0,
                "snr_mean": math.inf if t is None else 2.0, "cosine_of_mean": 0.9, "mean_cosine": 0.5,
                "noise_floor": 0.01, "per_coordinate": [1.0, math.nan],
            })
    return rows


def test_tables_round_trip_with_non_finite_values_made_explicit(tmp_path: Path) -> None:
    paths = write_tables(_rows(), {"seed": 0, "threshold": math.inf}, tmp_path)
    assert paths == [tmp_path / CSV_NAME, tmp_path / JSON_NAME]
    assert sorted(p.name for p in tmp_path.iterdir()) == [CSV_NAME, JSON_NAME]  # no temp file left behind
    document = json.loads((tmp_path / JSON_NAME).read_text())  # strict JSON: no NaN/Infinity tokens
    assert document["metadata"] == {"seed": 0, "threshold": None}
    assert len(document["rows"]) == 4 and document["rows"][3]["snr_mean"] is None
    assert document["rows"][0]["per_coordinate"] == [1.0, None]
    with (tmp_path / CSV_NAME).open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["estimator"] for r in table] == ["concrete"] * 3 + ["reinforce"]
    assert table[3]["temperature"] == "" and float(table[3]["snr_mean"]) == math.inf
    assert float(table[1]["variance"]) == pytest.approx(2.0)
    assert json.loads(table[0]["per_coordinate"]) == [1.0, None]


def test_tables_replace_an_earlier_sweep_atomically(tmp_path: Path) -> None:
    write_tables(_rows(), {}, tmp_path)
    write_tables(_rows()[:1], {"second": True}, tmp_path)
    assert len(json.loads((tmp_path / JSON_NAME).read_text())["rows"]) == 1
    assert len((tmp_path / CSV_NAME).read_text().splitlines()) == 2


def test_plots_write_two_pngs_per_problem(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = _rows() + [{**r, "problem": "other"} for r in _rows()]
    paths = plot_rows(rows, tmp_path)
    assert [p.name for p in paths] == [
        "toy-bias-variance.png", "toy-snr-cosine.png", "other-bias-variance.png", "other-snr-cosine.png"
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
