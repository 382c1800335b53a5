"""scripts/temperature_study.py --seeds: a series as one process of replicas, each at its own temperature and
seed, evaluated replica by replica and summarised over seeds."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from concretelab.train.config import load_config

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "temperature_study.py"
_spec = importlib.util.spec_from_file_location("temperature_study", SCRIPT)
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)


def test_the_plan_gives_each_temperature_its_seeds_and_the_matched_series_leaves_out_one_half() -> None:
    assert study.seeded_plan("fixed", ["0.5", "1"], 2) == [(0, "0.5"), (1, "1"), (2, "0.5"), (3, "1")]
    assert study.seeded_plan("matched", ["0.5", "1", "2"], 2) == [(0, "1"), (1, "2"), (2, "1"), (3, "2")]


def test_seeded_series_train_evaluate_and_summarise(tmp_path) -> None:
    common = [sys.executable, str(SCRIPT), "--data", "embedded", "--out", str(tmp_path / "runs"), "--steps", "4",
              "--eval-every", "2", "--k", "5", "--gradient-images", "3", "--temperatures", "0.5", "1",
              "--seeds", "2", "--results", str(tmp_path / "results"), "--doc", str(tmp_path / "absent.md")]
    for series in ("fixed", "matched"):
        done = subprocess.run([*common, "--prior", series], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    config = load_config(tmp_path / "runs" / "seeds" / "matched" / "seed-1" / "config.toml")
    assert (config.prior_temperature, config.posterior_temperature) == (1.0, 1.0)  # matched at 1: seed 1
    summary = json.loads((tmp_path / "results" / "study-seeds.json").read_text())["summary"]
    assert [(s["series"], s["label"], s["seeds"]) for s in summary] == [
        ("fixed", "0.5", [0, 2]), ("fixed", "1", [1, 3]), ("matched", "0.5", [0, 2]), ("matched", "1", [0, 1])]
    for entry in summary:  # Student's t interval over the two seeds: t_{1, 0.975} = 12.706
        first, second = entry["test_nll"]
        assert entry["mean"] == pytest.approx((first + second) / 2)
        assert entry["ci95_half"] == pytest.approx(12.706 * abs(first - second) / 2, rel=1e-3)
    # which differences the seeds settle: in each series against its best temperature, and fixed against matched
    # at 1 (at 1/2 the series share their runs); Welch intervals, checked against scipy's
    from scipy import stats

    found = json.loads((tmp_path / "results" / "study-seeds.json").read_text())["differences"]
    by_key = {(s["series"], s["label"]): s["test_nll"] for s in summary}
    assert sorted((d["kind"], d["series"], d["label"]) for d in found) == sorted(
        [("to the best", "fixed", max(("0.5", "1"), key=lambda t: sum(by_key[("fixed", t)]))),
         ("to the best", "matched", max(("0.5", "1"), key=lambda t: sum(by_key[("matched", t)]))),
         ("fixed against matched", "both", "1")])
    across = next(d for d in found if d["kind"] == "fixed against matched")
    welch = stats.ttest_ind(by_key[("fixed", "1")], by_key[("matched", "1")], equal_var=False)
    interval = welch.confidence_interval(0.95)
    assert across["difference"] == pytest.approx((interval.low + interval.high) / 2)
    assert across["ci95_half"] >= (interval.high - interval.low) / 2 * (1 - 1e-3)
    assert across["settled"] == (abs(across["difference"]) > across["ci95_half"])
