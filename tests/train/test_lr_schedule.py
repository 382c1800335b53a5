"""Learning-rate schedules: values at hand-computed points, the trainer applies them, resume is exact."""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.cli import main
from concretelab.train import TrainConfig, load_checkpoint, train
from concretelab.train.lr_schedule import learning_rate
from concretelab.train.metrics import read_metrics

from ._helpers import model_tensors, resume, small_config


@pytest.mark.parametrize(
    ("schedule", "warmup", "step", "expected"),
    [
        ("constant", 0, 0, 1.0),
        ("constant", 4, 0, 0.25),  # warmup: (t + 1) / W
        ("constant", 4, 3, 1.0),
        ("cosine", 0, 0, 1.0),
        ("cosine", 0, 50, 0.5),  # cos(pi / 2) = 0
        ("cosine", 0, 25, (1 + math.sqrt(0.5)) / 2),
        ("cosine", 20, 60, 0.5),  # halfway through the 80 decay steps after warmup
        ("cosine", 0, 100, 0.0),
        ("cosine", 0, 1000, 0.0),  # past the horizon it stays at 0
        ("linear", 0, 25, 0.75),
        ("linear", 10, 55, 0.5),
        ("linear", 10, 9, 1.0),
    ],
)
def test_values_at_hand_computed_points(schedule: str, warmup: int, step: int, expected: float) -> None:
    value = learning_rate(2e-3, step, schedule=schedule, warmup_steps=warmup, horizon=100)
    assert value == pytest.approx(2e-3 * expected, abs=1e-15)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr_schedule": "step"}, "--lr-schedule must be one of constant, cosine, linear"),
        ({"warmup_steps": -1}, "--warmup-steps must be >= 0"),
        ({"warmup_steps": 10, "lr_decay_steps": 10}, "--lr-decay-steps .10. must exceed --warmup-steps"),
    ],
)
def test_bad_schedule_settings_are_named(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def test_trainer_steps_with_the_scheduled_rate(tmp_path) -> None:
    out = tmp_path / "run"
    train(small_config(out, steps=10, lr_schedule="cosine", warmup_steps=2))
    rows = [r for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    for row in rows:  # a row at step s reports the rate of the step just taken, t = s - 1
        t = row["step"] - 1
        expected = 3e-3 * ((t + 1) / 2 if t < 2 else 0.5 * (1 + math.cos(math.pi * (t - 2) / 8)))
        assert row["lr"] == pytest.approx(expected, rel=1e-12)
    assert load_checkpoint(out / "checkpoints/last.safetensors").optimizer_state["param_groups"][0]["lr"] == (
        pytest.approx(3e-3 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    )


def test_resume_with_a_decaying_schedule_is_bit_identical(tmp_path) -> None:
    settings = {"lr_schedule": "linear", "warmup_steps": 3, "lr_decay_steps": 10}
    straight, half = tmp_path / "straight", tmp_path / "half"
    train(small_config(straight, steps=10, **settings))
    train(small_config(half, steps=6, **settings))
    resume(small_config(half, steps=10, **settings))
    a, b = model_tensors(straight), model_tensors(half)
    assert all(torch.equal(a[name], b[name]) for name in a)
    lrs = lambda run: [r["lr"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r]  # noqa: E731
    assert lrs(straight) == lrs(half)


def test_resume_refuses_to_move_a_horizon_tied_to_steps(tmp_path) -> None:
    out = tmp_path / "run"
    train(small_config(out, steps=4, lr_schedule="cosine"))
    with pytest.raises(ValueError, match="cosine learning rate decays to 0 at its steps=4"):
        train(small_config(out, steps=8, lr_schedule="cosine"), resume=True)


def test_cli_flags_reach_the_config(tmp_path) -> None:
    out = tmp_path / "run"
    code = main(["train", "--model", "8H-784V", "--steps", "4", "--batch-size", "16", "--eval-every", "0",
                 "--lr-schedule", "cosine", "--warmup-steps", "2", "--lr-decay-steps", "100", "--threads", "1",
                 "--no-progress", "--out", str(out)])
    assert code == 0
    text = (out / "config.toml").read_text()
    assert 'lr_schedule = "cosine"' in text and "warmup_steps = 2" in text and "lr_decay_steps = 100" in text
