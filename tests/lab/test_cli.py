"""``concretelab lab gradients`` end to end on a tiny budget, and its argument errors (exit status 2)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from concretelab.cli import main

TINY = ["--draws", "40", "--bootstrap", "20", "--timing-repeats", "2", "--no-progress"]
EXPECTED_COLUMNS = {
    "problem", "family", "estimator", "temperature", "unbiased", "reference", "samples", "draws",
    "evaluations_per_sample", "evaluations_per_estimate", "evaluations_counted", "bias_norm", "bias_norm_low",
    "bias_norm_high", "bias_norm_debiased", "variance", "variance_low", "variance_high", "noise_floor", "snr_mean",
    "snr_mean_low", "snr_mean_high", "dsnr", "cosine_of_mean", "cosine_of_mean_low", "cosine_of_mean_high",
    "mean_cosine", "mse", "variance_x_evaluations", "time_ms", "time_ms_low", "time_ms_high", "time_ms_batched",
    "bias_per_coordinate", "bias_per_coordinate_low", "bias_per_coordinate_high", "snr_per_coordinate",
    "exact_per_coordinate", "bias_chi2", "bias_dof", "bias_pvalue", "nonfinite_draws",
}


def run(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "lab"
    code = main(["lab", "gradients", "--problem", "toy", "--target", "0.49", "--estimators", "concrete,reinforce_loo",
                 "--temperatures", "1,0.1", *TINY, "--out", str(out), *extra])
    return code, out


def test_end_to_end_tiny_budget(tmp_path: Path) -> None:
    code, out = run(tmp_path)
    assert code == 0
    with open(out / "gradients.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert EXPECTED_COLUMNS <= set(rows[0])
    assert [(r["estimator"], r["temperature"]) for r in rows] == [
        ("concrete", "1.0"), ("concrete", "0.1"), ("reinforce_loo", "")
    ]
    for r in rows:
        assert r["problem"] == "toy-t0.49"
        # equal cost: 6 f-evaluations per estimate (the default budget), counted by wrapping f
        assert float(r["evaluations_counted"]) == float(r["evaluations_per_estimate"]) == 6.0
        assert float(r["variance_low"]) <= float(r["variance"]) <= float(r["variance_high"])
        assert json.loads(r["exact_per_coordinate"]) == pytest.approx([0.25 * (1 - 2 * 0.49)])
    document = json.loads((out / "gradients.json").read_text())
    assert len(document["rows"]) == 3 and document["metadata"]["config"]["draws"] == 40
    assert "bootstrap" in document["metadata"]["intervals"]
    for name in ("toy-t0.49-bias-variance.png", "toy-t0.49-snr-cosine.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_same_seed_same_table(tmp_path: Path) -> None:
    def table(folder: str) -> list[dict]:
        code, out = run(tmp_path / folder, "--no-plots", "--estimators", "st_gumbel")
        assert code == 0
        rows = json.loads((out / "gradients.json").read_text())["rows"]
        return [{k: v for k, v in r.items() if not k.startswith("time_ms")} for r in rows]

    assert table("a") == table("b")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--estimators", "concrete,nope"], "--estimators: unknown 'nope'"),
        (["--estimators", "concrete,concrete"], "--estimators lists 'concrete' more than once"),  # issue 10.11
        (["--temperatures", "1,,"], "--temperatures must be a comma-separated list without empty items"),
        (["--temperatures", "1,1"], "more than once"),
        (["--temperatures", "1,0"], "temperatures"),
        (["--temperatures", "-0.5"], "temperatures"),
        (["--temperatures", "1,abc"], "temperatures"),
        (["--problem", "ising"], "--problem: unknown 'ising'"),
        (["--draws", "1"], "draws"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                              message: str) -> None:
    code, out = run(tmp_path, *args)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_metrics_are_finite_for_a_pathwise_estimator(tmp_path: Path) -> None:
    code, out = run(tmp_path, "--no-plots", "--estimators", "concrete", "--temperatures", "0.01")
    assert code == 0
    row = json.loads((out / "gradients.json").read_text())["rows"][0]
    assert all(math.isfinite(row[k]) for k in ("bias_norm", "variance", "snr_mean", "cosine_of_mean", "time_ms"))
