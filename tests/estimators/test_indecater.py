"""IndeCateR (De Smet et al. 2023): exact for separable f, its evaluation count, and chunking that changes nothing."""

from __future__ import annotations

import pytest
import torch

import concretelab.estimators.indecater as indecater
from concretelab.estimators import exact_gradient, get_estimator

THETA = {
    "bernoulli": torch.tensor([[0.4, -1.3, 2.0], [0.0, 0.8, -0.2]], dtype=torch.float64),
    "categorical": torch.tensor([[0.3, -1.0, 2.0, 0.1], [0.0, 1.0, -0.5, -2.0]], dtype=torch.float64),
}


class Counting:
    def __init__(self, f):
        self.f, self.rows, self.calls = f, 0, 0

    def __call__(self, b):
        self.rows += b.shape[0]
        self.calls += 1
        return self.f(b)


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_exact_with_zero_variance_for_a_separable_f(family):
    """f = Σ_i h_i(b_i): the sum over variable i's categories is then the whole gradient of its term, so every
    sample's estimate is the exact gradient (a property of the Rao-Blackwellisation, not of averaging)."""
    theta = THETA[family]
    w = torch.linspace(-2.0, 3.0, theta.numel(), dtype=torch.float64).reshape(theta.shape)

    def f(b):
        return torch.sin(3 * b * w).sum(dim=tuple(range(1, b.dim())))

    est = get_estimator("indecater", family)
    draws = est.per_draw(f, theta, 1, 50, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws, exact_gradient(f, theta, family).expand_as(draws), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_evaluation_count_is_one_plus_n_times_k_minus_1(family):
    theta = THETA[family]
    est = get_estimator("indecater", family)
    n, k = (theta.numel(), 2) if family == "bernoulli" else (theta.numel() // theta.shape[-1], theta.shape[-1])
    assert est.evaluations(theta) == 1 + n * (k - 1)
    f = Counting(lambda b: (b.reshape(b.shape[0], -1) ** 2).sum(-1))
    est.estimate(f, theta, 3, generator=torch.Generator().manual_seed(0))
    assert f.rows == 3 * (1 + n * (k - 1))


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_chunks_give_the_same_estimates(monkeypatch, family):
    theta = THETA[family]
    w = torch.randn(theta.numel(), theta.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def f(b):
        x = b.reshape(b.shape[0], -1)
        return torch.exp(((x @ w) * x).sum(-1) / 10)

    one = get_estimator("indecater", family).per_draw(f, theta, 2, 3, generator=torch.Generator().manual_seed(2))
    monkeypatch.setattr(indecater, "CHUNK_ELEMENTS", 1)  # one variable per chunk
    counted = Counting(f)
    many = get_estimator("indecater", family).per_draw(counted, theta, 2, 3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(one, many, rtol=0, atol=0)
    n = theta.numel() if family == "bernoulli" else theta.numel() // theta.shape[-1]
    assert counted.calls == 1 + n
