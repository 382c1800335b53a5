"""Deliberately wrong estimators (test-only, not in the registry): controls showing that a test can reject one."""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators import MultiSampleEstimator
from concretelab.estimators._base import Objective, evaluate, exact_sample, mean_param


class BatchMeanReinforce(MultiSampleEstimator):
    """REINFORCE whose baseline is the mean of f over the set of K samples *including* the sample itself.

        ĝ = (1/K) Σ_k (f(b^k) − (1/K) Σ_j f(b^j)) ∇_θ log p_θ(b^k)

    Since f(b^k) − (1/K) Σ_j f(b^j) = ((K − 1)/K) (f(b^k) − (1/(K − 1)) Σ_{j≠k} f(b^j)), this is ``reinforce_loo``
    times (K − 1)/K on the same samples: E[ĝ] = (1 − 1/K) g, a bias of −g/K (the slip of forgetting that a
    baseline must not depend on the sample it multiplies). Both families; K = ``num_samples`` >= 2.
    """

    name = "batch_mean_reinforce"
    unbiased = False
    evaluations_per_sample = 1

    def per_set(
        self, f: Objective, logits: Tensor, num_samples: int, num_sets: int, generator: torch.Generator | None
    ) -> Tensor:
        b = exact_sample(logits, num_sets * num_samples, self.family, generator)
        with torch.no_grad():
            values = evaluate(f, b).detach().to(logits.dtype).reshape(num_sets, num_samples)
        signal = values - values.mean(dim=1, keepdim=True)  # the bug: f(b^k) is part of its own baseline
        score = (b - mean_param(logits, self.family)).reshape(num_sets, num_samples, *logits.shape)
        return (signal.reshape(num_sets, num_samples, *([1] * logits.dim())) * score).mean(dim=1)


CONTROLS = {cls.name: cls for cls in (BatchMeanReinforce,)}
