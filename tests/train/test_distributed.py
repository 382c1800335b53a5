"""Data parallelism: 2 processes under torch.distributed.run (gloo, 127.0.0.1) against 1 process with the
same global batch. The one process cuts the batch into the same 2 shards (grad_accum=2), so both draw the
same noise for the same images; only the order of the floating-point sums differs, so the parameters after
5 Adam steps agree to 1e-5 (float32), not bit for bit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch

from concretelab.train import train

from ._helpers import REPO, model_tensors, small_config


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_processes_match_one(tmp_path) -> None:
    one = tmp_path / "one"
    train(small_config(one, steps=5, grad_accum=2, checkpoint_every=0))
    two = tmp_path / "two"
    script = tmp_path / "concretelab_main.py"
    script.write_text("import sys\nfrom concretelab.cli import main\nsys.exit(main())\n")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        str(script), "train", "--model", "8H-784V", "--steps", "5", "--batch-size", "16",
        "--lr", "3e-3", "--device", "cpu", "--eval-every", "0", "--log-every", "2", "--checkpoint-every", "0",
        "--no-progress", "--out", str(two),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x2 processes" in proc.stderr
    a, b = model_tensors(one), model_tensors(two)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5, msg=name)
