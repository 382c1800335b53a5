"""Subnormal floats are flushed to zero while training and evaluating (concretelab.train.denormals)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import concretelab.train.loop as loop
from concretelab.data import load_dataset
from concretelab.models import build_model
from concretelab.objectives import discrete_bound, relaxed
from concretelab.train import train
from concretelab.train.denormals import flush_denormals
from concretelab.train.loop import num_threads

from ._helpers import small_config

SUBNORMAL = 1e-39  # below float32's smallest normal number, 2**-126 = 1.18e-38


def _flushing() -> bool:
    """Whether subnormal operands count as 0 now (x * 1 of a subnormal x)."""
    return float(torch.tensor([SUBNORMAL], dtype=torch.float32) * 1.0) == 0.0


@pytest.fixture(autouse=True)
def _one_thread_that_can_flush_to_zero() -> Iterator[None]:
    """The setting is per thread (the CPU's control register): with one torch thread every operation sees it."""
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormals to zero")
    torch.set_flush_denormal(False)
    with num_threads(1):
        yield


def test_subnormals_are_flushed_inside_the_block_only() -> None:
    assert not _flushing()
    with flush_denormals():
        assert _flushing()
        with flush_denormals():  # a nested block (an evaluation inside a training run)
            assert _flushing()
        assert _flushing()  # the inner block's end left the outer block's setting alone
        with flush_denormals(False):
            assert _flushing()
    assert not _flushing()
    with flush_denormals(False):
        assert not _flushing()


def test_training_flushes_unless_told_not_to_and_the_setting_may_change_on_resume(tmp_path, monkeypatch) -> None:
    seen: list[bool] = []
    real = loop._train

    def recording(config, resume):
        seen.append(_flushing())
        return real(config, resume)

    monkeypatch.setattr(loop, "_train", recording)
    config = small_config(tmp_path / "run", steps=4)
    assert config.flush_denormal  # on by default
    train(config)
    train(dataclasses.replace(config, steps=8, flush_denormal=False), resume=True)  # allowed on resume
    assert seen == [True, False]
    assert not _flushing()  # and off again after the run


class _CountSubnormals(TorchDispatchMode):
    """Counts the subnormal float32 entries of every tensor that an operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, tuple | list) else [out]:
            if isinstance(value, torch.Tensor) and value.dtype == torch.float32:
                self.count += int(((value != 0) & (value.abs() < torch.finfo(torch.float32).tiny)).sum())
        return out


def test_flushing_changes_neither_a_bound_nor_a_gradient_beyond_rounding() -> None:
    """A model whose weights are scaled up saturates many units, as long training does: the likelihood's
    softplus backward then returns subnormal gradients (checked below), which the backward matmuls read.
    Flushing them must not change the bound, the objective or the parameters' gradients."""
    data = load_dataset("embedded")
    x = data.train[:16].float()
    torch.manual_seed(0)
    model = build_model("200H~784V", train_mean=data.train.float().mean(0))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(6.0)

    def measure() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        with torch.no_grad():
            bound = discrete_bound(model, x, 200, generator=torch.Generator().manual_seed(0))
        model.zero_grad(set_to_none=True)
        objective = relaxed(model, x, samples=10, prior_temperature=0.5, posterior_temperature=2 / 3,
                            generator=torch.Generator().manual_seed(1))
        (-objective.mean()).backward()
        return bound, objective.detach(), [p.grad.clone() for p in model.parameters()]

    with _CountSubnormals() as counter:
        kept = measure()
    assert counter.count > 1000  # the premise: this step does compute with subnormals
    with flush_denormals(), _CountSubnormals() as counter:
        flushed = measure()
    assert counter.count == 0
    torch.testing.assert_close(flushed[0], kept[0], rtol=1e-6, atol=0.0)
    torch.testing.assert_close(flushed[1], kept[1], rtol=1e-6, atol=0.0)
    for a, b in zip(flushed[2], kept[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-30)
