"""Double control variates: leave-one-out REINFORCE plus a Taylor-expansion global control variate (Titsias & Shi 2022).

Approximates
    ∂/∂θ E_{b ~ Bernoulli(σ(θ))}[f(b)].
With
    K = num_samples >= 2 independent samples b^1..b^K, scores s_k = b^k − p (p = σ(θ)), gradients g_k = ∇_b f(b^k) at
    the samples, their leave-one-out means ḡ_{−k} = (1/(K−1)) Σ_{j≠k} g_j and the linear control variates
    c_k = ḡ_{−k} · (b^k − p) (the first-order Taylor term of f, with a slope that does not depend on b^k):
        f̃_k = f(b^k) − α c_k,
        ĝ = (1/K) Σ_k (f̃_k − (1/(K−1)) Σ_{j≠k} f̃_j) s_k + α ḡ ⊙ p (1 − p),   ḡ = (1/K) Σ_k g_k.
    The first control variate is the leave-one-out baseline; the second, global one is the Taylor term, whose
    expectation E[c_k s_k] = E[ḡ_{−k}] ⊙ p (1 − p) is added back (E[(ḡ_{−k} · s_k) s_k] = ḡ_{−k} ⊙ Var(b) given the
    other samples), so ĝ is unbiased for every α; the baselines' own c_j have mean zero against s_k (j ≠ k).
    This is the form of the authors' released implementation (the slope is the mean gradient at the other samples;
    f is never evaluated at the continuous point p). α = 0 is ``reinforce_loo``.
Requires
    binary variables (``family="bernoulli"``), num_samples >= 2, and f differentiable with respect to its input at
    the exact samples (ValueError naming the estimator otherwise): one f-evaluation per sample and one backward pass
    through f, no evaluation at relaxed points.

State: the scalar α adapts online: after each call one Adam step (``lr``) descends the mean squared norm of that
call's estimates (the variance up to a constant independent of α), as the authors train it. The authors start α
at 0; the default here starts at 1, the coefficient of the Taylor expansion itself (for a linear f, α = 1 removes
all of f but its expectation from every signal), so a fresh estimator, which is what the lab measures, already uses
the control variate. ``adapt=False`` freezes α; ``reset()`` restores ``alpha``. The authors' code adds α c_k and
subtracts the added-back term, the same estimator under α → −α; here α = 1 is the Taylor expansion's own sign. The
paper's equation numbers could not be checked here (its full text was not available); the formula was checked against
the authors' released code (thjashin/double-cv, src/networks.py) and the estimator against exact enumeration in the
tests.

References
    [1] Titsias & Shi, "Double Control Variates for Gradient Estimation in Discrete Latent Variable Models",
        AISTATS 2022.
    [2] Kool, van Hoof & Welling, "Buy 4 REINFORCE samples, get a baseline for free!", ICLR 2019 workshop.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import (
    Objective,
    TaylorSamples,
    leave_one_out_mean,
    per_element,
)
from concretelab.estimators._control_variate import AdaptedCoefficients, coefficient

__all__ = ["DoubleCV"]


class DoubleCV(AdaptedCoefficients):
    """Double control variates (unbiased; Bernoulli only; stateful).

    Options: ``alpha`` (initial coefficient of the Taylor control variate, default 1.0), ``lr`` (Adam step size for
    α, default 1e-2), ``adapt`` (default True).
    """

    name = "double_cv"
    families = ("bernoulli",)
    evaluations_per_sample = 1
    coefficients = ("alpha",)
    alpha = coefficient("alpha")

    def __init__(self, family: str = "bernoulli", *, alpha: float = 1.0, lr: float = 1e-2, adapt: bool = True) -> None:
        super().__init__(family, lr=lr, adapt=adapt, alpha=alpha)

    def per_set(
        self, f: Objective, logits: Tensor, num_samples: int, num_sets: int, generator: torch.Generator | None
    ) -> Tensor:
        k = num_samples
        taylor = TaylorSamples.draw(f, logits, k, num_sets, generator, self.name)
        values, p, score, slope = taylor.values, taylor.probs, taylor.scores, taylor.slopes  # slope: ḡ_{−k}
        cv = (slope * score).flatten(taylor.values.dim()).sum(-1)  # c_k = ḡ_{−k} · s_k, (sets, K[, *batch])
        correction = slope.mean(dim=1) * p * (1 - p)  # ḡ ⊙ p (1 − p) (the mean of the ḡ_{−k} is ḡ): E[c_k s_k]
        with torch.enable_grad():
            (alpha,) = self.coefficient_values(logits.dtype)
            signal = values - alpha * cv  # f̃_k
            centred = signal - leave_one_out_mean(signal, dim=1)  # f̃_k − mean of the others'
            estimates = (per_element(centred, score.dim()) * score).mean(dim=1) + alpha * correction
        self.adapt_to(estimates)
        return estimates.detach()
