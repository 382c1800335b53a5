"""Training with an estimator holds no memory from one step to the next.

An estimator step that leaves a reference cycle through autograd's graph (which Python's garbage collector cannot
see) keeps that step's graph alive for the life of the process: double CV leaked 0.4 MB per step on DisARM's linear
model, 20 GB by the end of a leaderboard cell. After the first steps (which create the optimizer's and estimator's
own state), the number of live tensors must not grow with the number of steps."""

from __future__ import annotations

import gc
import warnings

import pytest
import torch

from concretelab.models import build_model
from concretelab.train.discrete import TRAINING_ESTIMATORS, build_estimator_objective


def _live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance on torch's deprecated module attributes warns
        warnings.simplefilter("ignore", FutureWarning)
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


@pytest.mark.parametrize("name", TRAINING_ESTIMATORS)
def test_an_estimator_step_leaves_nothing_behind(name: str) -> None:
    torch.manual_seed(0)
    model = build_model("6H-784V")
    objective = build_estimator_objective(name, model)
    optimizer = torch.optim.Adam([*model.parameters(), *objective.parameters()], lr=1e-3)
    x = (torch.rand(5, 784, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    generator = torch.Generator().manual_seed(2)
    samples = 2 if objective.min_samples <= 2 else objective.min_samples

    def step() -> None:
        bound = objective(model, x, samples=samples, prior_temperature=0.5, posterior_temperature=2 / 3,
                          generator=generator)
        optimizer.zero_grad(set_to_none=True)
        (-bound.mean()).backward()
        optimizer.step()

    for _ in range(3):
        step()
    before = _live_tensors()
    for _ in range(10):
        step()
    # A step that keeps its graph keeps three or more tensors alive (double CV kept three per step), so 10 steps
    # would add 30. The count is the worker's, so other tests' objects freed meanwhile may lower it: only growth
    # counts, and fewer than one tensor per step is not a step's leak.
    assert _live_tensors() - before < 10
