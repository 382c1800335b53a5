"""RELAX: a learned control variate for discrete variables (Grathwohl et al. 2018).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)]  (unbiased).
With
    z, b, z̃ as in REBAR and the surrogate c_φ(z) = η f(σ_λ(z)) + r_ρ(z), r_ρ a small MLP of the flattened
    perturbed logits (one tanh hidden layer; output layer initialised at zero, so RELAX starts as REBAR),
        ĝ = [f(b) − c_φ(z̃)] ∇_θ log p_θ(b) + ∇_θ c_φ(z) − ∇_θ c_φ(z̃)   (Grathwohl et al. 2018, eq. 7).
Requires
    f differentiable at relaxed points (and twice, for the adaptation); three f-evaluations per sample.

State: φ = (η, log λ, ρ) adapts online: after each call one Adam step descends the mean squared norm of
that call's estimates, an unbiased estimate of ∂E[ĝ²]/∂φ (Grathwohl et al. 2018, eq. 5, Algorithm 2).
The MLP is created at the first call for the size and dtype of the logits it sees (``reset()`` before switching
problem size); ``seed`` fixes its initialisation; ``adapt=False`` freezes φ.

References
    [1] Grathwohl, Choi, Wu, Roeder & Duvenaud, "Backpropagation through the Void: Optimizing control
        variates for black-box gradient estimation", ICLR 2018.
"""

from __future__ import annotations

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

    def _network(self, logits: Tensor) -> nn.Sequential:
        size = logits.numel()
        if self.net is None:
            gen = torch.Generator().manual_seed(self.seed)
            first = skip_init(nn.Linear, size, self.hidden, dtype=logits.dtype)
            last = skip_init(nn.Linear, self.hidden, 1, dtype=logits.dtype)
            with torch.no_grad():
                first.weight.normal_(0.0, size**-0.5, generator=gen)
                first.bias.zero_()
                last.weight.zero_()
                last.bias.zero_()
            self.net = nn.Sequential(first, nn.Tanh(), last).to(logits.device)
            params = [self.eta_param, self.log_temperature, *self.net.parameters()]
            self.optimizer = torch.optim.Adam(params, lr=self.lr)
        if self.net[0].in_features != size:
            raise ValueError(
                f"relax's network was built for logits with {self.net[0].in_features} elements, got shape "
                f"{tuple(logits.shape)}; call reset() before switching problems"
            )
        return self.net

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        net = self._network(logits)
        net_dtype = net[0].weight.dtype
        objective = PathwiseObjective(f, self.name)  # f, checked to be differentiable in its input
        eta = self.eta_param.to(logits.dtype)
        temperature = self.log_temperature.exp().to(logits.dtype)

        def control(z: Tensor) -> Tensor:
            residual = net(z.reshape(z.shape[0], -1).to(net_dtype)).squeeze(-1).to(z.dtype)
            return eta * objective(relax_point(z, temperature, self.family)) + residual

        grads = control_variate_estimates(f, logits, num, self.family, generator, control, create_graph=self.adapt,
                                          objective=objective)
        if self.adapt and self.optimizer is not None:
            params = [self.eta_param, self.log_temperature, *net.parameters()]
            self.last_second_moment = variance_step(grads, params, self.optimizer)
        return grads.detach()
