"""Checkpoints: exact round trip of nested state, atomic writes, and refusal of damaged files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from concretelab.train.checkpoint import (
    Checkpoint,
    CheckpointError,
    capture_global_rng,
    load_checkpoint,
    restore_global_rng,
    save_checkpoint,
)


def _checkpoint() -> Checkpoint:
    model = torch.nn.Linear(5, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 5, generator=torch.Generator().manual_seed(0))).sum().backward()
    optimizer.step()
    return Checkpoint(
        step=17,
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        rng=capture_global_rng(include_cuda=False),
        data_state={"epoch": 2, "index": 48, "seed": 0},
        best_valid=-123.5,
        config={"model": "8H-784V", "lr": 1e-3},
        model_args={"name": "8H-784V", "categories": 2},
        extra={"elapsed": 1.5, "nested": {"t": torch.arange(3), "tuple": (1, 2.5, None), "inf": float("inf")}},
    )


def test_round_trip_is_exact(tmp_path) -> None:
    ckpt = _checkpoint()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, ckpt)
    back = load_checkpoint(path)
    assert back.step == 17 and back.best_valid == -123.5 and back.data_state == ckpt.data_state
    assert back.config == ckpt.config and back.model_args == ckpt.model_args
    for name, tensor in ckpt.model_state.items():
        assert torch.equal(back.model_state[name], tensor)
    assert back.optimizer_state["param_groups"] == ckpt.optimizer_state["param_groups"]
    for index, state in ckpt.optimizer_state["state"].items():
        for key, value in state.items():
            assert torch.equal(back.optimizer_state["state"][index][key], value)
    assert torch.equal(back.extra["nested"]["t"], torch.arange(3))
    assert back.extra["nested"]["tuple"] == (1, 2.5, None) and back.extra["nested"]["inf"] == float("inf")
    # a restored optimizer accepts the state
    model = torch.nn.Linear(5, 3)
    torch.optim.Adam(model.parameters(), lr=1e-3).load_state_dict(back.optimizer_state)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away


def test_global_rng_states_restore() -> None:
    states = capture_global_rng(include_cuda=False)
    before = (torch.rand(3), random.random(), np.random.rand())
    restore_global_rng(states)
    after = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(before[0], after[0]) and before[1:] == after[1:]


@pytest.mark.parametrize("cut", [0, 5, 100, -10])
def test_truncated_file_is_refused(tmp_path, cut: int) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _checkpoint())
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match=r"truncated|corrupted"):
        load_checkpoint(path)


def test_flipped_bytes_are_refused(tmp_path) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _checkpoint())
    data = bytearray(path.read_bytes())
    data_start = 8 + int.from_bytes(data[:8], "little")  # safetensors: u64 header length, header, tensor data
    for offset in (len(data) - 1, len(data) - 40, (data_start + len(data)) // 2):  # inside the tensor data
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(CheckpointError, match="corrupted"):
            load_checkpoint(path)


def test_not_a_checkpoint(tmp_path) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.safetensors")
