"""Straight-through Gumbel-Softmax (Jang, Gu & Poole 2017, Sec. 2.2).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)]  (biased).
With
    z = θ + G (Gumbel; logistic noise L for Bernoulli variables), forward b = one-hot argmax z (1[z > 0]),
    backward through the relaxed sample y = softmax(z/τ) (σ(z/τ)): ĝ = (∂y/∂θ)ᵀ ∇_b f(b), i.e. the
    surrogate b + y − stop_grad(y).
Requires
    f differentiable, evaluated at exact samples; one f-evaluation per sample. Option ``temperature`` τ > 0
    (default 1.0).

References
    [1] Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017.
    [2] Maddison, Mnih & Teh, "The Concrete Distribution", ICLR 2017 (the binary case, eq. 20-21).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from concretelab.estimators._base import RelaxedPathwiseEstimator, perturb_and_sample, relax_point

__all__ = ["STGumbel"]


class STGumbel(RelaxedPathwiseEstimator):
    """Straight-through Gumbel-Softmax (biased; both families). Option ``temperature`` (default 1.0)."""

    name = "st_gumbel"
    def point_map(self, logits: Tensor, num: int, generator: torch.Generator | None) -> Callable[[Tensor], Tensor]:
        noise, b = perturb_and_sample(logits, num, self.family, generator)  # (num, *shape) each

        def points(theta: Tensor) -> Tensor:
            soft = relax_point(theta + noise, self.temperature, self.family)
            return b + soft - soft.detach()

        return points
