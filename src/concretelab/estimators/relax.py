"""RELAX: a learned control variate for discrete variables (Grathwohl et al. 2018).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)]  (unbiased).
With
    z, b, z̃ as in REBAR and the surrogate c_φ(z) = η f(σ_λ(z)) + r_ρ(z), r_ρ a small MLP of the flattened
    perturbed logits (one tanh hidden layer; output layer initialised at zero, so RELAX starts as REBAR),
        ĝ = [f(b) − c_φ(z̃)] ∇_θ log p_θ(b) + ∇_θ c_φ(z) − ∇_θ c_φ(z̃)   (Grathwohl et al. 2018, the RELAX estimator).
Requires
    f differentiable at relaxed points (and twice, for the adaptation); three f-evaluations per sample.

State: φ = (η, log λ, ρ) adapts online: after each call one Adam step descends the mean squared norm of
that call's estimates, an unbiased estimate of ∂E[ĝ²]/∂φ (Grathwohl et al. 2018, the variance's gradient and their
RELAX algorithm). Equation and algorithm numbers are not cited: the only text of the paper found here, its
double-blind ICLR submission, numbers the estimator 9 and the variance's gradient 7 and has LAX's algorithm only in
its main text, and the published numbering could not be checked.
The MLP is created at the first call for the size and dtype of the logits it sees (``reset()`` before switching
problem size); ``seed`` fixes its initialisation; ``adapt=False`` freezes φ.

References
    [1] Grathwohl, Choi, Wu, Roeder & Duvenaud, "Backpropagation through the Void: Optimizing control
        variates for black-box gradient estimation", ICLR 2018.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from concretelab.checks import check_int as check_count
from concretelab.estimators._base import Objective, PathwiseObjective, relax_point
from concretelab.estimators._control_variate import ControlVariateEstimator, control_variate_estimates, variance_step

__all__ = ["RELAX"]


class RELAX(ControlVariateEstimator):
    """RELAX (unbiased; both families; stateful).

    Options: ``eta`` (1.0), ``temperature`` (initial λ, 0.5), ``hidden`` (MLP width, 32), ``lr`` (Adam step
    size for φ, 1e-2), ``adapt`` (True), ``seed`` (MLP initialisation, 0).
    """

    name = "relax"

    def __init__(self, family: str = "bernoulli", *, eta: float = 1.0, temperature: float = 0.5, hidden: int = 32,
                 lr: float = 1e-2, adapt: bool = True, seed: int = 0) -> None:
        super().__init__(family, eta=eta, temperature=temperature, lr=lr, adapt=adapt)
        self.hidden = check_count("hidden", hidden)
        self.seed = int(seed)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.net: nn.Sequential | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def state_dict(self) -> dict[str, Any]:
        net = None if self.net is None else {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        if self.optimizer is None:  # before the first call: η and λ only, at their initial values
            return {"eta": self.eta_param.detach().clone(), "log_temperature": self.log_temperature.detach().clone(),
                    "net": None, "optimizer": None}
        return {**super().state_dict(), "net": net}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["net"] is None:
            self.reset()
            with torch.no_grad():
                self.eta_param.copy_(state["eta"])
                self.log_temperature.copy_(state["log_temperature"])
            return
        weight = state["net"]["0.weight"]
        self._network(torch.zeros(weight.shape[1], dtype=weight.dtype))  # built as the first call would
        assert self.net is not None
        self.net.load_state_dict(state["net"])
        super().load_state_dict(state)

    def _network(self, example: Tensor) -> nn.Sequential:
        """c_φ's network for inputs shaped like ``example`` (the logits, or one example's for a per-example f)."""
        size = example.numel()
        if self.net is None:
            gen = torch.Generator().manual_seed(self.seed)
            first = skip_init(nn.Linear, size, self.hidden, dtype=example.dtype)
            last = skip_init(nn.Linear, self.hidden, 1, dtype=example.dtype)
            with torch.no_grad():
                first.weight.normal_(0.0, size**-0.5, generator=gen)
                first.bias.zero_()
                last.weight.zero_()
                last.bias.zero_()
            self.net = nn.Sequential(first, nn.Tanh(), last).to(example.device)
            params = [self.eta_param, self.log_temperature, *self.net.parameters()]
            self.optimizer = torch.optim.Adam(params, lr=self.lr)
        if self.net[0].in_features != size:
            raise ValueError(
                f"relax's network was built for inputs of {self.net[0].in_features} elements, got shape "
                f"{tuple(example.shape)}; call reset() before switching problems"
            )
        return self.net

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        objective = PathwiseObjective(f, self.name)  # f, checked to be differentiable in its input
        eta = self.eta_param.to(logits.dtype)
        temperature = self.log_temperature.exp().to(logits.dtype)

        def control(z: Tensor, batch_dims: int) -> Tensor:
            # the network sees one row (one example's part of it, for a per-example f) at a time
            net = self._network(logits[(0,) * batch_dims])
            inputs = z.reshape(*z.shape[:1 + batch_dims], -1).to(net[0].weight.dtype)
            residual = net(inputs).squeeze(-1).to(z.dtype)
            return eta * objective(relax_point(z, temperature, self.family)) + residual

        grads = control_variate_estimates(f, logits, num, self.family, generator, control, create_graph=self.adapt,
                                          objective=objective)
        if self.adapt and self.optimizer is not None and self.net is not None:
            params = [self.eta_param, self.log_temperature, *self.net.parameters()]
            self.last_second_moment = variance_step(grads, params, self.optimizer)
        return grads.detach()
