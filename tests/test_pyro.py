"""concretelab.pyro: the relaxed families as Pyro sample sites (issue 12.1e)."""

from __future__ import annotations

import math

import pytest
import torch

pyro = pytest.importorskip("pyro")
from pyro.infer import SVI, Trace_ELBO  # noqa: E402
from pyro.optim import Adam  # noqa: E402

from concretelab import distributions as plain  # noqa: E402
from concretelab.pyro import BinConcrete, Concrete, ExpConcrete, LogitBinConcrete  # noqa: E402


@pytest.mark.parametrize(("cls", "base", "logits"), [
    (ExpConcrete, plain.ExpConcrete, torch.tensor([[0.3, -1.0, 2.0]])),
    (Concrete, plain.Concrete, torch.tensor([[0.3, -1.0, 2.0]])),
    (BinConcrete, plain.BinConcrete, torch.tensor([0.3, -1.0])),
    (LogitBinConcrete, plain.LogitBinConcrete, torch.tensor([0.3, -1.0])),
])
def test_sample_site_shapes_and_densities(cls, base, logits) -> None:
    d = cls(0.5, logits=logits)
    assert callable(d) and d.has_rsample
    expanded = d.expand(torch.Size([4, *d.batch_shape]))
    assert type(expanded) is cls and expanded.batch_shape == (4, *d.batch_shape)
    value = d.rsample((5,), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(d.log_prob(value), base(0.5, logits=logits).log_prob(value.clone()))

    binary = len(d.event_shape) == 0

    def model() -> None:  # 4 rows; a binary row of 2 units is made one event with to_event(1)
        with pyro.plate("rows", 4):
            pyro.sample("z", cls(0.5, logits=logits.expand(4, logits.shape[-1])).to_event(1 if binary else 0))

    trace = pyro.poutine.trace(model).get_trace()
    trace.compute_log_prob()
    assert trace.nodes["z"]["value"].shape == (4, logits.shape[-1]) and trace.nodes["z"]["log_prob"].shape == (4,)


def test_svi_learns_the_logits_of_a_relaxed_categorical() -> None:
    """Model: p(y) = Concrete(1/2, logits = log(0.7, 0.2, 0.1)); nothing observed. The guide q(y) = Concrete(1/2,
    logits = theta) is fitted by SVI; the KL is minimised at theta = log p up to a constant, so softmax(theta)
    approaches (0.7, 0.2, 0.1)."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    target = torch.tensor([0.7, 0.2, 0.1]).log()

    def model() -> None:
        pyro.sample("y", ExpConcrete(0.5, logits=target))

    def guide() -> None:
        theta = pyro.param("theta", torch.zeros(3))
        pyro.sample("y", ExpConcrete(0.5, logits=theta))

    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO(num_particles=16, vectorize_particles=True))
    for _ in range(600):
        svi.step()
    fitted = torch.softmax(pyro.param("theta").detach(), -1)
    assert torch.allclose(fitted, target.exp(), atol=0.05), fitted
    assert math.isfinite(svi.evaluate_loss())
