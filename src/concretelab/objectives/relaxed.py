"""Relaxed training objectives for discrete-latent models (Maddison, Mnih & Teh 2017, Sec. 4 and Appendix C).

Each objective is called as ``fn(model, x, *, samples, prior_temperature, posterior_temperature,
generator=None)`` and returns the per-example bound ``(batch,)`` in nats (higher is better; the training
loss is ``-bound.mean()``). With ``samples = m > 1`` the m samples run in one batched pass, every tensor
shaped ``(m, batch, ...)``, and the bound is the importance-weighted

    L_m = log (1/m) sum_i exp(log w_i)                                                   (Burda et al. 2016)

of the objective's per-sample log-weight ``log w_i`` (the analytic-KL objective, which has no per-sample
log-weight, averages its m single-sample values instead).

The relaxed protocol a model implements (``latent_categories``, ``proposal_logits``, ``prior_logits``,
``log_likelihood``, ``proposal_is_prior``) is described in [`concretelab.objectives`][concretelab.objectives].

Sampling. Layer i of the proposal (in proposal order, layer 0 first) draws its noise from ``generator``
as ``sample_logistic((m, batch, units))`` would (binary: the same uniforms, the same transform) or with
``sample_gumbel((m, batch, units, K))`` (K-ary), and is relaxed in log space:

    binary: z = (a_q + L) / lambda_q  (LogitBinConcrete, eq. 21),      value fed forward sigmoid(z)
    K-ary:  y = log_softmax((a_q + G) / lambda_q)  (ExpConcrete, eq. 8), value fed forward exp(y)

References
    [1] C. J. Maddison, A. Mnih, Y. W. Teh, "The Concrete Distribution", ICLR 2017, arXiv:1611.00712.
    [2] Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from concretelab.checks import check_int
from concretelab.distributions import ExpConcrete, LogitBinConcrete
from concretelab.functional import broadcast_shapes, traced
from concretelab.objectives.protocols import RelaxedModel
from concretelab.objectives.terms import layer_kl, layer_log_prob, log_mean_exp

__all__ = [
    "RelaxedSample",
    "relaxed",
    "relaxed_analytic_kl",
    "relaxed_logratio",
    "sample_relaxed_latents",
]

Temperature = float | Tensor


def _temperature(name: str, value: Temperature, like: Tensor) -> Tensor:
    """A temperature as a tensor: one for every example (a float or a 0-d tensor), or one per example, a column
    ``(batch, 1)`` (replicas trained at different temperatures, ``train --seeds`` with temperature lists)."""
    if isinstance(value, Tensor):
        if value.dim() != 0 and tuple(value.shape) != (like.shape[0], 1):
            raise ValueError(f"{name} must be a float, a 0-d tensor or a column ({like.shape[0]}, 1) of one "
                             f"temperature per example, got a tensor of shape {tuple(value.shape)}")
        if not value.dtype.is_floating_point:
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
        # checked like a float (one host read; skipped while tracing for torch.compile or capturing a CUDA graph)
        if not traced(value) and not bool((torch.isfinite(value) & (value > 0)).all()):
            raise ValueError(f"{name} must be finite and positive, got {value.detach().flatten()[:8].tolist()}")
        return value.to(device=like.device, dtype=like.dtype)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)


def _check_inputs(x: Tensor, samples: int) -> None:
    check_int("samples", samples, 1)
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a (batch, D) tensor, got {shape}")


@dataclass
class RelaxedSample:
    """One batched relaxed draw from the proposal (every list has one entry per layer, proposal order).

    points: z (binary, logit space) or y (K-ary, log-simplex), shape (m, batch, units[, K]).
    values: sigmoid(z) or exp(y), what the networks consume.
    proposal_logits: a_q of each layer ((batch, units[, K]) for layer 0, (m, batch, ...) above it).
    log_q: (m, batch), sum over layers of the relaxed proposal log-density at its own noise.
    """

    points: list[Tensor]
    values: list[Tensor]
    proposal_logits: list[Tensor]
    log_q: Tensor


def _relaxed_layer(categories: int, temperature: Tensor, logits: Tensor) -> LogitBinConcrete | ExpConcrete:
    """The relaxed law of one layer: LogitBinConcrete (binary, eq. 21) or ExpConcrete (K-ary, eq. 8)."""
    family = LogitBinConcrete if categories == 2 else ExpConcrete
    return family(temperature, logits=logits, validate_args=False)  # the objectives checked their inputs


def sample_relaxed_latents(
    model: RelaxedModel, x: Tensor, samples: int, posterior_temperature: Temperature, generator: torch.Generator | None
) -> RelaxedSample:
    """Draw z ~ q_relaxed(z | x) layer by layer in log space and score it at its own noise
    (``sample_and_log_prob`` of LogitBinConcrete or ExpConcrete):

        binary: log q(z) = sum_units [log lambda - softplus(-L) - softplus(L)]             (eq. 21 at z)
        K-ary:  log kappa(y) = sum_units [log (K-1)! + (K-1) log lambda - sum_k G_k - K logsumexp_k(-G_k)]

    (both equal the density of the sampled point; their gradient with respect to the logits is exactly 0).
    Building the distribution objects costs 2 to 5% of a training step against calling the kernels directly
    (benchmarks/objective_api.py).
    """
    lam = _temperature("posterior_temperature", posterior_temperature, x)
    batch = x.shape[0]
    points: list[Tensor] = []
    values: list[Tensor] = []
    logits_list: list[Tensor] = []
    log_q = x.new_zeros(samples, batch)
    for i, categories in enumerate(model.latent_categories):
        logits = model.proposal_logits(i, x, values)
        event = (1,) if categories == 2 else (1, 1)
        shape = broadcast_shapes((samples, batch, *event), logits.shape)
        point, layer_log_q = _relaxed_layer(categories, lam, logits.expand(shape)).sample_and_log_prob(
            generator=generator
        )
        log_q = log_q + layer_log_q.sum(-1)
        points.append(point)
        values.append(torch.sigmoid(point) if categories == 2 else point.exp())
        logits_list.append(logits)
    return RelaxedSample(points, values, logits_list, log_q)


def _prior_logits(model: RelaxedModel, x: Tensor, sample: RelaxedSample) -> list[Tensor]:
    if getattr(model, "proposal_is_prior", False):
        return sample.proposal_logits  # the conditional prior is the proposal: same network, same inputs
    return model.prior_logits(x, sample.values)


def relaxed(model: RelaxedModel, x: Tensor, *, samples: int = 1, prior_temperature: Temperature,
            posterior_temperature: Temperature, generator: torch.Generator | None = None) -> Tensor:
    r"""The relaxed bound (the default): relaxed densities for both q and p, in log space (Maddison et al.
    2017, Sec. 4 and Appendix C). With $z_i \sim q_{\text{relaxed}}(\cdot \mid x)$ at $\lambda_q$:

    $$
    \log w_i = \log p\bigl(x \mid \sigma(z_i)\bigr) + \log p_{\text{relaxed}}(z_i; \lambda_p)
    - \log q_{\text{relaxed}}(z_i \mid x; \lambda_q), \qquad
    L_m = \log \frac{1}{m} \sum_{i=1}^m e^{\log w_i},
    $$

    where for each layer p_relaxed is LogitBinConcrete (binary) or ExpConcrete (K-ary) with the prior's logits,
    given the relaxed value of the layer above (the top layer uses the learned prior logits). q and p are
    both densities of the same log-space variable, so the Jacobians of sigmoid / exp cancel in the ratio and
    are never computed. This is the only one of the three objectives that is a true lower bound, namely of
    log p_relaxed(x) of the relaxed model p_relaxed(z) p(x | sigmoid(z)). Returns (batch,).
    """
    _check_inputs(x, samples)
    sample = sample_relaxed_latents(model, x, samples, posterior_temperature, generator)
    lam_p = _temperature("prior_temperature", prior_temperature, x)
    log_w = model.log_likelihood(x, sample.values) - sample.log_q
    for categories, point, logits in zip(
        model.latent_categories, sample.points, _prior_logits(model, x, sample), strict=True
    ):
        if lam_p.dim():  # a temperature per example: the logits (a top layer's have no batch) take the point's shape
            logits = logits.expand(point.shape)
        log_w = log_w + _relaxed_layer(categories, lam_p, logits).log_prob(point).sum(-1)
    return log_w[0] if samples == 1 else log_mean_exp(log_w, dim=0)


def relaxed_logratio(model: RelaxedModel, x: Tensor, *, samples: int = 1, prior_temperature: Temperature,
                     posterior_temperature: Temperature, generator: torch.Generator | None = None) -> Tensor:
    r"""The discrete log-ratio at the relaxed sample (Maddison et al. 2017, Appendix C, the variant that
    scores relaxed samples with the discrete mass functions). With $z_i \sim q_{\text{relaxed}}(\cdot \mid x)$ at
    $\lambda_q$ and $b_i = \sigma(z_i)$ (or $e^{y_i}$) standing in for the discrete value, and $a$ a layer's logits:

    $$
    \log w_i = \log p(x \mid b_i) + \sum_{\text{layers}} \bigl[\log P(b_i) - \log Q(b_i \mid x)\bigr], \qquad
    L_m = \log \frac{1}{m} \sum_{i=1}^m e^{\log w_i},
    $$

    $$
    \log P(b) = \sum_{\text{units}} \bigl(b\, a - \operatorname{softplus}(a)\bigr) \ \text{(Bernoulli)}, \qquad
    \log P(b) = \sum_{\text{units}} \sum_k b_k \operatorname{log\_softmax}(a)_k \ \text{(categorical)}.
    $$

    It is not a bound on any model (P and Q are mass functions evaluated off their support).
    ``prior_temperature`` is accepted for the common signature and unused. Returns (batch,).
    """
    _check_inputs(x, samples)
    sample = sample_relaxed_latents(model, x, samples, posterior_temperature, generator)
    log_w = model.log_likelihood(x, sample.values)
    layers = zip(model.latent_categories, sample.values, sample.proposal_logits, _prior_logits(model, x, sample),
                 strict=True)
    for categories, value, q_logits, p_logits in layers:
        log_w = log_w + layer_log_prob(categories, p_logits, value) - layer_log_prob(categories, q_logits, value)
    return log_w[0] if samples == 1 else log_mean_exp(log_w, dim=0)


def relaxed_analytic_kl(model: RelaxedModel, x: Tensor, *, samples: int = 1, prior_temperature: Temperature,
                        posterior_temperature: Temperature, generator: torch.Generator | None = None) -> Tensor:
    r"""Reconstruction at the relaxed sample plus the analytic discrete KL (Maddison et al. 2017, Appendix C;
    the form Jang et al. 2017 train their categorical VAE with). With $z_i \sim q_{\text{relaxed}}(\cdot \mid x)$ at
    $\lambda_q$:

    $$
    f_i = \log p\bigl(x \mid \sigma(z_i)\bigr) - \sum_l \operatorname{KL}\bigl(Q(h_l \mid \text{relaxed layer below})
    \,\|\, P(h_l \mid \text{relaxed layer above})\bigr), \qquad L_m = \frac{1}{m} \sum_{i=1}^m f_i.
    $$

    Each layer's KL is the exact discrete one (Bernoulli or categorical, summed over units), with the
    conditioning layers at their relaxed values. There is no per-sample log-weight, so m > 1 averages the
    m single-sample values (a lower-variance estimate of the same objective, not an importance-weighted
    bound). ``prior_temperature`` is accepted for the common signature and unused. Returns (batch,).
    """
    _check_inputs(x, samples)
    sample = sample_relaxed_latents(model, x, samples, posterior_temperature, generator)
    f = model.log_likelihood(x, sample.values)
    for categories, q_logits, p_logits in zip(
        model.latent_categories, sample.proposal_logits, _prior_logits(model, x, sample), strict=True
    ):
        f = f - layer_kl(categories, q_logits, p_logits)
    return f[0] if samples == 1 else f.mean(dim=0)
