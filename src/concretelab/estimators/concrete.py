"""The Concrete / Gumbel-Softmax relaxed estimator (Maddison, Mnih & Teh 2017; Jang et al. 2017).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)]  (biased: it is the exact gradient of the relaxed objective E[f(y)]).
With
    y = σ((θ + L)/λ) (Bernoulli: BinConcrete, Maddison et al. eq. 20) or y = softmax((θ + G)/λ)
    (categorical: Concrete, Def. 1), and ĝ = ∇_θ f(y) by the reparameterisation trick.
Requires
    f defined and differentiable at relaxed points (in [0, 1]^d or on the simplex); one f-evaluation per
    sample. Option ``temperature`` λ > 0 (default 1.0); the bias vanishes as λ → 0 while the variance grows.

References
    [1] Maddison, Mnih & Teh, "The Concrete Distribution", ICLR 2017.
    [2] Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import (
    Objective,
    PathwiseObjective,
    RelaxedPathwiseEstimator,
    pathwise_per_sample,
    perturb,
    relax_point,
)

__all__ = ["Concrete"]


class Concrete(RelaxedPathwiseEstimator):
    """Relaxed reparameterisation gradient (biased; both families). Option ``temperature`` (default 1.0)."""

    name = "concrete"
    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        objective = PathwiseObjective(f, self.name)  # f, checked to be differentiable in its input
        noise = perturb(logits, num, self.family, generator) - logits

        def surrogate(theta: Tensor) -> Tensor:
            return objective(relax_point(theta + noise, self.temperature, self.family))

        return pathwise_per_sample(surrogate, logits, num, objective)
