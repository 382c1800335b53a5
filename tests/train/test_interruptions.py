"""Interruptions in a real subprocess: SIGTERM saves a checkpoint and exits cleanly; after kill -9 the
run resumes from its last checkpoint to bit-identical parameters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch

from concretelab.train import load_checkpoint, train

from ._helpers import REPO, model_tensors, run_python, small_config

# Runs `concretelab train` in-process after wrapping the relaxed objective so that the process sends
# itself SIGKILL during step KILL_AT (after the checkpoint of step KILL_AT - 2 was written).
_KILL_SCRIPT = """
import os, signal, sys
from concretelab import objectives
from concretelab.cli import main
real = objectives.OBJECTIVES["relaxed"]
calls = {"n": 0}
def objective(model, x, **kwargs):
    calls["n"] += 1
    if calls["n"] == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(model, x, **kwargs)
objectives.OBJECTIVES["relaxed"] = objective
sys.exit(main(sys.argv[2:]))
"""


def _cli_args(out, steps: int, checkpoint_every: int) -> list[str]:
    return ["train", "--model", "8H-784V", "--steps", str(steps), "--batch-size", "16", "--lr", "3e-3",
            "--device", "cpu", "--eval-every", "0", "--log-every", "2", "--checkpoint-every", str(checkpoint_every),
            "--no-progress", "--threads", "1", "--out", str(out)]


def test_kill_9_then_resume_is_bit_identical(tmp_path) -> None:
    straight = tmp_path / "straight"
    train(small_config(straight, steps=12, checkpoint_every=6))
    killed = tmp_path / "killed"
    proc = run_python(_KILL_SCRIPT, "9", *_cli_args(killed, 12, 6))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_checkpoint(killed / "checkpoints" / "last.safetensors").step == 6
    train(small_config(killed, steps=12, checkpoint_every=6), resume=True)
    a, b = model_tensors(straight), model_tensors(killed)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path) -> None:
    out = tmp_path / "run"
    args = _cli_args(out, 1_000_000, 1_000_000)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from concretelab.cli import main; sys.exit(main())",
                             *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert "stopped by SIGTERM" in stderr
    ckpt = load_checkpoint(out / "checkpoints" / "last.safetensors")
    assert 0 < ckpt.step < 1_000_000
    # and it resumes from there
    result = train(small_config(out, steps=ckpt.step + 2, checkpoint_every=1_000_000, log_every=2), resume=True)
    assert result.step == ckpt.step + 2
