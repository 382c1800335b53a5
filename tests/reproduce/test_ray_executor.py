"""``--executor ray``: tiny cells as tasks on a local Ray with 2 CPUs: two Table 1 cells, one of them resumed from a
run an interruption left behind, and two leaderboard cells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import concretelab.reproduce.runner as runner
from concretelab.cli import main
from concretelab.train import load_checkpoint

from .test_reproduce_command import _argv, interrupted_after_two_steps

ray = pytest.importorskip("ray", reason="the optional extra concretelab[ray]")

CELLS = ["200H-784V-m1-relaxed", "200H~784V-m1-relaxed"]


def test_cells_run_as_ray_tasks_and_an_interrupted_one_resumes(tmp_path: Path, monkeypatch) -> None:
    """One test, so that two local Rays never run at once (pytest-xdist may run two tests of a module in two
    processes at once): Table 1's cells on a Ray the test started (the command uses it and leaves it running),
    then the leaderboard's on a local Ray with 2 CPUs that the command starts and stops itself."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _table1_cells(tmp_path / "table1", monkeypatch)
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    _leaderboard_cells(tmp_path / "leaderboard", monkeypatch)
    assert not ray.is_initialized()


def _table1_cells(tmp_path: Path, monkeypatch) -> None:
    tmp_path.mkdir()
    interrupted = CELLS[0]
    real_train = runner.train
    monkeypatch.setattr(runner, "train", interrupted_after_two_steps(real_train))
    assert main(_argv(tmp_path, [interrupted], 5)) == 130
    folder = tmp_path / "runs" / f"{interrupted}-paper"
    assert load_checkpoint(folder / "checkpoints" / "last.safetensors").step == 2
    monkeypatch.setattr(runner, "train", real_train)

    monkeypatch.chdir(tmp_path)  # the tasks get absolute paths, whatever the driver's folder
    assert main(_argv(tmp_path, CELLS, 5, "--executor", "ray", "--jobs", "2")) == 0
    for name in CELLS:
        result = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        assert result["status"] == "done" and result["steps"] == 5
        assert "--threads 1" in result["command"]
        log = (tmp_path / "runs" / f"{name}.log").read_text()
        assert log.startswith("$ ") and f"--cells {name}" in log
    resumed = json.loads((tmp_path / "results" / f"{interrupted}.json").read_text())
    assert resumed["resumed_from"] == 2
    assert json.loads((tmp_path / "results" / f"{CELLS[1]}.json").read_text())["resumed_from"] is None
    assert "200H~784V-m1-relaxed" in (tmp_path / "RESULTS-details.md").read_text()


def _leaderboard_cells(tmp_path: Path, monkeypatch) -> None:
    tmp_path.mkdir()
    cells = ["mnist-linear-disarm-K2", "mnist-linear-vimco-K2"]
    monkeypatch.chdir(tmp_path)
    argv = ["lab", "leaderboard", "--cells", *cells, "--steps", "3", "--seeds", "0-1", "--mnist", "embedded",
            "--test-images", "8", "--valid-images", "8", "--out", "runs", "--results", "results",
            "--markdown", "leaderboard.md", "--figures", "figures", "--executor", "ray", "--jobs", "2"]
    assert main(argv) == 0
    for name in cells:
        result = json.loads((tmp_path / "results" / f"{name}-steps3.json").read_text())  # not the 10^5 budget
        assert result["status"] == "done" and result["seeds"] == [0, 1]
        assert (tmp_path / "runs" / f"{name}.log").read_text().startswith("$ ")
    assert "| vimco | 2 | 2 |" in (tmp_path / "leaderboard.md").read_text()


def test_address_without_the_ray_executor_is_a_user_error(tmp_path: Path, capsys) -> None:
    assert main(_argv(tmp_path, CELLS[:1], 2, "--address", "ray://head:10001")) == 2
    assert "--executor ray" in capsys.readouterr().err
