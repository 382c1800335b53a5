"""SigmoidBeliefNet: architecture, initialisation, the discrete protocol against hand computation, generate."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from concretelab.models import OUTPUT_BIAS_SMOOTHING, SigmoidBeliefNet, build_model

F64 = torch.float64


def _shapes(net):
    return [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, nn.Linear)]


def test_linear_and_nonlinear_architectures():
    linear = SigmoidBeliefNet.from_spec("200H-200H-784V")
    assert _shapes(linear.decoder) == [(200, 784)]
    assert _shapes(linear.generative[0]) == [(200, 200)]
    assert _shapes(linear.encoder[0]) == [(784, 200)] and _shapes(linear.encoder[1]) == [(200, 200)]
    assert linear.prior_bias.shape == (200,)
    nonlinear = SigmoidBeliefNet.from_spec("200H~200H~784V")
    assert _shapes(nonlinear.decoder) == [(200, 200), (200, 200), (200, 784)]
    assert _shapes(nonlinear.encoder[0]) == [(784, 200), (200, 200), (200, 200)]  # the mirror
    assert sum(isinstance(m, nn.Tanh) for m in nonlinear.decoder.modules()) == 2
    mixed = SigmoidBeliefNet.from_spec("6H~4H-10V")  # tanh widths follow the stochastic layer above
    assert _shapes(mixed.decoder) == [(4, 10)]
    assert _shapes(mixed.generative[0]) == [(6, 6), (6, 6), (6, 4)]
    assert _shapes(mixed.encoder[1]) == [(4, 6), (6, 6), (6, 6)]


def test_nary_networks_use_one_hot_inputs():
    model = SigmoidBeliefNet.from_spec("240H~784V", categories=4)
    assert _shapes(model.decoder) == [(480, 240), (240, 240), (240, 784)]
    assert _shapes(model.encoder[0]) == [(784, 240), (240, 240), (240, 480)]
    assert model.prior_bias.shape == (120, 4)
    x = torch.zeros(3, 784)
    assert model.proposal_logits(0, x, []).shape == (3, 120, 4)
    h, log_q = model.sample_posterior(x, 5)
    assert h[0].shape == (5, 3, 120, 4) and log_q.shape == (5, 3)
    assert torch.equal(h[0].sum(-1), torch.ones(5, 3, 120))


def test_glorot_initialisation_and_output_bias():
    torch.manual_seed(0)
    mean = torch.rand(784)
    mean[:97] = 0.0  # always-0 pixels, as in MNIST
    mean[97:100] = 1.0  # and always-1 pixels
    model = SigmoidBeliefNet.from_spec("200H~784V", train_mean=mean)
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            bound = math.sqrt(6 / (layer.in_features + layer.out_features))
            assert layer.weight.abs().max() <= bound
            assert layer.weight.std() > 0.5 * bound / math.sqrt(3)  # uniform(-b, b) has sd b / sqrt(3)
    bias = model.decoder[-1].bias
    assert torch.isfinite(bias).all()
    eps = OUTPUT_BIAS_SMOOTHING
    p = (mean.double() + eps) / (1 + 2 * eps)
    torch.testing.assert_close(bias.double(), torch.logit(p), rtol=1e-6, atol=1e-5)
    assert bias[:97].max() < -9 and bias[97:100].min() > 9
    assert model.decoder[0].bias.abs().max() == 0 and model.prior_bias.abs().max() == 0
    with pytest.raises(ValueError, match="train_mean"):
        SigmoidBeliefNet.from_spec("8H-784V", train_mean=torch.rand(783))
    with pytest.raises(ValueError, match="train_mean"):
        SigmoidBeliefNet.from_spec("8H-784V", train_mean=torch.full((784,), 1.5))


def test_discrete_protocol_matches_hand_computation():
    torch.manual_seed(1)
    model = SigmoidBeliefNet.from_spec("2H-3H-4V").double()
    x = torch.tensor([[1.0, 0, 1, 1], [0, 0, 1, 0]], dtype=F64)
    h, log_q = model.sample_posterior(x, 6, generator=torch.Generator().manual_seed(0))
    h1, h2 = h
    assert h1.shape == (6, 2, 3) and h2.shape == (6, 2, 2)
    assert set(h1.unique().tolist()) <= {0.0, 1.0}

    def bern(logits, v):  # sum_units v log sigmoid(a) + (1 - v) log sigmoid(-a)
        return (v * torch.log(torch.sigmoid(logits)) + (1 - v) * torch.log(torch.sigmoid(-logits))).sum(-1)

    e0, e1 = model.encoder
    want_q = bern(x @ e0.weight.T + e0.bias, h1) + bern(h1 @ e1.weight.T + e1.bias, h2)
    torch.testing.assert_close(log_q, want_q, rtol=1e-12, atol=1e-12)
    g, d = model.generative[0], model.decoder
    want_joint = bern(model.prior_bias, h2) + bern(h2 @ g.weight.T + g.bias, h1) + bern(h1 @ d.weight.T + d.bias, x)
    torch.testing.assert_close(model.log_joint(x, h), want_joint, rtol=1e-12, atol=1e-12)


def test_posterior_samples_have_the_right_frequencies():
    torch.manual_seed(2)
    model = SigmoidBeliefNet.from_spec("3H-4V")
    x = torch.tensor([[1.0, 0, 1, 1]])
    h, _ = model.sample_posterior(x, 20_000, generator=torch.Generator().manual_seed(1))
    p = torch.sigmoid(model.proposal_logits(0, x, []))[0].detach()
    se = (p * (1 - p) / 20_000).sqrt()
    assert ((h[0].mean((0, 1)) - p).abs() < 4.5 * se).all()


def test_generate():
    model = build_model("4H-3H-10V")
    out = model.generate(7, generator=torch.Generator().manual_seed(0))
    assert out.shape == (7, 10) and ((out >= 0) & (out <= 1)).all()
    again = model.generate(7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert build_model("8H~10V", categories=4).generate(2).shape == (2, 10)
    with pytest.raises(ValueError, match="num"):
        model.generate(0)
