"""Gumbel-Rao: straight-through Gumbel-Softmax Rao-Blackwellised over the noise (Paulus, Maddison & Krause 2021).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)]  (biased, like ST Gumbel-Softmax, with the same expectation and lower variance).
With
    b = one-hot argmax(θ + G) (or 1[θ + L > 0]) and M = ``inner_samples`` noise vectors G^m drawn from the
    law of the noise *given b* (conditional Gumbel / logistic sampling, see ``_base``),
    ĝ = (1/M) Σ_m (∂/∂θ softmax((θ + G^m)/τ))ᵀ ∇_b f(b),  with each G^m held fixed
    (Paulus et al. 2021: the estimator E[ĝ_STGS | b] is their eq. 7, this Monte Carlo form with M samples their
    eq. 10, the conditional noise their eq. 9; numbers of the ICLR 2021 OpenReview text).
    Their text after eq. 10 says the derivative is taken through θ and the sample θ + G^m both. Here G^m is held
    fixed, as in ĝ_STGS itself (its G does not depend on θ): the derivative through the draw, J·∂(θ + G^m)/∂θ,
    is not J, so it would not average to E[ĝ_STGS | b]. tests/estimators/test_biased.py checks that ĝ has
    ST-GS's mean.
Requires
    f differentiable, evaluated once per sample at the exact sample b; the M inner samples cost no extra
    f-evaluations. Options ``temperature`` τ > 0 (default 1.0) and ``inner_samples`` M >= 1 (default 10).

References
    [1] Paulus, Maddison & Krause, "Rao-Blackwellizing the Straight-Through Gumbel-Softmax Gradient
        Estimator", ICLR 2021.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from concretelab.checks import check_int as check_count
from concretelab.estimators._base import (
    RelaxedPathwiseEstimator,
    conditional_noise,
    conditional_perturbation,
    exact_sample,
    relax_point,
)

__all__ = ["GumbelRao"]


class GumbelRao(RelaxedPathwiseEstimator):
    """Gumbel-Rao (biased; both families). Options ``temperature`` (1.0) and ``inner_samples`` (10)."""

    name = "gumbel_rao"

    def __init__(self, family: str = "bernoulli", *, temperature: float = 1.0, inner_samples: int = 10) -> None:
        super().__init__(family, temperature=temperature)
        self.inner_samples = check_count("inner_samples", inner_samples)

    def point_map(self, logits: Tensor, num: int, generator: torch.Generator | None) -> Callable[[Tensor], Tensor]:
        m = self.inner_samples
        b = exact_sample(logits, num, self.family, generator)  # (num, *shape)
        b_rep = b.unsqueeze(0).expand(m, *b.shape)  # (M, num, *shape)
        z_cond = conditional_perturbation(logits, b_rep, self.family, conditional_noise(b_rep, self.family, generator))
        noise = (z_cond - logits).detach()  # G^m given b, held fixed: (M, num, *shape)

        def points(theta: Tensor) -> Tensor:
            soft = relax_point(theta + noise, self.temperature, self.family).mean(dim=0)  # (num, *shape)
            return b + soft - soft.detach()

        return points
