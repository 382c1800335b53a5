"""REBAR: REINFORCE with a reparameterised Concrete control variate (Tucker et al. 2017).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)]  (unbiased).
With
    z = θ + L (logistic; θ + G Gumbel for categorical variables), b = H(z) (1[z > 0] or one-hot argmax),
    z̃ ~ p(z | b) by conditional noise (u' = b((1 − p) + v p) + (1 − b) v (1 − p), z̃ = θ + logit(u'),
    differentiated through θ with v fixed; truncated Gumbels for categorical variables), σ_λ(z) = σ(z/λ)
    (softmax(z/λ)), and
        ĝ = [f(b) − η f(σ_λ(z̃))] ∇_θ log p_θ(b) + η ∇_θ f(σ_λ(z)) − η ∇_θ f(σ_λ(z̃))
    (Tucker et al. 2017, eq. 6 with c = η f(σ_λ(·))).
Requires
    f differentiable at relaxed points (and twice, for the adaptation); three f-evaluations per sample
    (f(b), f(σ_λ(z)), f(σ_λ(z̃))).

State: the scalar η and log λ adapt online: after each call one Adam step descends the mean squared norm
of that call's estimates (Tucker et al. 2017, Sec. 3.3: minimising the variance). ``adapt=False``
freezes them; ``reset()`` restores ``eta`` and ``temperature``.

References
    [1] Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein, "REBAR: Low-variance, unbiased gradient estimates
        for discrete latent variable models", NeurIPS 2017.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import Objective, PathwiseObjective, relax_point
from concretelab.estimators._control_variate import ControlVariateEstimator, control_variate_estimates, variance_step

__all__ = ["REBAR"]


class REBAR(ControlVariateEstimator):
    """REBAR (unbiased; both families; stateful).

    Options: ``eta`` (initial control-variate scale, default 1.0), ``temperature`` (initial λ, default 0.5),
    ``lr`` (Adam step size for η and log λ, default 1e-2), ``adapt`` (default True).
    """

    name = "rebar"

    def __init__(self, family: str = "bernoulli", *, eta: float = 1.0, temperature: float = 0.5, lr: float = 1e-2,
                 adapt: bool = True) -> None:
        super().__init__(family, eta=eta, temperature=temperature, lr=lr, adapt=adapt)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.optimizer = torch.optim.Adam([self.eta_param, self.log_temperature], lr=self.lr)

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        objective = PathwiseObjective(f, self.name)  # f, checked to be differentiable in its input
        eta = self.eta_param.to(logits.dtype)
        temperature = self.log_temperature.exp().to(logits.dtype)

        def control(z: Tensor, batch_dims: int) -> Tensor:
            return eta * objective(relax_point(z, temperature, self.family))

        grads = control_variate_estimates(f, logits, num, self.family, generator, control, create_graph=self.adapt,
                                          objective=objective)
        if self.adapt:
            self.last_second_moment = variance_step(grads, [self.eta_param, self.log_temperature], self.optimizer)
        return grads.detach()
