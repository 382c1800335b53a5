"""A temperature per example (a column (batch, 1)): each row of the objective equals the objective at that row's
temperature, the noise being the same (one draw for the batch)."""

from __future__ import annotations

import pytest
import torch

from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES


@pytest.mark.parametrize(("spec", "categories"), [("8H-6H-784V", None), ("8H~784V", 4), ("392V-8H-392V", None)])
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
@pytest.mark.parametrize("samples", [1, 3])
def test_each_row_is_the_objective_at_its_own_temperature(spec, categories, name, samples) -> None:
    torch.manual_seed(0)
    model = build_model(spec, categories=categories).double()
    x = (torch.rand(6, 784) < 0.3).double()
    low, high = (0.3, 0.7), (1.5, 2.0)  # (prior, posterior) of rows 0-2 and rows 3-5
    column = {side: torch.tensor([low[i]] * 3 + [high[i]] * 3, dtype=torch.float64).unsqueeze(-1)
              for i, side in enumerate(("prior", "posterior"))}

    def bound(prior, posterior):
        return OBJECTIVES[name](model, x, samples=samples, prior_temperature=prior, posterior_temperature=posterior,
                                generator=torch.Generator().manual_seed(1))

    both = bound(column["prior"], column["posterior"])
    torch.testing.assert_close(both[:3], bound(*low)[:3], rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(both[3:], bound(*high)[3:], rtol=1e-12, atol=1e-10)


def test_a_temperature_column_must_have_one_row_per_example() -> None:
    model = build_model("8H-784V")
    x = torch.zeros(4, 784)
    with pytest.raises(ValueError, match=r"column \(4, 1\)"):
        OBJECTIVES["relaxed"](model, x, prior_temperature=torch.ones(3, 1), posterior_temperature=0.5)
    with pytest.raises(ValueError, match="finite and positive"):
        OBJECTIVES["relaxed"](model, x, prior_temperature=torch.tensor([[1.0], [0.0], [1.0], [1.0]]),
                              posterior_temperature=0.5)
