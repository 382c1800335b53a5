"""ARMS: antithetic REINFORCE with K >= 2 copula-coupled samples, for binary variables (Dimitriev & Zhou 2021).

Approximates
    ∂/∂θ E_{b ~ Bernoulli(σ(θ))}[f(b)].
With
    K = num_samples >= 2 draws b^1..b^K, each Bernoulli(σ(θ)) marginally and coupled, independently for every
    coordinate, by the Dirichlet copula: d ~ Dirichlet(1_K), u_k = (1 − d_k)^{K−1}, b^k = 1[u_k < p] where p < ½
    and b^k = 1[1 − u_k < p] where p >= ½ (``dirichlet_copula_bernoulli``), and
        ĝ = 1/(1 − ρ) ⊙ (1/(K − 1)) Σ_k (f(b^k) − (1/K) Σ_j f(b^j)) (b^k − σ(θ)),
    the leave-one-out REINFORCE estimator (the same as (1/K) Σ_k (f(b^k) − (1/(K−1)) Σ_{j≠k} f(b^j)) ∇ log p(b^k))
    divided by 1 − ρ, ρ = Corr(b^j_i, b^k_i) (``arms_weight``). For dependent
    samples E[f(b^j) ∇_θi log p(b^k)] = ρ_i g_i (j ≠ k), so the baselines remove ρ g from the mean and the factor
    puts it back. With m = min(p, 1 − p) and C(m, m) = max(0, 2 m^{1/(K−1)} − 1)^{K−1} the copula's bivariate
    CDF, 1/(1 − ρ) = p (1 − p) / (m − C(m, m)). K = 2 gives DisARM exactly (u_2 = 1 − u_1, factor σ(|θ|));
    independent samples (ρ = 0) give leave-one-out REINFORCE. This is the paper's ARMS with the Dirichlet copula
    (ARMS-D; the Gaussian-copula variant ARMS-N is not implemented). The equation numbers of the paper could not
    be checked here (its full text was not available); the formula above was checked against the authors'
    released code (alekdimi/arms, networks.py, which adds 10⁻⁶ to the denominator of the factor) and, in the
    tests, against exact enumeration at K = 2, 3 and 5.
Requires
    binary variables only (``family="bernoulli"``) and num_samples >= 2. One f-evaluation per sample, at exact
    samples; one draw (one estimate) is the whole coupled set of K samples, so ``estimate(..., reduce=False)`` has
    one row and ``per_draw`` gives independent sets. ``concretelab train --estimator arms --samples K`` trains binary
    sigmoid belief nets with it on every layer (``LayeredARMS``).

References
    [1] Dimitriev & Zhou, "ARMS: Antithetic-REINFORCE-Multi-Sample Gradient for Binary Variables", ICML 2021.
    [2] Dong, Mnih & Tucker, "DisARM: An Antithetic Gradient Estimator for Binary Latent Variables", NeurIPS 2020.
    [3] Kool, van Hoof & Welling, "Buy 4 REINFORCE samples, get a baseline for free!", ICLR 2019 workshop.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import (
    MultiSampleEstimator,
    Objective,
    arms_weight,
    dirichlet_copula_bernoulli,
    evaluate,
    per_element,
)
from concretelab.estimators.layered import LayeredARMS

__all__ = ["ARMS"]


class ARMS(MultiSampleEstimator):
    """ARMS with the Dirichlet copula over num_samples >= 2 samples (unbiased; Bernoulli only; no options)."""

    name = "arms"
    families = ("bernoulli",)
    layered = LayeredARMS  # the same estimator applied layer by layer to a model (concretelab train)
    unbiased = True
    evaluations_per_sample = 1

    def per_set(
        self, f: Objective, logits: Tensor, num_samples: int, num_sets: int, generator: torch.Generator | None
    ) -> Tensor:
        k = num_samples
        sets = logits.expand(num_sets, *logits.shape)
        b = dirichlet_copula_bernoulli(sets, k, generator).transpose(0, 1)  # (sets, K, *shape), coupled along K
        with torch.no_grad():
            values = evaluate(f, b.reshape(num_sets * k, *logits.shape)).detach().to(logits.dtype)
        values = values.reshape(num_sets, k, *values.shape[1:])  # (sets, K[, *batch])
        centred = per_element(values - values.mean(dim=1, keepdim=True), 2 + logits.dim())
        score = b - torch.sigmoid(logits)  # (sets, K, *shape)
        return arms_weight(logits, k) * (centred * score).sum(dim=1) / (k - 1)
