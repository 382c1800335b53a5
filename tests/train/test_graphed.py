"""``--cuda-graph``: what can be checked without a GPU (the graph itself is checked in tests/test_cuda.py)."""

from __future__ import annotations

import pytest
import torch

from concretelab.models import build_model
from concretelab.train import train
from concretelab.train.graphed import preserved, step_state
from concretelab.train.loop import build_optimizer

from ._helpers import small_config


def _adam_step(model, optimizer, x) -> None:
    optimizer.zero_grad(set_to_none=True)
    model.log_likelihood(x, [torch.ones(1, x.shape[0], 8)]).sum().neg().backward()
    optimizer.step()


@pytest.mark.parametrize("had_state", [False, True])
def test_preserved_undoes_warm_up_steps_to_parameters_and_adam(had_state) -> None:
    """After the warm-up inside ``preserved``, the next step equals the step taken without any warm-up."""
    torch.manual_seed(0)
    x = (torch.rand(4, 784) < 0.3).float()
    models = [build_model("8H-784V") for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    optimizers = [build_optimizer(list(m.parameters()), 1e-2, torch.device("cpu")) for m in models]
    if had_state:  # a resumed run: Adam's state exists before the warm-up
        for model, optimizer in zip(models, optimizers, strict=True):
            _adam_step(model, optimizer, x)
    with preserved(step_state(models[1]), optimizers[1]):
        for _ in range(3):
            _adam_step(models[1], optimizers[1], x * 0.5)
    for model, optimizer in zip(models, optimizers, strict=True):
        _adam_step(model, optimizer, x)
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_cuda_graph_needs_a_cuda_device(tmp_path) -> None:
    with pytest.raises(ValueError, match="--cuda-graph needs a CUDA device"):
        train(small_config(tmp_path / "run", cuda_graph=True))
    assert not (tmp_path / "run" / "checkpoints").exists()
