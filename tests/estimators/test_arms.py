"""ARMS (Dimitriev & Zhou 2021): the Dirichlet copula's draws and correlation, K = 2 is DisARM, unbiased at K > 2.

The statistical checks use fixed seeds and a 5-standard-error threshold (two-sided normal tail 5.7e-7 per
coordinate), as in test_unbiased.py.
"""

from __future__ import annotations

import pytest
import torch

from concretelab.estimators import get_estimator
from concretelab.estimators._base import arms_weight, dirichlet_copula_bernoulli, disarm_weight

THETA = torch.tensor([-3.0, -0.7, -0.2, 0.0, 0.3, 1.1, 2.5], dtype=torch.float64)
N = 100_000


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_copula_draws_have_bernoulli_marginals_and_the_documented_correlation(k):
    b = dirichlet_copula_bernoulli(THETA.expand(N, -1), k, torch.Generator().manual_seed(k))  # (k, N, 7)
    assert b.shape == (k, N, 7) and set(b.unique().tolist()) <= {0.0, 1.0}
    p = torch.sigmoid(THETA)
    for j in range(k):  # each draw is Bernoulli(p)
        assert ((b[j].mean(0) - p).abs() <= 5 * (p * (1 - p) / N).sqrt()).all(), j
    # every pair has correlation ρ with 1/(1 − ρ) = arms_weight: E[b_i b_j] = p² + ρ p (1 − p)
    rho = 1 - 1 / arms_weight(THETA, k)
    expected = p * p + rho * p * (1 - p)
    for i, j in [(0, 1), (0, k - 1), (k - 2, k - 1)]:
        if i == j:
            continue
        both = b[i] * b[j]
        se = both.std(0) / N**0.5
        assert ((both.mean(0) - expected).abs() <= 5 * se + 1e-12).all(), (i, j, both.mean(0), expected)
    assert bool((rho < 0).all())  # mutually antithetic: every pair negatively correlated


def test_copula_at_k2_is_disarms_antithetic_pair_and_the_weight_is_disarms():
    b = dirichlet_copula_bernoulli(THETA.expand(10_000, -1), 2, torch.Generator().manual_seed(0))
    negative = THETA < 0
    # p < ½: never both 1 (b = 1[u < p], b̃ = 1[1 − u < p]); p >= ½: never both 0
    assert not bool((b[0] * b[1])[:, negative].any())
    assert not bool(((1 - b[0]) * (1 - b[1]))[:, ~negative].any())
    torch.testing.assert_close(arms_weight(THETA, 2), torch.sigmoid(THETA.abs()))
    # so on the same pair ARMS's K = 2 estimate is DisARM's: (1/(K−1)) Σ_k (f_k − f̄)(b^k − p) · σ(|θ|)
    f = torch.tensor([[0.3], [-1.2]], dtype=torch.float64)  # f(b^1), f(b^2) for one pair
    pair = b[:, :1]  # (2, 1, 7)
    arms = arms_weight(THETA, 2) * ((f - f.mean(0)).unsqueeze(-1) * (pair - torch.sigmoid(THETA))).sum(0)
    disarm = 0.5 * (f[0] - f[1]) * disarm_weight(pair[0], pair[1], THETA)
    torch.testing.assert_close(arms, disarm)


def test_weight_is_finite_at_extreme_logits():
    theta = torch.tensor([-800.0, -50.0, 0.0, 50.0, 800.0], dtype=torch.float64)
    for k in (2, 4, 16):
        w = arms_weight(theta, k)
        assert bool(torch.isfinite(w).all()) and bool(((w >= 0.5) & (w <= 1)).all())
        b = dirichlet_copula_bernoulli(theta.expand(100, -1), k, torch.Generator().manual_seed(0))
        assert bool((b[:, :, :2] == 0).all()) and bool((b[:, :, 3:] == 1).all())


def test_estimate_is_one_row_per_coupled_set():
    f = lambda b: (b * torch.arange(3.0, dtype=b.dtype)).sum(-1) ** 2  # noqa: E731
    est = get_estimator("arms")
    logits = torch.tensor([0.2, -1.0, 0.7], dtype=torch.float64)
    assert est.estimate(f, logits, 4, reduce=False).shape == (1, 3)
    assert est.per_draw(f, logits, 4, 6).shape == (6, 3)


@pytest.mark.parametrize("k", [2, 4])
def test_copula_never_draws_the_rare_value_at_logit_30(k):
    """At logits ∓30 (probability 9.4e-14 of the rare value) 2^22 coupled sets hold no rare value: an exact sampler
    puts one there with probability 2^22 · k · 9.4e-14 < 2e-6, while a float32 uniform grid (rand() < p) would put
    about k · 2^22 · 2^-24 = k / 4 there on average (see tests/test_functional_discrete.py)."""
    g = torch.Generator().manual_seed(20261129)
    rare = 0
    for _ in range(4):
        logits = torch.tensor([-30.0, 30.0]).expand(2**20, 2)  # float32 logits: the decision is made in float64
        b = dirichlet_copula_bernoulli(logits, k, g)
        rare += int(b[..., 0].count_nonzero()) + int((1 - b[..., 1]).count_nonzero())
    assert rare == 0
