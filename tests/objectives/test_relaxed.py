"""The three relaxed objectives against direct computations written out with torch.distributions, the
importance-weighted relaxed bound against the relaxed model's log-marginal (quadrature), and finiteness.

The objectives draw their noise layer by layer in proposal order with ``sample_logistic`` /
``sample_gumbel`` of shape (m, batch, units[, K]) (documented in concretelab.objectives.relaxed); the
references below redraw it from a generator with the same seed.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import (
    Bernoulli,
    Categorical,
    kl_divergence,
)
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

from concretelab.functional import sample_gumbel, sample_logistic
from concretelab.models import CategoricalVAE, SigmoidBeliefNet, build_model
from concretelab.objectives import (
    OBJECTIVES,
    get_objective,
    relaxed,
    relaxed_analytic_kl,
    relaxed_logratio,
    sample_relaxed_latents,
)
from concretelab.objectives.terms import layer_log_prob

F64 = torch.float64
LAM_P, LAM_Q = 0.5, 2 / 3


def _perturbed(model, scale=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=F64))
    return model


def _x(batch, dim, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, dim, generator=g, dtype=F64) < 0.5).to(F64)


def _sbn_reference(model, x, m, seed):
    """Two-layer linear binary SBN 'top-bottom-V', everything spelled out."""
    g = torch.Generator().manual_seed(seed)
    enc0, enc1 = model.encoder
    gen1, dec = model.generative[0], model.decoder
    b = x.shape[0]
    n1, n2 = enc0.out_features, enc1.out_features
    a1q = x @ enc0.weight.T + enc0.bias
    l1 = sample_logistic((m, b, n1), generator=g, dtype=F64)
    z1 = (a1q + l1) / LAM_Q
    s1 = torch.sigmoid(z1)
    a2q = s1 @ enc1.weight.T + enc1.bias
    l2 = sample_logistic((m, b, n2), generator=g, dtype=F64)
    z2 = (a2q + l2) / LAM_Q
    s2 = torch.sigmoid(z2)
    a2p = model.prior_bias.expand(m, b, n2)
    a1p = s2 @ gen1.weight.T + gen1.bias
    loglik = Bernoulli(logits=s1 @ dec.weight.T + dec.bias, validate_args=False).log_prob(x).sum(-1)
    return dict(z=(z1, z2), s=(s1, s2), aq=(a1q, a2q), ap=(a1p, a2p), loglik=loglik)


def _lme(w):
    return torch.logsumexp(w, 0) - math.log(w.shape[0])


@pytest.mark.parametrize("m", [1, 5])
def test_sbn_objectives_match_direct_computation(m):
    model = _perturbed(SigmoidBeliefNet.from_spec("2H-3H-5V"))
    x = _x(4, 5)
    r = _sbn_reference(model, x, m, seed=11)
    (z1, z2), (s1, s2), (a1q, a2q), (a1p, a2p) = r["z"], r["s"], r["aq"], r["ap"]

    def lrb(lam, logits, z):
        return LogitRelaxedBernoulli(torch.tensor(lam, dtype=F64), logits=logits, validate_args=False).log_prob(z)

    log_q = lrb(LAM_Q, a1q, z1).sum(-1) + lrb(LAM_Q, a2q, z2).sum(-1)
    log_p = lrb(LAM_P, a1p, z1).sum(-1) + lrb(LAM_P, a2p, z2).sum(-1)
    want_relaxed = _lme(r["loglik"] + log_p - log_q)

    def bern(logits, v):
        return Bernoulli(logits=logits, validate_args=False).log_prob(v).sum(-1)

    want_ratio = _lme(r["loglik"] + bern(a1p, s1) + bern(a2p, s2) - bern(a1q, s1) - bern(a2q, s2))

    def kl(q, p):
        q, p = torch.broadcast_tensors(q, p)
        return kl_divergence(Bernoulli(logits=q), Bernoulli(logits=p)).sum(-1)

    want_kl = (r["loglik"] - kl(a1q, a1p) - kl(a2q, a2p)).mean(0)

    kw = dict(samples=m, prior_temperature=LAM_P, posterior_temperature=LAM_Q)
    got = {
        "relaxed": relaxed(model, x, generator=torch.Generator().manual_seed(11), **kw),
        "ratio": relaxed_logratio(model, x, generator=torch.Generator().manual_seed(11), **kw),
        "kl": relaxed_analytic_kl(model, x, generator=torch.Generator().manual_seed(11), **kw),
    }
    torch.testing.assert_close(got["relaxed"], want_relaxed, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got["ratio"], want_ratio, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got["kl"], want_kl, rtol=1e-10, atol=1e-10)
    assert got["relaxed"].shape == (4,)


@pytest.mark.parametrize("m", [1, 3])
def test_categorical_objectives_match_direct_computation(m):
    model = _perturbed(CategoricalVAE(categories=3, variables=2, visible=5))
    x = _x(4, 5)
    g = torch.Generator().manual_seed(5)
    aq = model.encoder(x).unflatten(-1, (2, 3))
    noise = sample_gumbel((m, 4, 2, 3), generator=g, dtype=F64)
    y = torch.log_softmax((aq + noise) / LAM_Q, -1)
    v = y.exp()
    loglik = Bernoulli(logits=model.decoder(v.flatten(-2)), validate_args=False).log_prob(x).sum(-1)
    zeros = torch.zeros(2, 3, dtype=F64)
    log_q = ExpRelaxedCategorical(torch.tensor(LAM_Q, dtype=F64), logits=aq, validate_args=False).log_prob(y)
    log_p = ExpRelaxedCategorical(torch.tensor(LAM_P, dtype=F64), logits=zeros, validate_args=False).log_prob(y)
    want_relaxed = _lme(loglik + log_p.sum(-1) - log_q.sum(-1))
    ratio = (v * (torch.log_softmax(zeros, -1) - torch.log_softmax(aq, -1))).sum((-2, -1))
    want_ratio = _lme(loglik + ratio)
    want_kl = (loglik - kl_divergence(Categorical(logits=aq), Categorical(logits=zeros)).sum(-1)).mean(0)
    kw = dict(samples=m, prior_temperature=LAM_P, posterior_temperature=LAM_Q)
    for fn, want in ((relaxed, want_relaxed), (relaxed_logratio, want_ratio), (relaxed_analytic_kl, want_kl)):
        got = fn(model, x, generator=torch.Generator().manual_seed(5), **kw)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_structured_objectives_at_equal_temperatures_reduce_to_the_likelihood():
    # proposal = conditional prior: at lambda_p = lambda_q the latent log-ratio is 0 for all three objectives
    model = _perturbed(build_model("3V-3H-2H-3V"))
    x = _x(4, 6)
    values = [
        fn(model, x, samples=3, prior_temperature=0.7, posterior_temperature=0.7,
           generator=torch.Generator().manual_seed(2))
        for fn in (relaxed, relaxed_logratio)
    ]
    torch.testing.assert_close(values[0], values[1], rtol=1e-12, atol=1e-12)
    kl = relaxed_analytic_kl(model, x, samples=1, prior_temperature=0.7, posterior_temperature=0.7,
                             generator=torch.Generator().manual_seed(2))
    one = relaxed(model, x, samples=1, prior_temperature=0.7, posterior_temperature=0.7,
                  generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(kl, one, rtol=1e-12, atol=1e-12)
    different = relaxed(model, x, samples=1, prior_temperature=0.3, posterior_temperature=0.7,
                        generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(different, one)  # different temperatures: the relaxed densities differ


def _logit_binconcrete(z, logits, lam):
    t = lam * z - logits
    return math.log(lam) - torch.nn.functional.softplus(-t) - torch.nn.functional.softplus(t)


@torch.no_grad()
def _relaxed_quadrature(model, x, lam_p, lam_q):
    """One latent unit, by quadrature on a grid of z:
    log p_relaxed(x) = log int LogitBinConcrete(z; b, lam_p) p(x | sigmoid(z)) dz and the relaxed ELBO
    int q(z) [log p(z) + log p(x | sigmoid(z)) - log q(z)] dz, q = LogitBinConcrete(z; a_q(x), lam_q)."""
    z = torch.linspace(-80, 80, 400_001, dtype=F64)
    log_prior = _logit_binconcrete(z, model.prior_bias, lam_p)
    log_q = _logit_binconcrete(z, model.encoder[0](x[None])[0], lam_q)
    dec = model.decoder
    a = torch.sigmoid(z)[:, None] * dec.weight[:, 0] + dec.bias  # (Z, D)
    loglik = (x * a - torch.nn.functional.softplus(a)).sum(-1)
    log_marginal = math.log(float(torch.trapezoid((log_prior + loglik).exp(), z)))
    elbo = float(torch.trapezoid(log_q.exp() * (log_prior + loglik - log_q), z))
    return log_marginal, elbo


def test_iwae_relaxed_bound_increases_with_m_towards_the_relaxed_log_marginal():
    model = _perturbed(SigmoidBeliefNet.from_spec("1H-4V"), scale=2.0, seed=3)
    x1 = _x(1, 4, seed=4)
    log_marginal, elbo = _relaxed_quadrature(model, x1[0], LAM_P, LAM_Q)
    means, ses = [], []
    with torch.no_grad():
        for m, reps, seed in ((1, 20_000, 1), (5, 20_000, 2), (50, 4_000, 3), (2_000, 200, 4)):
            lm = relaxed(model, x1.expand(reps, 4), samples=m, prior_temperature=LAM_P,
                         posterior_temperature=LAM_Q, generator=torch.Generator().manual_seed(seed))
            means.append(float(lm.mean()))
            ses.append(float(lm.std()) / math.sqrt(reps))
    assert abs(means[0] - elbo) < 4 * ses[0]  # L_1 is an unbiased estimate of the relaxed ELBO
    # strictly increasing in m (each step by more than 4 combined standard errors) and below log p_relaxed(x)
    assert means[1] - means[0] > 4 * math.hypot(ses[0], ses[1])
    assert means[2] - means[1] > 4 * math.hypot(ses[1], ses[2])
    assert means[2] < log_marginal + 4 * ses[2]
    # L_2000 has nearly closed the gap (2.3 nats at m = 1): the relaxed bound converges to log p_relaxed(x)
    assert means[3] < log_marginal + 4 * ses[3]
    assert log_marginal - means[3] < 0.15


@pytest.mark.parametrize("name", list(OBJECTIVES))
@pytest.mark.parametrize("model_name", ["sbn", "categorical", "structured"])
def test_finite_values_and_gradients_at_low_temperature_and_large_logits(name, model_name):
    if model_name == "sbn":
        model = SigmoidBeliefNet.from_spec("3H~4H-6V")
    elif model_name == "categorical":
        model = CategoricalVAE(categories=4, variables=3, visible=6)
    else:
        model = build_model("3V-4H-3H-3V", categories=2)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(60.0)  # logits in the hundreds
    x = _x(5, 6).float()
    lam_q = torch.tensor(1e-3, requires_grad=True)
    fn = get_objective(name)
    for samples in (1, 5):
        bound = fn(model, x, samples=samples, prior_temperature=1e-3, posterior_temperature=lam_q,
                   generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(bound).all()
        model.zero_grad()
        lam_q.grad = None
        (-bound.mean()).backward()
        for name, p in model.named_parameters():  # every parameter enters the bound: a missing gradient is a bug
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert lam_q.grad is not None and torch.isfinite(lam_q.grad)


def test_learnable_temperature_receives_a_gradient():
    model = SigmoidBeliefNet.from_spec("3H-6V")
    lam = torch.tensor(0.5, requires_grad=True)
    relaxed(model, _x(4, 6).float(), samples=2, prior_temperature=lam, posterior_temperature=lam).sum().backward()
    assert lam.grad is not None and torch.isfinite(lam.grad) and lam.grad != 0


def test_registry_and_bad_arguments():
    assert set(OBJECTIVES) == {"relaxed", "relaxed-logratio", "relaxed-analytic-kl"}
    with pytest.raises(ValueError, match="relaxed-logratio"):
        get_objective("elbo")
    model = SigmoidBeliefNet.from_spec("3H-6V")
    x = _x(2, 6).float()
    kw = dict(prior_temperature=0.5, posterior_temperature=0.5)
    with pytest.raises(ValueError, match="samples"):
        relaxed(model, x, samples=0, **kw)
    with pytest.raises(ValueError, match="posterior_temperature"):
        relaxed(model, x, samples=1, prior_temperature=0.5, posterior_temperature=0.0)
    with pytest.raises(ValueError, match="prior_temperature"):
        relaxed(model, x, samples=1, prior_temperature=float("nan"), posterior_temperature=0.5)
    with pytest.raises(ValueError, match="x must"):
        relaxed(model, x[0], samples=1, **kw)
    with pytest.raises(ValueError, match=r"\(batch, 6\)"):
        relaxed(model, _x(2, 7).float(), samples=1, **kw)


@pytest.mark.parametrize(("spec", "categories"), [("2H-3H-5V", 2), ("4H~4H-5V", 4), ("2V-3H-2H-3V", 2)])
def test_zero_temperature_logratio_is_the_discrete_log_weight(spec, categories):
    # as lambda_q -> 0 the relaxed sample becomes the discrete one (sigmoid(z) -> 1[a + L > 0], exp(y) -> the
    # Gumbel-max one-hot), so relaxed-logratio -> log p(x, h) - log q(h | x) of the discrete model
    model = _perturbed(build_model(spec, categories=categories))
    x = _x(4, 5)
    with torch.no_grad():
        h = sample_relaxed_latents(model, x, 3, 1e-9, torch.Generator().manual_seed(8)).values
        for value in h:
            assert set(value.unique().tolist()) <= {0.0, 1.0}  # saturated: exactly discrete
        log_q = sum(layer_log_prob(categories, model.proposal_logits(i, x, h[:i]), h[i]) for i in range(len(h)))
        want = _lme(model.log_joint(x, h) - log_q)
        ratio = relaxed_logratio(model, x, samples=3, prior_temperature=0.5, posterior_temperature=1e-9,
                                 generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(ratio, want, rtol=1e-10, atol=1e-10)
