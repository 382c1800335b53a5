"""DisARM: antithetic, Rao-Blackwellised ARM for binary variables (Dong, Mnih & Tucker 2020).

Approximates
    ∂/∂θ E_{b ~ Bernoulli(σ(θ))}[f(b)].
With
    the antithetic pair b = 1[u < σ(θ)], b̃ = 1[1 − u < σ(θ)] from one u ~ Uniform(0, 1)^d, and
    ĝ_i = ½ (f(b) − f(b̃)) (−1)^{b̃_i} 1[b_i ≠ b̃_i] σ(|θ_i|)   (Dong et al. 2020, eq. 5).
    With L = logit(u): b = 1[θ − L > 0], b̃ = 1[θ + L > 0] (exact for every finite θ).
Requires
    binary variables only (``family="bernoulli"``; the categorical U2G/ARSM generalisations are not
    implemented). Two f-evaluations per sample; lower variance than ARM (it is ARM conditioned on the pair).

References
    [1] Dong, Mnih & Tucker, "DisARM: An Antithetic Gradient Estimator for Binary Latent Variables",
        NeurIPS 2020.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import (
    Objective,
    SingleSampleEstimator,
    disarm_weight,
    evaluate,
    logistic_pair,
    per_element,
)
from concretelab.estimators.layered import LayeredDisARM

__all__ = ["DisARM"]


class DisARM(SingleSampleEstimator):
    """DisARM (unbiased; Bernoulli only; no options)."""

    name = "disarm"
    families = ("bernoulli",)
    layered = LayeredDisARM
    unbiased = True
    evaluations_per_sample = 2

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        _, b, b_anti = logistic_pair(logits, num, generator)  # 1[u < σ(θ)], 1[1 − u < σ(θ)]
        with torch.no_grad():
            values = evaluate(f, torch.cat([b, b_anti])).detach().to(logits.dtype)
        half_diff = 0.5 * per_element(values[:num] - values[num:], 1 + logits.dim())
        return half_diff * disarm_weight(b, b_anti, logits)
