"""The model protocols (objectives/protocols.py): every built-in model satisfies all three, the examples' own
model satisfies the discrete one with nothing more, and an object that lacks a member does not pass."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from concretelab.models import build_model
from concretelab.objectives import DiscreteModel, RelaxedModel, TrainableModel, discrete_bound

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["200H-784V", "200H~200H~784V", "392V-240H-240H-392V", "categorical-vae"])
def test_built_in_models_implement_every_protocol(name: str) -> None:
    model = build_model(name)
    assert isinstance(model, RelaxedModel) and isinstance(model, DiscreteModel) and isinstance(model, TrainableModel)


def test_the_examples_own_model_is_a_discrete_model_and_nothing_else() -> None:
    spec = importlib.util.spec_from_file_location("own_model_vimco", EXAMPLES / "own_model_vimco.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.OneLayerSBN(pixels=6, units=3, pixel_mean=torch.full((6,), 0.5))
    assert isinstance(model, DiscreteModel)
    assert not isinstance(model, RelaxedModel)  # it implements the discrete protocol only
    x = (torch.rand(4, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    assert discrete_bound(model, x, 10, generator=torch.Generator().manual_seed(1)).shape == (4,)


def test_an_object_missing_a_member_is_not_a_model() -> None:
    class OnlySamples:
        def sample_posterior(self, x, num_samples, *, generator=None):
            return [], x.new_zeros(num_samples, x.shape[0])

    class NoCategories:
        def proposal_logits(self, i, x, values): ...
        def prior_logits(self, x, values): ...
        def log_likelihood(self, x, values): ...

    assert not isinstance(OnlySamples(), DiscreteModel)
    assert not isinstance(NoCategories(), RelaxedModel)
