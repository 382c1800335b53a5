"""RODEO: leave-one-out REINFORCE with discrete Stein-operator control variates (Shi, Zhou, Hwang, Titsias & Mackey
2022).

Approximates
    ∂/∂θ E_{b ~ Bernoulli(σ(θ))}[f(b)].
With
    K = num_samples >= 2 independent samples x_1..x_K (x_k ∈ {0,1}^D), scores s(y) = y − p, and the Gibbs
    (neighbourhood) Stein operator of q = Bernoulli(p): for a function h on {0,1}^D, with x^{(i)} the point x with
    coordinate i flipped and r_i(x) = q(x^{(i)}_i) the probability of the flipped value,
        (A h)(x) = Σ_i r_i(x) (h(x^{(i)}) − h(x)),    E_q[(A h)(x)] = 0 for every h
    (each term is one Gibbs update of coordinate i, which leaves q invariant), and applied to the vector h s,
        (A[h s])(x)_i = Σ_j r_j(x) (h(x^{(j)}) s_i(x^{(j)}) − h(x) s_i(x)) = s_i(x) ((A h)(x) − h(x^{(i)})).
    Each sample k gets a function h_k built from the *other* samples only, so that its control variates have mean
    zero given them:
        h_k(y) = ḡ_{−k} · (y − p),   ḡ_{−k} = (1/(K−1)) Σ_{j≠k} ∇f(x_j)
    (the leave-one-out average of f's first-order Taylor expansions at the other samples, centred at its q-mean), and
        ĝ = (1/K) Σ_k [ (f(x_k) − (1/(K−1)) Σ_{j≠k} (f(x_j) + α (A h_j)(x_j))) s(x_k) + β (A[h_k s])(x_k) ].
    α's term improves the leave-one-out baseline (for a linear f, f(x) + (A f)(x) = f(p) = E[f] exactly); β's term is
    the Stein control variate for the REINFORCE term itself. Both are unbiased for every α, β and h.
Requires
    binary variables (``family="bernoulli"``), num_samples >= 2, and f differentiable with respect to its input at
    the exact samples (ValueError naming the estimator otherwise): one f-evaluation per sample and one backward
    pass, no extra evaluation of f (the neighbours x^{(i)} enter through the surrogates h only).

The paper's default surrogate is a small neural network of two inputs built as above (the Taylor expansions at the
other samples and their mean f), trained with α and β to minimise the variance. Here the network is left out: h_k is
the linear surrogate itself, centred at its q-mean (the simplest sample-based function of the paper's construction; the
released code's ``discrete_stein_avg`` feeds the same Taylor term, uncentred, and the others' mean f to the network)
and only the scalars α, β are learned (one
Adam step per call on the mean squared norm of the call's estimates, as the authors train them). They start at α = 1,
β = ½: for a linear f = w · y the surrogates are exact, α = 1 makes every baseline f(p) = E[f], and β = ½ leaves ½ w_i
s_i(x) (2 x_i − 1) in coordinate i, whose mean is the gradient w_i p_i (1 − p_i) and whose spread involves w_i alone
(see docs/estimators.md). The authors start both at 0. ``adapt=False`` freezes them; ``reset()`` restores ``alpha``
and ``beta``. The operator is summed over coordinates (the authors' code averages, which only rescales α, β). The
authors' network has two outputs, one the h of the α term and one a second function used only in the β term; here
one h_k serves both (each is unbiased, since each depends only on the other samples). The paper's equation numbers
could not be checked here (its full text was not available); the formula was checked against the authors' released
code (thjashin/rodeo, networks.py: the same signs of α and β and the same 1/(K−1) and 1/K factors), the estimator
against exact enumeration in the tests, and the operator's zero mean for arbitrary h by enumeration.

References
    [1] Shi, Zhou, Hwang, Titsias & Mackey, "Gradient Estimation with Discrete Stein Operators", NeurIPS 2022.
    [2] Titsias & Shi, "Double Control Variates for Gradient Estimation in Discrete Latent Variable Models",
        AISTATS 2022.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.estimators._base import (
    Objective,
    TaylorSamples,
    leave_one_out_mean,
)
from concretelab.estimators._control_variate import AdaptedCoefficients, coefficient

__all__ = ["RODEO", "flip_probabilities", "gibbs_stein", "gibbs_stein_score"]


def flip_probabilities(x: Tensor, p: Tensor) -> Tensor:
    """r_i(x) = q(1 − x_i) = x_i (1 − p_i) + (1 − x_i) p_i, the probability of each coordinate's other value."""
    return x * (1 - p) + (1 - x) * p


