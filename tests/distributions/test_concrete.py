"""ExpConcrete and Concrete: gradients, own samples at extreme temperatures, -inf logits, temperature
handling, the log-space cache."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from concretelab.distributions import Concrete, ExpConcrete
from concretelab.functional import sample_gumbel

from .test_routes import ref_exp_concrete

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _inputs(seed: int = 0, batch: int = 2, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(batch, k, generator=_gen(seed), dtype=F64).requires_grad_()
    temperature = torch.tensor([0.3, 1.7], dtype=F64)[:batch].requires_grad_()
    return logits, temperature


# ----------------------------------------------------------------------------------------------
# gradcheck in float64


@pytest.mark.parametrize("cls", [ExpConcrete, Concrete])
def test_gradcheck_log_prob(cls: type) -> None:
    logits, temperature = _inputs()
    y = torch.log_softmax(torch.randn(3, 2, 4, generator=_gen(1), dtype=F64) * 2, -1)
    value = (y if cls is ExpConcrete else y.exp()).requires_grad_()

    # validate_args=False: gradcheck's finite differences step off the (log-)simplex by 1e-6.
    def f(lg: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return cls(t, logits=lg, validate_args=False).log_prob(v)

    assert gradcheck(f, (logits, temperature, value))


@pytest.mark.parametrize("cls", [ExpConcrete, Concrete])
def test_gradcheck_rsample_given_noise(cls: type) -> None:
    logits, temperature = _inputs()
    noise = sample_gumbel((3, 2, 4), generator=_gen(2), dtype=F64)
    assert gradcheck(lambda lg, t: cls(t, logits=lg).rsample((3,), noise=noise), (logits, temperature))
    assert gradcheck(lambda lg, t: cls(t, logits=lg).sample_and_log_prob((3,), noise=noise)[1], (logits, temperature))


def test_gradcheck_with_scalar_learnable_temperature_and_minus_inf_logit() -> None:
    logits = torch.tensor([0.5, float("-inf"), -1.0, 2.0], dtype=F64).requires_grad_()
    temperature = torch.tensor(0.4, dtype=F64).requires_grad_()
    noise = sample_gumbel((5, 4), generator=_gen(3), dtype=F64)

    def f(lg: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        d = Concrete(t, logits=lg)
        return d.log_prob(d.rsample((5,), noise=noise))

    # gradcheck perturbs the -inf entry too (it stays -inf); its gradient is 0.
    assert gradcheck(f, (logits, temperature))
    (g,) = torch.autograd.grad(f(logits, temperature).sum(), logits)
    assert g[1].item() == 0.0 and bool(torch.isfinite(g).all())


# ----------------------------------------------------------------------------------------------
# Own samples: finite log_prob at extreme temperatures, large n, underflowing components.

OWN_TEMPERATURES = (1e-4, 1e-2, 1.0, 1e2, 1e4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [2, 10, 1000, 100_000])
def test_own_samples_have_finite_log_prob(n: int, dtype: torch.dtype) -> None:
    samples = 2 if n == 100_000 else 20
    logits = (torch.randn(n, generator=_gen(n), dtype=dtype) * 5).requires_grad_()
    underflowed = False
    for t in OWN_TEMPERATURES if n < 100_000 else (1e-4, 1.0, 1e4):
        for cls in (ExpConcrete, Concrete):
            d = cls(t, logits=logits)
            x = d.rsample((samples,), generator=_gen(7))
            lp = d.log_prob(x)
            _, lp2 = d.sample_and_log_prob((samples,), generator=_gen(7))
            assert bool(torch.isfinite(lp).all()), (cls.__name__, t)
            torch.testing.assert_close(lp, lp2, rtol=1e-4 if dtype == torch.float32 else 1e-9, atol=1e-3)
            (g,) = torch.autograd.grad(lp.sum(), logits)
            assert bool(torch.isfinite(g).all()), (cls.__name__, t)
            if cls is Concrete:
                underflowed |= bool((x == 0).any())
    assert underflowed  # at temperature 1e-4 the simplex sample has exact zeros; the cache scores it


def test_underflowed_sample_scored_through_the_cache_matches_log_space() -> None:
    """At temperature 1e-3 the simplex sample has exact zeros; log_prob of the sample (its remembered point) equals
    the independent float64 formula at y = log_softmax((a + G)/lambda), computed here from the noise."""
    logits = torch.tensor([0.0, 3.0, -2.0], dtype=F64)
    noise = sample_gumbel((50, 3), generator=_gen(8), dtype=F64)
    concrete = Concrete(1e-3, logits=logits)
    x = concrete.rsample((50,), noise=noise)
    assert bool((x == 0).any())
    t = torch.tensor(1e-3, dtype=F64)
    y = torch.log_softmax((logits + noise) / t, -1)
    torch.testing.assert_close(concrete.log_prob(x), ref_exp_concrete(y, logits, t) - y.sum(-1), rtol=1e-9, atol=1e-6)
    # A copy is not the sample: it is scored through log(x), and a zero is on the boundary.
    with pytest.raises(ValueError, match="boundary of the simplex"):
        concrete.log_prob(x.clone())
    # Scoring the remembered sample under another distribution uses the same log-space point.
    other = Concrete(2.0, logits=torch.zeros(3, dtype=F64))
    two = torch.tensor(2.0, dtype=F64)
    torch.testing.assert_close(other.log_prob(x), ref_exp_concrete(y, torch.zeros(3, dtype=F64), two) - y.sum(-1),
                               rtol=1e-9, atol=1e-6)


def test_cache_ignores_a_sample_changed_in_place() -> None:
    d = Concrete(0.5, logits=torch.tensor([0.0, 1.0, 2.0], dtype=F64))
    x = d.sample((4,), generator=_gen(9))
    before = d.log_prob(x)
    x.copy_(torch.tensor([0.2, 0.3, 0.5], dtype=F64).expand(4, 3))
    expected = d.log_prob(torch.tensor([0.2, 0.3, 0.5], dtype=F64))
    torch.testing.assert_close(d.log_prob(x), expected.expand(4))
    assert not torch.allclose(before, expected)


# ----------------------------------------------------------------------------------------------
# -inf logits


@pytest.mark.parametrize("t", [1e-3, 0.5, 3.0])
def test_minus_inf_logits_are_exact_zeros_and_the_density_is_over_the_rest(t: float) -> None:
    inf = float("-inf")
    logits = torch.tensor([[1.0, inf, -0.5, 2.0, inf], [inf, 0.0, 0.0, inf, 4.0]], dtype=F64)
    keep = [[0, 2, 3], [1, 2, 4]]
    d, e = Concrete(t, logits=logits), ExpConcrete(t, logits=logits)
    x, y = d.rsample((100,), generator=_gen(10)), e.rsample((100,), generator=_gen(10))
    for row, cols in enumerate(keep):
        dropped = [c for c in range(5) if c not in cols]
        assert bool((x[:, row, dropped] == 0).all()) and bool((y[:, row, dropped] == -math.inf).all())
        reduced = Concrete(t, logits=logits[row, cols])
        torch.testing.assert_close(
            d.log_prob(x)[:, row],
            reduced.log_prob(x[:, row, cols].clone())
            if t > 0.1
            else ExpConcrete(t, logits=logits[row, cols]).log_prob(y[:, row, cols]) - y[:, row, cols].sum(-1),
        )
        torch.testing.assert_close(
            e.log_prob(y)[:, row], ExpConcrete(t, logits=logits[row, cols]).log_prob(y[:, row, cols])
        )
    # probs with zeros are the same distribution
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(Concrete(t, probs=probs).log_prob(x), d.log_prob(x))


# ----------------------------------------------------------------------------------------------
# Temperature: float or tensor, broadcasting, (N, 1) with (N, K).


def test_temperature_shapes() -> None:
    logits = torch.randn(3, 5, generator=_gen(11), dtype=F64)
    assert Concrete(0.5, logits=logits).batch_shape == (3,)
    assert Concrete(torch.tensor(0.5, dtype=F64), logits=logits).batch_shape == (3,)
    column = torch.tensor([[0.2], [1.0], [3.0]], dtype=F64)
    d = Concrete(column, logits=logits)
    assert d.batch_shape == (3,)  # torch's RelaxedOneHotCategorical gives (3, 3) here
    rows = torch.stack(
        [Concrete(float(column[i]), logits=logits[i]).log_prob(torch.full((5,), 0.2, dtype=F64)) for i in range(3)]
    )
    torch.testing.assert_close(d.log_prob(torch.full((5,), 0.2, dtype=F64)), rows)
    # a temperature with more batch dims broadcasts against the logits' batch shape
    grid = ExpConcrete(
        torch.tensor([[0.5], [2.0]], dtype=F64).expand(2, 3).contiguous().unsqueeze(-1).squeeze(-1), logits=logits
    )
    assert grid.batch_shape == (2, 3)
    # (N, 1) with unbatched logits (K,) is a batch of shape (N, 1): the squeeze applies to logits (N, K) only
    assert ExpConcrete(torch.tensor([0.5, 2.0], dtype=F64)[:, None], logits=logits[0]).batch_shape == (2, 1)


def test_learnable_temperature_gets_gradients() -> None:
    logits = torch.randn(4, 3, generator=_gen(12), dtype=F64)
    log_t = torch.zeros(4, dtype=F64, requires_grad=True)
    d = Concrete(log_t.exp(), logits=logits)
    x, lp = d.sample_and_log_prob((8,), generator=_gen(13))
    (g,) = torch.autograd.grad((x[..., 0] + lp).sum(), log_t)
    assert g.shape == (4,) and bool(torch.isfinite(g).all()) and bool((g != 0).all())


def test_exp_concrete_at_minus_inf_in_an_included_category_is_minus_inf_not_nan() -> None:
    """y_k = -inf (x_k = 0) with a finite logit lies at infinity in the log-ratios, where kappa -> 0."""
    logits = torch.tensor([0.0, 1.0, -1.0], dtype=F64, requires_grad=True)
    y = torch.tensor([[0.0, float("-inf"), -3.0], [-0.5, -1.0, -2.0]], dtype=F64)
    y = y - torch.logsumexp(y, -1, keepdim=True)
    lp = ExpConcrete(0.7, logits=logits).log_prob(y)
    assert lp[0].item() == -math.inf and math.isfinite(lp[1].item())
    (g,) = torch.autograd.grad(lp[1] + torch.where(torch.isinf(lp[0]), 0.0, lp[0]), logits)
    assert bool(torch.isfinite(g).all())
    far = torch.tensor([0.0, -1e4, -3.0], dtype=F64)  # the limit is approached: very negative log kappa
    assert ExpConcrete(0.7, logits=logits).log_prob(far - torch.logsumexp(far, 0)).item() < -1e3


def test_unnormalised_probs_are_normalised_as_torch_does() -> None:
    """Issue 10.13: torch's RelaxedOneHotCategorical accepts probs of any positive sum; so does Concrete."""
    weights = torch.tensor([[1.0, 2.0, 5.0], [3.0, 3.0, 0.5]], dtype=torch.float64)
    ours = Concrete(0.7, probs=weights)
    theirs = torch.distributions.RelaxedOneHotCategorical(torch.tensor(0.7, dtype=torch.float64), probs=weights)
    torch.testing.assert_close(ours.probs, theirs.probs, rtol=0, atol=1e-15)
    x = theirs.sample((5,), )
    torch.testing.assert_close(ours.log_prob(x), theirs.log_prob(x), rtol=1e-10, atol=1e-10)


def test_positional_order_is_torchs() -> None:
    """Issue 27: torch is ``RelaxedOneHotCategorical(temperature, probs, logits)``; ported code that passes the
    second argument positionally must mean probs here too (it meant logits, giving probs [0.354, 0.646])."""
    probs = torch.tensor([0.2, 0.8], dtype=F64)
    torch.testing.assert_close(Concrete(0.5, probs).probs, probs)
    torch.testing.assert_close(ExpConcrete(0.5, probs).probs, probs)
    reference = torch.distributions.RelaxedOneHotCategorical(torch.tensor(0.5, dtype=F64), probs)
    x = reference.sample((5,))
    torch.testing.assert_close(Concrete(0.5, probs).log_prob(x), reference.log_prob(x), rtol=1e-9, atol=1e-9)
    logits = torch.tensor([0.3, -0.3], dtype=F64)
    torch.testing.assert_close(Concrete(0.5, None, logits).logits, logits)
