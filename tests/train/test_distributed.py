"""Data parallelism: 2 processes under torch.distributed.run (gloo, 127.0.0.1) against 1 process with the
same global batch. The one process cuts the batch into the same 2 shards (grad_accum=2), so both draw the
same noise for the same images; only the order of the floating-point sums differs, so the parameters after
5 Adam steps agree to 1e-5 (float32), not bit for bit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from concretelab.train import load_checkpoint, train

from ._helpers import REPO, model_tensors, small_config

# Adam's moments agreed exactly when this was written; a gradient summed over the 2 ranks instead of averaged
# scales them by 2 and 4, far outside these tolerances
MOMENT_RTOL, MOMENT_ATOL = 1e-2, 1e-3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("steps", "batch_size", "atol"),
    [
        (5, 16, 1e-5),
        # 10,000 embedded images = 208 x 48 + 16: the partial batch is dropped (two shards of 24, never 32 + 0,
        # which used to stop the run with a NaN loss at step 209); 450 steps cross two epoch boundaries.
        (450, 48, 1e-4),
    ],
)
def test_two_processes_match_one(tmp_path, steps: int, batch_size: int, atol: float) -> None:
    one = tmp_path / "one"
    train(small_config(one, steps=steps, batch_size=batch_size, grad_accum=2, checkpoint_every=0, log_every=50))
    two = tmp_path / "two"
    script = tmp_path / "concretelab_main.py"
    script.write_text("import sys\nfrom concretelab.cli import main\nsys.exit(main())\n")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        str(script), "train", "--model", "8H-784V", "--steps", str(steps), "--batch-size", str(batch_size),
        "--lr", "3e-3", "--device", "cpu", "--eval-every", "0", "--log-every", "50", "--checkpoint-every", "0",
        "--no-progress", "--out", str(two),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x2 processes" in proc.stderr
    a, b = model_tensors(one), model_tensors(two)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=atol, msg=name)
    # Adam's update hardly changes when every gradient is scaled, so the parameters alone would barely notice a rank
    # that summed its gradients instead of averaging them; Adam's moments, scaled by 2 and 4, show it plainly
    first, second = load_checkpoint(one / "checkpoints/last.safetensors"), load_checkpoint(
        two / "checkpoints/last.safetensors")
    for index, state in first.optimizer_state["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(second.optimizer_state["state"][index][key], state[key], rtol=MOMENT_RTOL,
                                       atol=MOMENT_ATOL * state[key].abs().max().item(), msg=f"{index} {key}")
    epochs = first.data_state["epoch"]
    assert epochs == (steps - 1) // 208  # every batch full: 208 per epoch of the 10,000 embedded images
