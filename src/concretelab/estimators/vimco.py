"""VIMCO: multi-sample score-function estimator with leave-one-out baselines (Mnih & Rezende 2016).

Approximates
    ∂/∂θ E_{b^1..b^K iid p_θ}[L̂],  L̂ = log (1/K) Σ_k exp f(b^k)  (the multi-sample objective over the
    K = num_samples >= 2 draws of one estimate; with f = log p(x, h) − log q(h | x) this is the
    importance-weighted bound L_K).
With
    ĝ = Σ_k (L̂ − L̂_{−k}) ∇_θ log p_θ(b^k),  where L̂_{−k} is L̂ with f(b^k) replaced by the mean of the
    others (1/(K−1)) Σ_{j≠k} f(b^j)  (Mnih & Rezende 2016, eq. 8-10). The paper's second term
    Σ_k w_k ∇_θ f(b^k), w = softmax(f), is zero here because f does not depend on θ.
Requires
    num_samples >= 2; one f-evaluation per sample at exact samples. One draw is the whole set of K samples
    (``estimate(..., reduce=False)`` has one row). Its target differs from ∂/∂θ E[f(b)]: compare it with
    ``exact_multisample_gradient``.

References
    [1] Mnih & Rezende, "Variational inference for Monte Carlo objectives", ICML 2016.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import MultiSampleEstimator, Objective, scored_sets, weighted_scores
from concretelab.estimators.layered import LayeredVIMCO
from concretelab.estimators.score import vimco_signals

__all__ = ["VIMCO"]


class VIMCO(MultiSampleEstimator):
    """VIMCO (unbiased for the multi-sample objective; both families; no options)."""

    name = "vimco"
    layered = LayeredVIMCO  # the same estimator applied layer by layer to a model (concretelab train)
    unbiased = True
    evaluations_per_sample = 1
    objective = "multisample"  # its target is ∂/∂θ E[log mean_k exp f(b^k)], not ∂/∂θ E[f(b)]

    def per_set(
        self, f: Objective, logits: Tensor, num_samples: int, num_sets: int, generator: torch.Generator | None
    ) -> Tensor:
        values, scores = scored_sets(f, logits, num_samples, num_sets, self.family, generator)
        signal, _ = vimco_signals(values, dim=1)  # (sets, K)
        return weighted_scores(signal, scores).sum(dim=1)
