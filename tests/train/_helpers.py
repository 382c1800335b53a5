"""Small, fast training configurations shared by the trainer tests (embedded data, tiny models)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import torch
from safetensors.torch import load_file

from concretelab.train import TrainConfig, TrainResult, load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def small_config(out: Path, **overrides: object) -> TrainConfig:
    """8 binary latents, linear, batch 16, no validation unless asked: a step takes about a millisecond."""
    values: dict[str, object] = {
        "model": "8H-784V", "steps": 8, "batch_size": 16, "lr": 3e-3, "device": "cpu", "eval_every": 0,
        "eval_k": 4, "eval_images": 20, "log_every": 2, "checkpoint_every": 4, "progress": False, "threads": 1,
        "out": str(out),
    }
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


def straight_and_resumed(tmp_path: Path, steps: int, **settings: object) -> tuple[dict[str, torch.Tensor], ...]:
    """The tensors of ``last.safetensors`` after ``steps`` steps in one go, and after ``steps // 2``, a stop and a
    resume: for checks that a resumed run replays an uninterrupted one bit for bit."""
    from concretelab.train import train

    straight, half = tmp_path / "straight", tmp_path / "half"
    train(small_config(straight, steps=steps, **settings))
    train(small_config(half, steps=steps // 2, **settings))
    resume(small_config(half, steps=steps, **settings))
    return tuple(load_file(str(run / "checkpoints" / "last.safetensors")) for run in (straight, half))


def resume(config: TrainConfig) -> TrainResult:
    """``train(config, resume=True)``, checked to have resumed: the run's checkpoint exists and the call takes only
    the steps after it. Bit-identity alone cannot show this, since noise and data order are functions of the seed
    and the step: a run that ignored its checkpoint and trained again from step 0 would end with the same tensors."""
    from concretelab.train import loop, train

    start = load_checkpoint(Path(config.out) / "checkpoints" / "last.safetensors").step
    taken = 0
    take_step = loop._Run.take_step

    def counted(run: loop._Run, stop: object) -> bool:
        nonlocal taken
        done = take_step(run, stop)
        taken += done
        return done

    with mock.patch.object(loop._Run, "take_step", counted):
        result = train(config, resume=True)
    assert taken == result.step - start, f"resumed at step {start}, but took {taken} steps to reach {result.step}"
    return result


def model_tensors(run: Path, which: str = "last") -> dict[str, torch.Tensor]:
    """The model tensors of a run's checkpoint (read directly from the safetensors file)."""
    tensors = load_file(str(run / "checkpoints" / f"{which}.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith("model/")}


def run_python(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (the repository's venv) and return the completed process."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=REPO)
