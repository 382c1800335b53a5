"""Structured prediction (p(lower | upper), prior as proposal) and the categorical VAE of Jang et al. (2017)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from concretelab.models import CategoricalVAE, StructuredPredictionSBN, build_model

F64 = torch.float64


def _shapes(net):
    return [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, nn.Linear)]


def test_structured_architecture_and_split():
    model = build_model("392V-240H-240H-392V", train_mean=torch.rand(784))
    assert isinstance(model, StructuredPredictionSBN)
    assert model.conditional and model.proposal_is_prior
    assert [_shapes(n) for n in model.nets] == [[(392, 240)], [(240, 240)], [(240, 392)]]
    assert not hasattr(model, "encoder")  # no inference network
    nonlinear = build_model("392V~240H~240H~392V")
    assert _shapes(nonlinear.nets[0]) == [(392, 392), (392, 392), (392, 240)]
    assert _shapes(nonlinear.nets[2]) == [(240, 240), (240, 240), (240, 392)]


def test_structured_nll_counts_the_lower_half_only():
    torch.manual_seed(0)
    model = build_model("6V-3H-2H-6V").double()
    x = (torch.rand(2, 12, dtype=F64) < 0.5).to(F64)
    h, log_q = model.sample_posterior(x, 4, generator=torch.Generator().manual_seed(0))
    lower_logits = model.nets[-1](h[-1])
    want = (x[:, 6:] * lower_logits - torch.nn.functional.softplus(lower_logits)).sum(-1)
    torch.testing.assert_close(model.log_joint(x, h) - log_q, want, rtol=1e-12, atol=1e-12)
    # the proposal depends only on the upper half
    x2 = x.clone()
    x2[:, 6:] = 1 - x2[:, 6:]
    assert torch.equal(model.proposal_logits(0, x, []), model.proposal_logits(0, x2, []))


def test_structured_generate_needs_a_condition():
    model = build_model("6V-3H-6V")
    cond = torch.ones(5, 12)
    out = model.generate(5, condition=cond)
    assert out.shape == (5, 12)
    assert torch.equal(out[:, :6], cond[:, :6])
    assert ((out[:, 6:] > 0) & (out[:, 6:] < 1)).all()
    with pytest.raises(ValueError, match="condition"):
        model.generate(5)
    with pytest.raises(ValueError, match="condition"):
        model.generate(4, condition=cond)
    with pytest.raises(ValueError, match="train_mean"):
        build_model("6V-3H-6V", train_mean=torch.rand(6))


def test_categorical_vae_matches_jang_et_al():
    model = build_model("categorical-vae", train_mean=torch.zeros(784))
    assert isinstance(model, CategoricalVAE)
    assert _shapes(model.encoder) == [(784, 512), (512, 256), (256, 200)]
    assert _shapes(model.decoder) == [(200, 256), (256, 512), (512, 784)]
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 4
    assert torch.isfinite(model.decoder[-1].bias).all()
    assert model.model_args() == {"name": "categorical-vae", "categories": 10}
    x = torch.zeros(3, 784)
    h, _ = model.sample_posterior(x, 2)
    assert h[0].shape == (2, 3, 20, 10) and torch.equal(h[0].sum(-1), torch.ones(2, 3, 20))
    # uniform prior: log p(h) = -20 log 10 for every h
    prior = model.log_joint(x, h) - model.log_likelihood(x, h)
    torch.testing.assert_close(prior, torch.full((2, 3), -20 * torch.log(torch.tensor(10.0)).item()))
    assert model.generate(4).shape == (4, 784)


def test_categorical_vae_binary_variant_and_bad_args():
    model = CategoricalVAE(categories=2, variables=5, visible=7)
    assert _shapes(model.decoder)[0] == (5, 256)
    h, _ = model.sample_posterior(torch.zeros(2, 7), 3)
    assert h[0].shape == (3, 2, 5)
    with pytest.raises(ValueError, match="categories"):
        CategoricalVAE(categories=1)
    with pytest.raises(ValueError, match="x must"):
        model.sample_posterior(torch.zeros(2, 8), 3)
