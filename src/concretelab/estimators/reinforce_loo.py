"""REINFORCE with the leave-one-out multi-sample baseline (Kool, van Hoof & Welling 2019).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)].
With
    K = num_samples >= 2 samples b^1..b^K and
    ĝ = (1/K) Σ_k (f(b^k) − (1/(K−1)) Σ_{j≠k} f(b^j)) ∇_θ log p_θ(b^k);
    each baseline uses only the other samples, so ĝ is unbiased.
Requires
    f evaluated at exact samples only. One f-evaluation per sample; one draw (one estimate) uses the whole
    set of K samples, so ``estimate(..., reduce=False)`` has one row and ``per_draw`` gives independent sets.

References
    [1] Kool, van Hoof & Welling, "Buy 4 REINFORCE samples, get a baseline for free!", ICLR 2019
        Deep RL Meets Structured Prediction workshop (eq. 9).
    [2] Mnih & Rezende, "Variational inference for Monte Carlo objectives", ICML 2016 (Sec. 3).
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import MultiSampleEstimator, Objective, scored_sets, weighted_scores
from concretelab.estimators.layered import LayeredReinforceLOO
from concretelab.estimators.score import leave_one_out_baseline

__all__ = ["ReinforceLOO"]


class ReinforceLOO(MultiSampleEstimator):
    """Leave-one-out baseline over num_samples >= 2 samples (unbiased; both families; no options)."""

    name = "reinforce_loo"
    layered = LayeredReinforceLOO  # the same estimator applied layer by layer to a model (concretelab train)
    unbiased = True
    evaluations_per_sample = 1

    def per_set(
        self, f: Objective, logits: Tensor, num_samples: int, num_sets: int, generator: torch.Generator | None
    ) -> Tensor:
        values, scores = scored_sets(f, logits, num_samples, num_sets, self.family, generator)
        signal = values - leave_one_out_baseline(values, dim=1)  # (sets, K)
        return weighted_scores(signal, scores).mean(dim=1)
