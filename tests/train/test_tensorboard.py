"""``--tensorboard`` (issue 12.4): the same scalars as metrics.jsonl and sample images at each validation, with no
duplicated or out-of-order step after a kill -9 and resume, and a clear error when the package is missing."""

from __future__ import annotations

import builtins
import signal
import time

import pytest

from concretelab.train import train
from concretelab.train.metrics import read_metrics

from ._helpers import resume, run_python, small_config
from .test_interruptions import _KILL_SCRIPT

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SETTINGS = {"steps": 12, "log_every": 3, "checkpoint_every": 4, "eval_every": 6, "tensorboard": True}


def _events(run) -> EventAccumulator:
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def _scalars(run, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in _events(run).Scalars(tag)]


def test_scalars_equal_the_metrics_rows_and_images_come_with_validation(tmp_path) -> None:
    out = tmp_path / "run"
    train(small_config(out, **SETTINGS))
    rows = read_metrics(out / "metrics.jsonl")
    tags = {"loss": "train/loss", "lr": "train/lr", "posterior_temperature": "train/posterior_temperature",
            "valid_nll": "valid/nll"}
    for key, tag in tags.items():
        expected = [(r["step"], r[key]) for r in rows if key in r]
        got = _scalars(out, tag)
        assert [s for s, _ in got] == [s for s, _ in expected], tag
        assert all(v == pytest.approx(e, rel=1e-6) for (_, v), (_, e) in zip(got, expected, strict=True)), tag
    images = _events(out).Images("samples/pixel_probabilities")
    assert [e.step for e in images] == [6, 12]
    assert (images[0].width, images[0].height) == (8 * 28, 2 * 28)  # 16 samples of 28 x 28, 8 to a row


def test_kill_9_and_resume_leave_no_duplicate_or_out_of_order_step(tmp_path) -> None:
    straight = tmp_path / "straight"
    train(small_config(straight, **SETTINGS))
    killed = tmp_path / "killed"
    args = ["train", "--model", "8H-784V", "--steps", "12", "--batch-size", "16", "--lr", "3e-3", "--device", "cpu",
            "--eval-every", "6", "--eval-k", "4", "--eval-images", "20", "--log-every", "3", "--checkpoint-every", "4",
            "--tensorboard", "--no-progress", "--threads", "1", "--out", str(killed)]
    proc = run_python(_KILL_SCRIPT, "11", *args)  # killed in step 11: rows at 3..9 and validation at 6 written
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert [s for s, _ in _scalars(killed, "train/loss")] == [3, 6, 9]
    time.sleep(1.1)  # event files are ordered by their creation second; a real resume starts later than that
    resume(small_config(killed, **SETTINGS))  # resumes at the checkpoint of step 8
    for tag in ("train/loss", "valid/nll", "train/lr"):
        steps = [s for s, _ in _scalars(killed, tag)]
        assert steps == sorted(set(steps)) == [s for s, _ in _scalars(straight, tag)], tag
        assert [v for _, v in _scalars(killed, tag)] == [v for _, v in _scalars(straight, tag)], tag


def test_missing_package_is_a_clear_error_before_any_file(tmp_path, monkeypatch) -> None:
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard.") or name == "torch.utils.tensorboard":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    out = tmp_path / "run"
    message = r"--tensorboard needs the tensorboard package.*pip install 'concretelab\[tensorboard\]'"
    with pytest.raises(ValueError, match=message):
        train(small_config(out, steps=2, tensorboard=True))
    assert not out.exists()
