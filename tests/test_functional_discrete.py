"""Exact discrete draws (functional.sample_bernoulli / sample_categorical and every sampler built on them).

The defect these guard against: ``rand() < sigmoid(a)`` in float32 proposes h = 1 with probability 2**-24 (the
grid point 0 of ``torch.rand``) however small sigmoid(a) is, while log q uses the true sigmoid(a). An importance
weight p/q then overstates log p(x) by up to ~30 nats. Every test here fails on that sampler (checked by
running it against the old code); the references are closed forms (sigmoid, softmax, exact enumeration of a
one-unit model), never the sampler's own formula.

Thresholds. A count of events of probability p in n draws is Binomial(n, p). "No ones" at logit -30 with
n = 2**26 is violated by an exact sampler with probability n * sigmoid(-30) = 6.3e-6; the float32 sampler puts
n * 2**-24 = 4 ones there on average (P(no one) = e**-4 = 1.8%). Frequency tests use |z| < 5 (a false
alarm has probability 5.7e-7 per comparison).
"""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.estimators._base import exact_sample, logistic_pair, perturb_and_sample
from concretelab.functional import gumbel_max, gumbel_topk, sample_bernoulli, sample_categorical
from concretelab.models import SigmoidBeliefNet
from concretelab.models.base import sample_discrete
from concretelab.objectives import discrete_bound

N_DRAWS = 2**26
CHUNK = 2**22
LOW_PRECISION = [torch.float32, torch.float16, torch.bfloat16]


