"""ARM: the augment-REINFORCE-merge estimator for binary variables (Yin & Zhou 2019).

Approximates
    ∂/∂θ E_{b ~ Bernoulli(σ(θ))}[f(b)].
With
    one u ~ Uniform(0, 1)^d shared by both evaluations,
    ĝ = [f(1[u > σ(−θ)]) − f(1[u < σ(θ)])] (u − 1/2)   (Yin & Zhou 2019, Theorem 1).
    Written with L = logit(u) (standard logistic): 1[u > σ(−θ)] = 1[θ + L > 0], 1[u < σ(θ)] = 1[θ − L > 0],
    u − 1/2 = σ(L) − 1/2, which is exact for every finite θ.
Requires
    binary variables only (``family="bernoulli"``; the categorical ARSM generalisation is not implemented).
    Two f-evaluations per sample, at exact binary points.

References
    [1] Yin & Zhou, "ARM: Augment-REINFORCE-Merge Gradient for Stochastic Binary Networks", ICLR 2019.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import Objective, SingleSampleEstimator, evaluate, logistic_pair, per_element

__all__ = ["ARM"]


class ARM(SingleSampleEstimator):
    """ARM (unbiased; Bernoulli only; no options)."""

    name = "arm"
    families = ("bernoulli",)
    unbiased = True
    evaluations_per_sample = 2

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        noise, b_minus, b_plus = logistic_pair(logits, num, generator)  # b₋ = 1[u < σ(θ)], b₊ = 1[u > σ(−θ)]
        with torch.no_grad():
            values = evaluate(f, torch.cat([b_plus, b_minus])).detach().to(logits.dtype)
        diff = per_element(values[:num] - values[num:], 1 + logits.dim())
        return diff * (torch.sigmoid(noise) - 0.5)