def gibbs_stein(h_x: Tensor, h_flips: Tensor, x: Tensor, p: Tensor) -> Tensor:
    """(A h)(x) = Σ_i r_i(x) (h(x^{(i)}) − h(x)) for binary x (..., D); ``h_x`` (...,) is h(x) and ``h_flips``
    (..., D) holds h at the D points with one coordinate flipped. Returns (...,)."""
    return (flip_probabilities(x, p) * (h_flips - h_x.unsqueeze(-1))).sum(-1)


def gibbs_stein_score(h_x: Tensor, h_flips: Tensor, x: Tensor, p: Tensor) -> Tensor:
    """(A[h s])(x)_i = s_i(x) ((A h)(x) − h(x^{(i)})), s(x) = x − p: the Gibbs Stein operator applied to h times the
    score, coordinate by coordinate (the j ≠ i flips leave s_i unchanged, and r_i (1 − 2 x_i) = −s_i). (..., D)."""
    return (x - p) * (gibbs_stein(h_x, h_flips, x, p).unsqueeze(-1) - h_flips)


class RODEO(AdaptedCoefficients):
    """RODEO with the Gibbs Stein operator and linear surrogates from the other samples (unbiased; Bernoulli only;
    stateful).

    Options: ``alpha`` (initial coefficient of the baseline's Stein control variate, default 1.0), ``beta`` (of the
    score's, default 0.5), ``lr`` (Adam step size for both, default 1e-2), ``adapt`` (default True).
    """

    name = "rodeo"
    families = ("bernoulli",)
    evaluations_per_sample = 1
    coefficients = ("alpha", "beta")
    alpha = coefficient("alpha")
    beta = coefficient("beta")

    def __init__(self, family: str = "bernoulli", *, alpha: float = 1.0, beta: float = 0.5, lr: float = 1e-2,
                 adapt: bool = True) -> None:
        super().__init__(family, lr=lr, adapt=adapt, alpha=alpha, beta=beta)

    def per_set(
        self, f: Objective, logits: Tensor, num_samples: int, num_sets: int, generator: torch.Generator | None
    ) -> Tensor:
        k, shape = num_samples, logits.shape
        taylor = TaylorSamples.draw(f, logits, k, num_sets, generator, self.name)
        values = taylor.values  # f(x_k), (sets, K[, *batch])
        batch = values.shape[2:]  # () for one f per row; the batch axes of a per-example f
        x, p = taylor.samples.reshape(num_sets, k, *batch, -1), taylor.probs.reshape(*batch, -1)  # (sets, K, ..., D)
        score = taylor.scores.reshape(num_sets, k, *batch, -1)
        slope = taylor.slopes.reshape(num_sets, k, *batch, -1)  # ḡ_{−k}
        h_x = (slope * score).sum(-1)  # h_k(x_k) = ḡ_{−k} · (x_k − p), (sets, K)
        h_flips = h_x.unsqueeze(-1) + slope * (1 - 2 * x)  # h_k(x_k^{(i)}), (sets, K, D)
        stein = gibbs_stein(h_x, h_flips, x, p)  # (A h_k)(x_k), (sets, K)
        stein_score = gibbs_stein_score(h_x, h_flips, x, p)  # (A[h_k s])(x_k), (sets, K, D)
        with torch.enable_grad():
            alpha, beta = self.coefficient_values(logits.dtype)
            baseline = leave_one_out_mean(values + alpha * stein, dim=1)  # (sets, K)
            per_sample = (values - baseline).unsqueeze(-1) * score + beta * stein_score  # (sets, K, D)
            estimates = per_sample.mean(dim=1).reshape(num_sets, *shape)
        self.adapt_to(estimates)
        return estimates.detach()
