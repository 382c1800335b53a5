"""BinConcrete and LogitBinConcrete: gradients, own samples at extreme temperatures and logits, the
closed-form CDF and its inverse, the logit cache, no clamping."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from concretelab.distributions import BinConcrete, LogitBinConcrete
from concretelab.functional import sample_logistic

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("cls", [BinConcrete, LogitBinConcrete])
def test_gradcheck_log_prob_and_rsample(cls: type) -> None:
    logits = torch.tensor([-1.5, 0.2, 3.0], dtype=F64, requires_grad=True)
    temperature = torch.tensor([0.3, 1.0, 2.5], dtype=F64, requires_grad=True)
    z = torch.randn(4, 3, generator=_gen(0), dtype=F64) * 2
    value = (torch.sigmoid(z) if cls is BinConcrete else z).requires_grad_()
    assert gradcheck(lambda lg, t, v: cls(t, logits=lg).log_prob(v), (logits, temperature, value))
    noise = sample_logistic((4, 3), generator=_gen(1), dtype=F64)
    assert gradcheck(lambda lg, t: cls(t, logits=lg).rsample((4,), noise=noise), (logits, temperature))
    assert gradcheck(lambda lg, t: cls(t, logits=lg).sample_and_log_prob((4,), noise=noise)[1], (logits, temperature))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_own_samples_finite_at_extreme_temperatures_and_logits(dtype: torch.dtype) -> None:
    logits = torch.tensor([-50.0, -5.0, 0.0, 5.0, 50.0], dtype=dtype, requires_grad=True)
    saturated = False
    for t in (1e-4, 1e-2, 1.0, 1e2, 1e4):
        for cls in (BinConcrete, LogitBinConcrete):
            d = cls(t, logits=logits)
            x = d.rsample((200,), generator=_gen(2))
            lp = d.log_prob(x)
            _, lp2 = d.sample_and_log_prob((200,), generator=_gen(2))
            assert bool(torch.isfinite(lp).all()), (cls.__name__, t)
            torch.testing.assert_close(lp, lp2, rtol=1e-5 if dtype == torch.float32 else 1e-10, atol=1e-4)
            (g,) = torch.autograd.grad(lp.sum(), logits)
            assert bool(torch.isfinite(g).all())
            if cls is BinConcrete:
                saturated |= bool(((x == 0) | (x == 1)).any())
    assert saturated  # samples that round to exactly 0 or 1 are still scored exactly (the logit is cached)


def test_saturated_sample_matches_logit_form_and_plain_boundary_values_raise() -> None:
    logits = torch.tensor([0.0, 2.0], dtype=F64)
    noise = sample_logistic((100, 2), generator=_gen(3), dtype=F64)
    b, lb = BinConcrete(1e-3, logits=logits), LogitBinConcrete(1e-3, logits=logits)
    x, z = b.rsample((100,), noise=noise), lb.rsample((100,), noise=noise)
    assert float(((x == 0) | (x == 1)).double().mean()) > 0.5
    expected = lb.log_prob(z) + torch.nn.functional.softplus(z) + torch.nn.functional.softplus(-z)  # - log x(1-x)
    torch.testing.assert_close(b.log_prob(x), expected)
    with pytest.raises(ValueError, match=r"at 0 or 1 .* defined on the\s+open interval \(0, 1\)"):
        b.log_prob(x.clone())


def test_cdf_icdf_closed_forms() -> None:
    logits = torch.tensor([-3.0, 0.0, 40.0], dtype=F64)
    t = torch.tensor([0.2, 1.0, 3.0], dtype=F64)
    q = torch.tensor([[1e-12], [0.3], [0.5], [1 - 1e-9]], dtype=F64)
    b, lb = BinConcrete(t, logits=logits), LogitBinConcrete(t, logits=logits)
    torch.testing.assert_close(b.cdf(b.icdf(q)), q.expand(4, 3), rtol=1e-9, atol=0)
    torch.testing.assert_close(lb.cdf(lb.icdf(q)), q.expand(4, 3), rtol=1e-9, atol=0)
    edges = b.cdf(torch.tensor([[0.0], [1.0]], dtype=F64))
    assert bool((edges[0] == 0).all()) and bool((edges[1] == 1).all())
    # the CDF is the integral of the density: check its derivative numerically
    x = torch.tensor([0.2, 0.5, 0.9], dtype=F64, requires_grad=True)
    (density,) = torch.autograd.grad(b.cdf(x).sum(), x)
    torch.testing.assert_close(density.log(), b.log_prob(x.detach()))


def test_no_clamping_of_large_logits_or_probs() -> None:
    # torch's LogitRelaxedBernoulli clamps through probs (|logit| <= 15.9 in float32); here 40 stays 40.
    d = LogitBinConcrete(1.0, logits=torch.tensor(40.0))
    assert d.logits.item() == 40.0
    noise = torch.zeros(1)
    assert d.rsample((1,), noise=noise).item() == 40.0
    tiny = torch.tensor([1e-30, 0.5], dtype=F64)
    torch.testing.assert_close(BinConcrete(1.0, probs=tiny).logits, torch.tensor([math.log(1e-30), 0.0], dtype=F64))


def test_probs_and_logits_parametrisations_agree() -> None:
    logits = torch.tensor([-2.0, 0.5, 3.0], dtype=F64)
    x = torch.tensor([0.1, 0.5, 0.99], dtype=F64)
    a, b = BinConcrete(0.7, logits=logits), BinConcrete(0.7, probs=torch.sigmoid(logits))
    torch.testing.assert_close(a.log_prob(x), b.log_prob(x))
    torch.testing.assert_close(a.probs, torch.sigmoid(logits))


def test_positional_order_is_torchs() -> None:
    """Issue 27: torch is ``RelaxedBernoulli(temperature, probs, logits)``; the second positional argument is probs."""
    probs = torch.tensor([0.2, 0.9], dtype=torch.float64)
    torch.testing.assert_close(BinConcrete(0.5, probs).probs, probs)
    torch.testing.assert_close(LogitBinConcrete(0.5, probs).probs, probs)
    reference = torch.distributions.RelaxedBernoulli(torch.tensor(0.5, dtype=torch.float64), probs)
    x = reference.sample((5,))
    torch.testing.assert_close(BinConcrete(0.5, probs).log_prob(x), reference.log_prob(x), rtol=1e-9, atol=1e-9)
