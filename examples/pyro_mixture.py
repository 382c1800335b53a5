"""A concretelab distribution as a sample site in a Pyro model, trained with SVI.

A mixture of K = 3 Gaussians in 2-D where each point's component is a relaxed one-hot vector: the model draws
it from ``concretelab.pyro.Concrete(1/2, uniform)``, the guide from ``Concrete(2/3, logits(x))`` with logits
given by a small amortising network, and the point is Normal(sum_k y_k mu_k, 0.3). ``Trace_ELBO`` uses the
reparameterised Concrete samples, so the component means mu and the network are fitted by plain SVI (a
discrete assignment would need enumeration or a score-function estimator). The script prints the fitted means
beside the true ones (matched by nearest neighbour) and the share of points whose most likely component, under
the guide, is the one that generated them (up to relabelling).

    python examples/pyro_mixture.py --smoke
    python examples/pyro_mixture.py --steps 5000

Needs ``pip install 'concretelab[pyro]'``. What does not fit Pyro is in ``concretelab.pyro``'s docstring.
"""

from __future__ import annotations

import argparse
import itertools

import torch
from torch import nn

from _example_support import require

pyro = require("pyro", "pyro")  # before concretelab.pyro, which needs it too

from pyro.infer import SVI, Trace_ELBO  # noqa: E402 - after the check for the extra
from pyro.optim import Adam  # noqa: E402

from concretelab.pyro import Concrete  # noqa: E402

TRUE_MEANS = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])


def model(x: torch.Tensor) -> None:
    means = pyro.param("means", torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))
    with pyro.plate("points", x.shape[0]):
        y = pyro.sample("y", Concrete(0.5, logits=torch.zeros(x.shape[0], 3)))  # (N, 3) on the simplex
        pyro.sample("x", pyro.distributions.Normal(y @ means, 0.3).to_event(1), obs=x)


def make_guide(net: nn.Module):
    def guide(x: torch.Tensor) -> None:
        pyro.module("assign", net)
        with pyro.plate("points", x.shape[0]):
            pyro.sample("y", Concrete(2 / 3, logits=net(x)))

    return guide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="300 steps on 150 points, seconds")
    parser.add_argument("--steps", type=int, default=5000, help="SVI steps")
    parser.add_argument("--points", type=int, default=600, help="points drawn from the mixture")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.points = 300, 150
    pyro.set_rng_seed(0)
    labels = torch.arange(args.points) % 3
    x = TRUE_MEANS[labels] + 0.3 * torch.randn(args.points, 2)
    net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 3))
    guide = make_guide(net)
    svi = SVI(model, guide, Adam({"lr": 0.02}), Trace_ELBO())
    for step in range(1, args.steps + 1):
        loss = svi.step(x)
        if step % max(1, args.steps // 5) == 0:
            print(f"step {step:>5}: -ELBO = {loss / args.points:.3f} per point")
    fitted = pyro.param("means").detach()
    best = min(itertools.permutations(range(3)), key=lambda p: float((fitted[list(p)] - TRUE_MEANS).norm()))
    with torch.no_grad():
        assigned = net(x).argmax(-1)
    relabel = torch.tensor(best).argsort()  # fitted component j is true component relabel[j]
    accuracy = float((relabel[assigned] == labels).float().mean())
    for k in range(3):
        print(f"true mean {TRUE_MEANS[k].tolist()}  fitted {[round(v, 2) for v in fitted[best[k]].tolist()]}")
    print(f"assignment accuracy: {accuracy:.1%}")


if __name__ == "__main__":
    main()