def _count_ones(draw, dtype) -> int:
    """Ones in N_DRAWS draws of ``draw(logits, generator)``, logits a (CHUNK,) tensor at -30."""
    g = torch.Generator().manual_seed(20261129)
    logits = torch.full((CHUNK,), -30.0, dtype=dtype)
    return sum(int(draw(logits, g).count_nonzero()) for _ in range(N_DRAWS // CHUNK))


BERNOULLI_DRAWS = {
    "sample_bernoulli": lambda a, g: sample_bernoulli(a, generator=g),
    "models.sample_discrete": lambda a, g: sample_discrete(2, a, a.shape, g),
    "estimators.exact_sample": lambda a, g: exact_sample(a, 1, "bernoulli", g),
    "estimators.perturb_and_sample": lambda a, g: perturb_and_sample(a, 1, "bernoulli", g)[1],
    "estimators.logistic_pair b": lambda a, g: logistic_pair(a, 1, g)[1],
    "estimators.logistic_pair b_anti": lambda a, g: logistic_pair(a, 1, g)[2],
}


@pytest.mark.parametrize("name", list(BERNOULLI_DRAWS))
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_logit_minus_30_never_draws_a_one(name: str, dtype: torch.dtype) -> None:
    assert _count_ones(BERNOULLI_DRAWS[name], dtype) == 0


def test_logit_plus_30_never_draws_a_zero(generator) -> None:
    g = generator(1)
    logits = torch.full((CHUNK,), 30.0)
    zeros = sum(int((1 - sample_bernoulli(logits, generator=g)).count_nonzero()) for _ in range(N_DRAWS // CHUNK))
    assert zeros == 0


@pytest.mark.parametrize("logit", [-12.0, -5.0, 0.0, 3.0, 14.0])
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_bernoulli_frequency_matches_sigmoid(logit: float, dtype: torch.dtype, generator) -> None:
    n = 2**24
    ones = int(sample_bernoulli(torch.tensor(logit, dtype=dtype), (n,), generator=generator(7)).count_nonzero())
    p = 1 / (1 + math.exp(-float(torch.tensor(logit, dtype=dtype))))  # the logit as the dtype holds it
    z = (ones - n * p) / math.sqrt(n * p * (1 - p))
    assert abs(z) < 5, (ones, n * p)


def test_bernoulli_broadcast_shape_dtype_and_no_grad(generator) -> None:
    logits = torch.randn(3, 1, generator=generator(0), requires_grad=True)
    b = sample_bernoulli(logits, (5, 3, 4), generator=generator(1))
    assert b.shape == (5, 3, 4) and b.dtype == torch.float32 and not b.requires_grad
    assert set(b.unique().tolist()) <= {0.0, 1.0}


def _one_unit_model(q_logit: float) -> SigmoidBeliefNet:
    """1H-1V with q(h=1|x) = sigmoid(q_logit), p(h=1) = 1/2, p(x=1|h) = sigmoid(40 h - 10)."""
    model = SigmoidBeliefNet.from_spec("1H-1V")
    with torch.no_grad():
        model.encoder[0].weight.zero_()
        model.encoder[0].bias.fill_(q_logit)
        model.prior_bias.zero_()
        model.decoder.weight.fill_(40.0)
        model.decoder.bias.fill_(-10.0)
    return model


def _log_p_x1() -> float:
    """log p(x = 1) by enumerating h in {0, 1} (float64)."""
    log_sig = lambda t: -math.log1p(math.exp(-t))  # noqa: E731
    return math.log(0.5 * math.exp(log_sig(30.0)) + 0.5 * math.exp(log_sig(-10.0)))


def test_bound_of_a_one_unit_model_never_exceeds_log_p() -> None:
    """The issue's model: q(h=1|x) = sigmoid(-30). 2,000 images at k = 50,000 in float32: no L_k above log p(x).

    With the float32 rand < sigmoid sampler about 2000 * 50000 * 2**-24 = 6 images draw h = 1 and get L_k near
    +18; exactly, the chance that any image does is 2000 * 50000 * sigmoid(-30) = 9e-6.
    """
    model = _one_unit_model(-30.0)
    x = torch.ones(2000, 1)
    bound = discrete_bound(model, x, 50_000, generator=torch.Generator().manual_seed(3))
    log_p = _log_p_x1()
    assert bound.dtype == torch.float32
    assert float(bound.max()) <= log_p, f"{int((bound > log_p).sum())} images have L_k > log p(x) = {log_p:.4f}"
    # every draw is h = 0, so L_k is log p(x=1, h=0) - log q(h=0) exactly
    expected = math.log(0.5) - math.log1p(math.exp(10.0)) + math.log1p(math.exp(-30.0))
    assert torch.allclose(bound.double(), torch.full_like(bound, expected, dtype=torch.float64), atol=1e-4)


def test_categorical_extremes_are_never_drawn(generator) -> None:
    """K = 5 with logits (0, -30, -30, -30, -inf) in float32: only category 0 can be drawn in 2**24 rows."""
    logits = torch.tensor([0.0, -30.0, -30.0, -30.0, -math.inf])
    draws = sample_categorical(logits, (2**24, 5), generator=generator(11))
    assert torch.equal(draws.sum(0), torch.tensor([2.0**24, 0, 0, 0, 0]))
    shifted = sample_discrete(5, logits + 1e4, (2**20, 5), generator(12))  # a large common offset changes nothing
    assert torch.equal(shifted.sum(0), torch.tensor([2.0**20, 0, 0, 0, 0]))


@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
@pytest.mark.parametrize(
    "draw",
    [
        lambda a, n, g: sample_categorical(a, (n, a.shape[-1]), generator=g).argmax(-1),
        lambda a, n, g: sample_discrete(a.shape[-1], a, (n, a.shape[-1]), g).argmax(-1),
        lambda a, n, g: exact_sample(a, n, "categorical", g).argmax(-1),
        lambda a, n, g: perturb_and_sample(a, n, "categorical", g)[1].argmax(-1),
        lambda a, n, g: gumbel_max(a.expand(n, -1), generator=g),
        lambda a, n, g: gumbel_topk(a.expand(n, -1), 1, generator=g)[:, 0],
    ],
    ids=["sample_categorical", "sample_discrete", "exact_sample", "perturb_and_sample", "gumbel_max", "gumbel_topk"],
)
def test_categorical_frequencies_at_large_logits(draw, dtype: torch.dtype, generator) -> None:
    """Logits (29, 30, 30 - 12) held in the dtype: frequencies match softmax of the held values.

    Adding Gumbel noise to logits near 30 in a 16-bit dtype (spacing 0.125-0.25) makes ties, which argmax
    breaks towards index 0: the old sampler drew category 0 far more often than softmax says.
    """
    logits = torch.tensor([29.0, 30.0, 18.0], dtype=dtype)
    n = 2**21
    counts = torch.bincount(draw(logits, n, generator(5)).flatten(), minlength=3).double()
    probs = torch.softmax(logits.double(), dim=-1)
    z = (counts - n * probs) / (n * probs * (1 - probs)).sqrt()
    assert z.abs().max() < 5, (counts.tolist(), (n * probs).tolist())
