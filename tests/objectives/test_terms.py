"""Log-probability and KL kernels against torch.distributions, at discrete and relaxed values and large logits."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, kl_divergence

from concretelab.objectives import (
    bernoulli_kl,
    bernoulli_log_prob_sum,
    categorical_kl,
    categorical_log_prob_sum,
    log_mean_exp,
)

F64 = torch.float64


def test_bernoulli_log_prob_sum_at_discrete_and_relaxed_values():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(4, 5, generator=g, dtype=F64)
    for value in (torch.randint(0, 2, (3, 4, 5), generator=g).to(F64), torch.rand(3, 4, 5, generator=g, dtype=F64)):
        want = Bernoulli(logits=logits, validate_args=False).log_prob(value).sum(-1)
        torch.testing.assert_close(bernoulli_log_prob_sum(logits, value), want, rtol=1e-12, atol=1e-12)


def test_categorical_log_prob_sum_matches_one_hot_lookup():
    g = torch.Generator().manual_seed(1)
    logits = 2 * torch.randn(4, 3, 6, generator=g, dtype=F64)
    index = torch.randint(0, 6, (2, 4, 3), generator=g)
    value = torch.nn.functional.one_hot(index, 6).to(F64)
    want = Categorical(logits=logits).log_prob(index).sum(-1)
    torch.testing.assert_close(categorical_log_prob_sum(logits, value), want, rtol=1e-12, atol=1e-12)


def test_kls_match_torch_and_stay_finite_for_huge_logits():
    g = torch.Generator().manual_seed(2)
    q, p = 4 * torch.randn(2, 7, generator=g, dtype=F64), 4 * torch.randn(2, 7, generator=g, dtype=F64)
    want = kl_divergence(Bernoulli(logits=q), Bernoulli(logits=p)).sum(-1)
    torch.testing.assert_close(bernoulli_kl(q, p), want, rtol=1e-10, atol=1e-12)
    qc, pc = q.view(2, 7, 1).expand(2, 7, 3) * torch.arange(3.0), p.view(2, 7, 1).expand(2, 7, 3).flip(-1)
    want = kl_divergence(Categorical(logits=qc), Categorical(logits=pc)).sum(-1)
    torch.testing.assert_close(categorical_kl(qc, pc), want, rtol=1e-10, atol=1e-12)
    big = torch.tensor([[1e4, -1e4, 50.0]], requires_grad=True)
    kl = bernoulli_kl(big, -big.detach())
    kl.sum().backward()
    assert torch.isfinite(kl).all() and torch.isfinite(big.grad).all()
    assert float(kl.detach()) > 1e4  # ~ |a_q - a_p| for the saturated units


def test_log_mean_exp_against_mpmath():
    """log (1/n) sum_i exp(w_i) against 50-digit mpmath, with weights far outside float64's exp range and -inf."""
    import mpmath

    mpmath.mp.dps = 50
    w = torch.tensor([[1000.0, -math.inf, -800.0], [1001.0, 0.0, -800.0], [-745.0, 3.5, -801.0]], dtype=F64)
    got = log_mean_exp(w, 0)
    for j in range(3):
        column = [mpmath.mpf(v) if math.isfinite(v) else mpmath.mpf(0) for v in w[:, j].tolist()]
        terms = [mpmath.exp(v) for v, raw in zip(column, w[:, j].tolist(), strict=True) if raw != -math.inf]
        want = float(mpmath.log(mpmath.fsum(terms) / 3))
        assert float(got[j]) == pytest.approx(want, rel=1e-14, abs=1e-12), (j, float(got[j]), want)
    assert float(log_mean_exp(torch.full((4,), -math.inf, dtype=F64), 0)) == -math.inf
