"""models/networks.py: Glorot initialisation, the two map shapes, the output-bias initialisation and the
Bernoulli log-likelihood, each against an independent reference (the closed forms, scipy, torch.distributions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special
from torch import nn
from torch.distributions import Bernoulli

from concretelab.models.networks import (
    OUTPUT_BIAS_SMOOTHING,
    bernoulli_log_likelihood,
    glorot_init,
    last_linear,
    make_map,
    mean_logits,
)


def test_glorot_init_draws_within_the_glorot_bound_and_zeroes_biases() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(300, 200), nn.Tanh(), nn.Linear(200, 10))
    glorot_init(net)
    for layer in (net[0], net[2]):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot & Bengio (2010), eq. 16
        w = layer.weight.detach()
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.95 * bound
        assert torch.count_nonzero(layer.bias) == 0
    # Uniform(-b, b) has variance b^2 / 3; the first layer's 60,000 draws pin it to within 2% (the sample
    # variance's relative sd is sqrt(0.8 / 60000) = 0.4%)
    w, bound = net[0].weight.detach(), math.sqrt(6.0 / 500)
    assert abs(float(w.var()) / (bound**2 / 3) - 1) < 0.02


def test_make_map_is_affine_or_two_hidden_layers_and_last_linear_finds_the_output() -> None:
    affine = make_map(7, 3, None)
    assert isinstance(affine, nn.Linear) and last_linear(affine) is affine
    mlp = make_map(7, 3, 5)
    kinds = [type(m) for m in mlp]
    assert kinds == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    assert [tuple(m.weight.shape) for m in mlp if isinstance(m, nn.Linear)] == [(5, 7), (5, 5), (3, 5)]
    assert last_linear(mlp) is mlp[4]
    relu = make_map(7, 3, 5, activation=nn.ReLU)
    assert isinstance(relu[1], nn.ReLU)


def test_mean_logits_is_the_smoothed_logit_of_the_pixel_means() -> None:
    means = torch.tensor([0.0, 1e-6, 0.3, 0.5, 1.0], dtype=torch.float64)
    eps = OUTPUT_BIAS_SMOOTHING
    want = special.logit((means.numpy() + eps) / (1 + 2 * eps))  # scipy's logit: an independent reference
    np.testing.assert_allclose(mean_logits(means, 5).numpy(), want, rtol=1e-12)
    # an always-0 pixel: log(1e-4 / 1.0001) = -9.21044, finite, not -inf
    assert mean_logits(means, 5)[0] == pytest.approx(math.log(1e-4) - math.log(1.0001), abs=1e-12)


@pytest.mark.parametrize(
    ("value", "message"),
    [([0.5, 0.5], r"shape \(3,\)"), ([0.5, float("nan"), 0.2], r"in \[0, 1\]"), ([0.5, 1.5, 0.2], r"in \[0, 1\]")],
)
def test_mean_logits_rejects_bad_means_by_name(value: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mean_logits(torch.tensor(value), 3)
    with pytest.raises(ValueError, match="train_mean must be a tensor"):
        mean_logits([0.5, 0.5, 0.5], 3)  # type: ignore[arg-type]


def test_bernoulli_log_likelihood_against_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    logits = 6 * torch.randn(4, 3, 10, generator=g, dtype=torch.float64)  # (m, batch, D)
    x = (torch.rand(3, 10, generator=g) < 0.5).double()
    want = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(-1)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x), want, rtol=1e-12, atol=1e-12)
    saturated = torch.tensor([[-100.0, 100.0]], dtype=torch.float64)
    assert float(bernoulli_log_likelihood(saturated, torch.tensor([[0.0, 1.0]], dtype=torch.float64))) == pytest.approx(
        -2 * math.log1p(math.exp(-100.0)), abs=1e-15  # -7.4e-44: 0 to float64's absolute accuracy at 100
    )
