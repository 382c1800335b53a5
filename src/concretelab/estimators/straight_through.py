"""Straight-through estimator, sigmoid/softmax variant (Bengio, Léonard & Courville 2013).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)]  (biased).
With
    b ~ p_θ exact in the forward pass; in the backward pass b is treated as if it were its mean
    p = σ(θ) (or softmax(θ)): ĝ = J_p(θ)ᵀ ∇_b f(b), i.e. ∇_b f(b) ⊙ σ'(θ) for Bernoulli variables.
    This is the variant "b + p − stop_grad(p)" (Bengio et al. 2013, Sec. 3, the straight-through estimator
    applied through the sigmoid; Chung, Ahn & Bengio 2017 call it "ST with sigmoid"); the other common variant,
    which passes ∇_b f through as ∇_θ unchanged (identity), is not provided.
Requires
    f differentiable on [0, 1]^d (or the simplex), evaluated at exact samples; one f-evaluation per sample.

References
    [1] Bengio, Léonard & Courville, "Estimating or Propagating Gradients Through Stochastic Neurons for
        Conditional Computation", arXiv:1308.3432, 2013.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from concretelab.estimators._base import (
    PathwiseEstimator,
    exact_sample,
    mean_param,
    softmax_jacobian_surrogate,
)

__all__ = ["StraightThrough"]


class StraightThrough(PathwiseEstimator):
    """Straight-through through σ(θ) / softmax(θ) (biased; both families; no options)."""

    name = "straight_through"

    def point_map(self, logits: Tensor, num: int, generator: torch.Generator | None) -> Callable[[Tensor], Tensor]:
        b = exact_sample(logits, num, self.family, generator)

        def points(theta: Tensor) -> Tensor:
            # value b, gradient J_p(θ)ᵀ ∇_b f
            return b + softmax_jacobian_surrogate(mean_param(theta, self.family), theta, self.family)

        return points
