"""scripts/leaderboard_train_elbo.py and scripts/leaderboard_variance.py measure a finished leaderboard cell
again from its run folders and record the numbers, per seed and over seeds, with the command that measured them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from concretelab.cli import main
from concretelab.reproduce.leaderboard import encoder_gradient_variance, training_elbo

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
CELL = "mnist-linear-reinforce_loo-K2"


def test_a_finished_cell_measured_again_records_its_numbers_and_command(tmp_path: Path) -> None:
    argv = ["lab", "leaderboard", "--cells", CELL, "--steps", "3", "--seeds", "0-1", "--mnist", "embedded",
            "--test-images", "8", "--valid-images", "8", "--out", str(tmp_path / "runs"), "--results",
            str(tmp_path / "results"), "--markdown", str(tmp_path / "leaderboard.md"), "--figures",
            str(tmp_path / "figures")]
    assert main(argv) == 0
    name = f"{CELL}-steps3"  # the run name at a budget other than the leaderboard's
    path = tmp_path / "results" / f"{name}.json"
    result = json.loads(path.read_text())
    for key in ("train_elbo", "encoder_gradient_variance"):  # as a cell that ran before these were measured
        result.pop(key)
        for seed in result["replicas"]:
            seed.pop(key)
    path.write_text(json.dumps(result))
    # the scripts measure with this process's thread count, so that the numbers below are the same to the last bit
    # (a sum split over another number of threads rounds differently; another test may have left this process at 1)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    for script in ("leaderboard_train_elbo.py", "leaderboard_variance.py"):
        done = subprocess.run([sys.executable, str(SCRIPTS / script), name, "--runs", str(tmp_path / "runs"),
                               "--results", str(tmp_path / "results")], capture_output=True, text=True, timeout=300,
                              env=env)
        assert done.returncode == 0, done.stderr
        assert name in done.stdout
    result = json.loads(path.read_text())
    runs = [tmp_path / "runs" / name / f"seed-{seed}" for seed in (0, 1)]
    elbos = [training_elbo(run)["mean"] for run in runs]
    assert [seed["train_elbo"] for seed in result["replicas"]] == elbos
    assert result["train_elbo"]["mean"] == pytest.approx(sum(elbos) / 2)
    assert [seed["encoder_gradient_variance"] for seed in result["replicas"]] == [
        encoder_gradient_variance(run) for run in runs]
    assert result["train_elbo_measured"]["command"].startswith("python scripts/leaderboard_train_elbo.py " + name)
    assert result["encoder_gradient_variance_measured"]["command"].startswith("python scripts/leaderboard_variance.py")
