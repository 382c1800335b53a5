"""Properties of the Concrete family from the paper (Maddison, Mnih & Teh 2017), checked statistically
or by quadrature, and agreement with torch.distributions.

Seeds are fixed; each statistical threshold is a p-value of 1e-3 (a correct implementation fails it at
a fresh seed with probability 0.1%).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.special import roots_legendre
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli, RelaxedBernoulli
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical, RelaxedOneHotCategorical

from concretelab.distributions import BinConcrete, Concrete, ExpConcrete, LogitBinConcrete
from concretelab.functional import gumbel_max, sample_gumbel

F64 = torch.float64
P_MIN = 1e-3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# Rounding (Prop. 1(b)) and the zero-temperature limit (Prop. 1(c)).


@pytest.mark.parametrize("t", [0.1, 1.0, 5.0])
def test_rounding_argmax_is_categorical(t: float) -> None:
    alpha = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64)
    x = Concrete(t, logits=alpha.log()).sample((40_000,), generator=_gen(0))
    counts = torch.bincount(x.argmax(-1), minlength=4).numpy()
    assert stats.chisquare(counts, 40_000 * (alpha / alpha.sum()).numpy()).pvalue > P_MIN


@pytest.mark.parametrize("t", [0.1, 1.0, 5.0])
def test_rounding_binconcrete_is_bernoulli(t: float) -> None:
    alpha = 0.6
    x = BinConcrete(t, logits=torch.tensor(math.log(alpha), dtype=F64)).sample((40_000,), generator=_gen(1))
    ones = int((x > 0.5).sum())
    assert stats.binomtest(ones, 40_000, alpha / (1 + alpha)).pvalue > P_MIN


def test_zero_temperature_limit_one_hot_and_gumbel_max() -> None:
    logits = torch.randn(2000, 5, generator=_gen(2), dtype=F64)
    noise = sample_gumbel((2000, 5), generator=_gen(3), dtype=F64)
    index = gumbel_max(logits, noise=noise)
    gaps = []
    for t in (1.0, 0.1, 0.01, 1e-3):
        x = Concrete(t, logits=logits).rsample(noise=noise)
        assert torch.equal(x.argmax(-1), index)  # the same noise: argmax is the Gumbel-max draw
        gaps.append((1 - x.max(-1).values).mean().item())
    assert all(a > b for a, b in itertools.pairwise(gaps))  # monotone approach to the vertices
    assert gaps[-1] < 1e-2
    # the median distance to the vertex scales with the temperature
    far = Concrete(1e-3, logits=logits).rsample(noise=noise)
    assert (1 - far.max(-1).values).median().item() < 1e-8


# ----------------------------------------------------------------------------------------------
# BinConcrete's closed-form CDF; Concrete with n = 2 is BinConcrete.


@pytest.mark.parametrize(("t", "logit"), [(0.2, 0.0), (1.0, 1.5), (3.0, -2.0)])
def test_binconcrete_samples_kolmogorov_smirnov(t: float, logit: float) -> None:
    x = BinConcrete(t, logits=torch.tensor(logit, dtype=F64)).sample((20_000,), generator=_gen(4)).numpy()

    def cdf(v: np.ndarray) -> np.ndarray:  # P(X <= x) = sigmoid(lambda logit(x) - log alpha), written afresh
        with np.errstate(divide="ignore"):
            return 1 / (1 + np.exp(-(t * (np.log(v) - np.log1p(-v)) - logit)))

    assert stats.kstest(x, cdf).pvalue > P_MIN
    grid = torch.tensor([0.01, 0.3, 0.5, 0.97], dtype=F64)
    np.testing.assert_allclose(
        BinConcrete(t, logits=torch.tensor(logit, dtype=F64)).cdf(grid).numpy(), cdf(grid.numpy()), rtol=1e-12
    )


@pytest.mark.parametrize("t", [0.05, 0.5, 1.0, 4.0])
def test_concrete_with_two_categories_is_binconcrete(t: float) -> None:
    """Concrete's simplex density is with respect to Lebesgue measure on the first n - 1 coordinates, so
    with n = 2 it is the density of X_1 on (0, 1): p_Concrete((x, 1 - x)) = p_BinConcrete(x) with
    log alpha = a_1 - a_2. The samples agree too: G_1 - G_2 is standard logistic."""
    a = torch.tensor([0.7, -1.2], dtype=F64)
    x = torch.tensor([1e-6, 0.1, 0.5, 0.8, 1 - 1e-6], dtype=F64)
    concrete, binary = Concrete(t, logits=a), BinConcrete(t, logits=a[0] - a[1])
    torch.testing.assert_close(concrete.log_prob(torch.stack([x, 1 - x], -1)), binary.log_prob(x), rtol=1e-9, atol=1e-9)
    g = sample_gumbel((100, 2), generator=_gen(5), dtype=F64)
    torch.testing.assert_close(concrete.rsample((100,), noise=g)[:, 0], binary.rsample((100,), noise=g[:, 0] - g[:, 1]))


# ----------------------------------------------------------------------------------------------
# Densities integrate to 1 (scipy.integrate).


def _density(dist: torch.distributions.Distribution, point: list[float]) -> float:
    return dist.log_prob(torch.tensor(point, dtype=F64)).exp().item()


@pytest.mark.parametrize("t", [0.5, 1.0, 3.0])
def test_concrete_n2_integrates_to_one(t: float) -> None:
    d = Concrete(t, logits=torch.tensor([0.4, -0.3], dtype=F64))
    total, _ = integrate.quad(lambda v: _density(d, [v, 1 - v]), 0, 1, limit=200)
    assert total == pytest.approx(1.0, abs=1e-7)


def _product_quad(density, a: float, b: float, c: float, d: float, m: int) -> float:  # type: ignore[no-untyped-def]
    """Integral of ``density(u, v)`` (vectorised over tensors) on [a, b] x [c, d]: Gauss-Legendre with m
    nodes in v inside ``scipy.integrate.fixed_quad`` with m nodes in u."""
    nodes, weights = roots_legendre(m)
    v = torch.tensor((d - c) / 2 * nodes + (d + c) / 2, dtype=F64)
    w = torch.tensor((d - c) / 2 * weights, dtype=F64)

    def inner(u: np.ndarray) -> np.ndarray:
        values = density(torch.tensor(u, dtype=F64)[:, None], v[None, :])  # (m_u, m_v)
        return (values * w).sum(-1).numpy()

    return integrate.fixed_quad(inner, a, b, n=m)[0]


@pytest.mark.parametrize(("t", "tol"), [(0.5, 1e-6), (1.0, 1e-8), (2.0, 1e-8)])
def test_concrete_n3_integrates_to_one_over_the_simplex(t: float, tol: float) -> None:
    """At t = 0.5 = 1/(n-1) the density is log-convex with integrable singularities at the vertices, which
    limit the product rule to about 1e-7; t >= 1 is smooth after the substitution."""
    d = Concrete(t, logits=torch.tensor([0.5, -0.5, 0.0], dtype=F64))

    def smoothstep(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # s -> s^3 (10 - 15 s + 6 s^2), and d/ds
        return s**3 * (10 - 15 * s + 6 * s**2), 30 * s**2 * (1 - s) ** 2

    def density(s: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        # x = (u, (1-u) v, (1-u)(1-v)) with |J| = 1 - u; u, v = smoothstep(s, r) flattens the density's
        # algebraic singularities at the vertices (of order 1/|x - vertex| at t = 1) for Gauss-Legendre.
        (u, du), (v, dv) = smoothstep(s), smoothstep(r)
        u, v = torch.broadcast_tensors(u, v)
        x = torch.stack([u, (1 - u) * v, (1 - u) * (1 - v)], -1)
        return d.log_prob(x).exp() * (1 - u) * du * dv

    totals = [_product_quad(density, 0, 1, 0, 1, m) for m in (150, 300)]
    assert totals[1] == pytest.approx(totals[0], abs=tol)  # the rule has converged
    assert totals[1] == pytest.approx(1.0, abs=tol)


@pytest.mark.slow
@pytest.mark.parametrize("t", [1.0])
def test_concrete_n3_integrates_to_one_adaptive_dblquad(t: float) -> None:
    d = Concrete(t, logits=torch.tensor([0.5, -0.5, 0.0], dtype=F64))
    total, _ = integrate.dblquad(
        lambda x2, x1: _density(d, [x1, x2, 1 - x1 - x2]), 0, 1, 0, lambda x1: 1 - x1, epsabs=1e-7, epsrel=1e-7
    )
    assert total == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("t", [0.2, 1.0])
def test_exp_concrete_integrates_to_one_over_the_log_ratios(t: float) -> None:
    d = ExpConcrete(t, logits=torch.tensor([1.0, -1.0, 0.0], dtype=F64))

    def kappa(r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:  # y = (r1, r2, 0) - logsumexp: log-ratios (r1, r2)
        r1, r2 = torch.broadcast_tensors(r1, r2)
        y = torch.stack([r1, r2, torch.zeros_like(r1)], -1)
        return d.log_prob(y - torch.logsumexp(y, -1, keepdim=True)).exp()

    width = 40.0 / t  # the log-ratios are (a_k - a_n + G_k - G_n)/t: spread of order 1/t
    totals = [_product_quad(kappa, -width, width, -width, width, m) for m in (300, 500)]
    assert totals[1] == pytest.approx(totals[0], abs=1e-8)
    assert totals[1] == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("t", [0.01, 0.05, 0.5])
def test_binconcrete_integrates_to_one_in_logit_coordinates(t: float) -> None:
    """At small temperatures X = sigmoid(Z) rounds to 0 or 1 where most of the mass is, so the density is
    integrated in z = logit(x): p_X(sigmoid z) sigmoid(z) sigmoid(-z). The point x is made by rsample
    from the noise L = lambda z - log alpha, so log_prob scores it through its remembered logit z."""
    logit = 0.8
    d = BinConcrete(t, logits=torch.tensor(logit, dtype=F64))

    def in_logit(z: float) -> float:
        zt = torch.tensor(z, dtype=F64)
        x = d.rsample(noise=t * zt - logit)
        return (d.log_prob(x) + torch.nn.functional.logsigmoid(zt) + torch.nn.functional.logsigmoid(-zt)).exp().item()

    centre, scale = logit / t, 1 / t
    total, _ = integrate.quad(
        in_logit, centre - 50 * scale, centre + 50 * scale, points=[centre], limit=200, epsabs=1e-11, epsrel=1e-11
    )
    assert total == pytest.approx(1.0, abs=1e-8)
    # LogitBinConcrete: the same in its own coordinates
    lb = LogitBinConcrete(t, logits=torch.tensor(logit, dtype=F64))
    total, _ = integrate.quad(
        lambda z: _density(lb, z),
        centre - 50 * scale,
        centre + 50 * scale,
        points=[centre],
        limit=200,
        epsabs=1e-11,
        epsrel=1e-11,
    )
    assert total == pytest.approx(1.0, abs=1e-8)


# ----------------------------------------------------------------------------------------------
# Log-convexity for temperature <= 1/(n - 1) (Prop. 1(d)).


def _midpoint_gaps(n: int, t: float, seed: int) -> np.ndarray:
    """log p(x) + log p(x') - 2 log p((x + x')/2) over random pairs (>= 0 for a log-convex density)."""
    rng = np.random.default_rng(seed)
    a, b = (torch.tensor(rng.dirichlet(np.full(n, 0.7), size=2000)) for _ in range(2))
    d = Concrete(t, logits=torch.tensor(rng.normal(size=n)), validate_args=False)
    return (d.log_prob(a) + d.log_prob(b) - 2 * d.log_prob((a + b) / 2)).numpy()


@pytest.mark.parametrize(("n", "t"), [(2, 1.0), (2, 0.3), (3, 0.5), (3, 0.1), (5, 0.25)])
def test_log_convex_when_temperature_at_most_one_over_n_minus_one(n: int, t: float) -> None:
    gaps = _midpoint_gaps(n, t, seed=10 * n)
    assert gaps.min() >= -1e-9


def test_midpoint_test_detects_non_log_convexity_above_the_bound() -> None:
    assert _midpoint_gaps(3, 2.0, seed=30).min() < -0.1  # the check above is able to fail


# ----------------------------------------------------------------------------------------------
# Agreement with torch.distributions where torch's value is finite.


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0, 3.0])
def test_agrees_with_torch_relaxed_categorical(t: float) -> None:
    logits = torch.randn(3, 5, generator=_gen(6), dtype=F64) * 3
    temperature = torch.tensor(t, dtype=F64)
    y = ExpConcrete(t, logits=logits).sample((200,), generator=_gen(7))
    theirs = ExpRelaxedCategorical(temperature, logits=logits).log_prob(y)
    torch.testing.assert_close(ExpConcrete(t, logits=logits).log_prob(y), theirs, rtol=1e-9, atol=1e-9)
    x = y.exp()  # a plain tensor: both score it through log(x)
    theirs = RelaxedOneHotCategorical(temperature, logits=logits).log_prob(x)
    finite = torch.isfinite(theirs)
    assert finite.float().mean() > 0.5
    ours = Concrete(t, logits=logits, validate_args=False).log_prob(x.clamp_min(1e-300))  # x may contain exact 0
    torch.testing.assert_close(ours[finite], theirs[finite], rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0, 3.0])
def test_agrees_with_torch_relaxed_bernoulli(t: float) -> None:
    logits = torch.tensor([-3.0, 0.0, 1.0, 4.0], dtype=F64)
    temperature = torch.tensor(t, dtype=F64)
    z = LogitBinConcrete(t, logits=logits).sample((500,), generator=_gen(8))
    torch.testing.assert_close(
        LogitBinConcrete(t, logits=logits).log_prob(z),
        LogitRelaxedBernoulli(temperature, logits=logits).log_prob(z),
        rtol=1e-9,
        atol=1e-9,
    )
    x = torch.sigmoid(z)
    theirs = RelaxedBernoulli(temperature, logits=logits).log_prob(x)
    inside = (x > 1e-12) & (x < 1 - 1e-12) & torch.isfinite(theirs)  # torch clamps x to [tiny, 1 - eps]
    assert inside.float().mean() > 0.5
    torch.testing.assert_close(
        BinConcrete(t, logits=logits).log_prob(torch.where(inside, x, 0.5))[inside],
        theirs[inside],
        rtol=1e-7,
        atol=1e-7,
    )


# ----------------------------------------------------------------------------------------------
# The identity at a distribution's own sample: tests/distributions/test_routes.py compares log_prob on every
# route (its own sample through rsample, sample, sample_and_log_prob, ...) with an independent float64 formula.
