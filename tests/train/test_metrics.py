"""metrics.jsonl: rows survive a torn last line, resume truncation, CSV export with the union of columns."""

from __future__ import annotations

import csv
import math

from concretelab.train.metrics import MetricsWriter, export_csv, read_metrics, truncate_metrics


def test_rows_truncation_and_csv(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    with MetricsWriter(path) as writer:
        for step in (2, 4, 6):
            writer.write({"step": step, "loss": 100.0 / step})
        writer.write({"step": 6, "valid_nll": 90.0, "valid_k": 100})
        writer.write({"step": 8, "loss": float("nan")})
    with open(path, "a") as handle:
        handle.write('{"step": 10, "lo')  # a row torn by kill -9
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [2, 4, 6, 6, 8]
    assert rows[-1]["loss"] == "nan"  # JSON has no NaN; kept readable
    truncate_metrics(path, 4)
    assert [r["step"] for r in read_metrics(path)] == [2, 4]
    export_csv(rows, tmp_path / "metrics.csv")
    with open(tmp_path / "metrics.csv") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["step", "loss", "valid_nll", "valid_k"]
    assert math.isclose(float(table[0]["loss"]), 50.0) and table[3]["valid_nll"] == "90.0"


def test_disabled_writer_writes_nothing(tmp_path) -> None:
    writer = MetricsWriter(tmp_path / "m.jsonl", enabled=False)
    writer.write({"step": 1, "loss": 1.0})
    writer.close()
    assert not (tmp_path / "m.jsonl").exists()
