"""ReinMax: a second-order (Heun-method) correction of straight-through (Liu et al. 2023).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)]  (biased; second-order accurate where straight-through is first-order).
With
    the paper's Algorithm 2, for one-hot D ~ Categorical(π0):
        π0 = softmax(θ),  π1 = (D + softmax(θ/τ)) / 2,
        π1 ← softmax(stop_grad(log π1 − θ) + θ)    (value π1, Jacobian of softmax at π1),
        π2 = 2 π1 − π0 / 2,  output D + π2 − stop_grad(π2),
    so ĝ = (2 J(π1) − J(π0)/2)ᵀ ∇_D f(D) with J(π) = diag π − π πᵀ. We build the same gradient from the
    Jacobians directly (no log of π1, which underflows at extreme logits). A Bernoulli variable is the
    two-category case with logits (θ, 0): ĝ = (2 π1 (1 − π1) − π0 (1 − π0)/2) ∂f/∂b with π0 = σ(θ),
    π1 = (b + σ(θ/τ))/2.
Requires
    f differentiable, evaluated at exact samples; one f-evaluation per sample. Option ``temperature`` τ > 0,
    default 1.0 as the authors recommend (they advise τ >= 1; smaller values are allowed here).

References
    [1] Liu, Wang, Chen, Han & Gao, "Bridging Discrete and Backpropagation: Straight-Through and Beyond",
        NeurIPS 2023 (Algorithm 2).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from concretelab.estimators._base import (
    RelaxedPathwiseEstimator,
    exact_sample,
    mean_param,
    softmax_jacobian_surrogate,
)

__all__ = ["ReinMax"]


class ReinMax(RelaxedPathwiseEstimator):
    """ReinMax (biased; both families). Option ``temperature`` (default 1.0)."""

    name = "reinmax"
    def point_map(self, logits: Tensor, num: int, generator: torch.Generator | None) -> Callable[[Tensor], Tensor]:
        d = exact_sample(logits, num, self.family, generator)  # (num, *shape)
        pi0 = mean_param(logits, self.family)
        pi1 = 0.5 * (d + mean_param(logits / self.temperature, self.family))

        def points(theta: Tensor) -> Tensor:
            correction = 2.0 * softmax_jacobian_surrogate(pi1, theta, self.family) - 0.5 * softmax_jacobian_surrogate(
                pi0, theta, self.family
            )
            return d + correction

        return points
