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

from collections.abc import Callable

import torch
from torch import Tensor

from concretelab.estimators._base import RelaxedPathwiseEstimator, perturb, relax_point

__all__ = ["Concrete"]


class Concrete(RelaxedPathwiseEstimator):
    """Relaxed reparameterisation gradient (biased; both families). Option ``temperature`` (default 1.0)."""

    name = "concrete"
    def point_map(self, logits: Tensor, num: int, generator: torch.Generator | None) -> Callable[[Tensor], Tensor]:
        noise = perturb(logits, num, self.family, generator) - logits

        def points(theta: Tensor) -> Tensor:
            return relax_point(theta + noise, self.temperature, self.family)

        return points
