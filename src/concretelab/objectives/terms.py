"""Log-probability and KL kernels of the discrete units, written for relaxed as well as discrete values.

Binary units carry logits ``a`` (shape (..., units)); K-ary units carry logits (..., units, K). All sums run
over the units (and categories), leaving the leading (samples, batch) dimensions.

    Bernoulli:    log p(b) = b log sigmoid(a) + (1 - b) log sigmoid(-a) = b a - softplus(a)
    Categorical:  log p(b) = sum_k b_k log_softmax(a)_k
    KL(q || p) over one unit, summed: sum_v q(v) (log q(v) - log p(v))

The formulas are linear in b, so a relaxed value (b in (0, 1) or on the simplex) may stand in for b, as the
``relaxed-logratio`` objective does (Maddison et al. 2017, Appendix C).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from concretelab import functional

__all__ = [
    "bernoulli_kl",
    "bernoulli_log_prob_sum",
    "categorical_kl",
    "categorical_log_prob_sum",
    "layer_kl",
    "layer_log_prob",
    "log_mean_exp",
]


def bernoulli_log_prob_sum(logits: Tensor, value: Tensor) -> Tensor:
    """sum_units [b a - softplus(a)] (= b log sigmoid(a) + (1-b) log sigmoid(-a)), summed over the last (units)
    dimension; logits broadcast to value
    ([`concretelab.functional.bernoulli_log_prob_sum`][concretelab.functional.bernoulli_log_prob_sum]; the elementwise
    form is [`concretelab.functional.bernoulli_log_prob`][concretelab.functional.bernoulli_log_prob])."""
    return functional.bernoulli_log_prob_sum(logits, value)


def categorical_log_prob_sum(logits: Tensor, value: Tensor) -> Tensor:
    """sum_units sum_k b_k log_softmax(a)_k, summed over the units; logits (..., units, K) broadcast to value
    ([`concretelab.functional.categorical_log_prob`][concretelab.functional.categorical_log_prob], which sums over the
    categories only, summed over the units)."""
    return functional.categorical_log_prob(logits, value).sum(-1)


def bernoulli_kl(q_logits: Tensor, p_logits: Tensor) -> Tensor:
    """sum_units KL(Bernoulli(sigmoid a_q) || Bernoulli(sigmoid a_p))
    = sum_units q1 (log q1 - log p1) + q0 (log q0 - log p0), with log sigmoid(a) = -softplus(-a)."""
    lq1, lq0 = -functional.softplus(-q_logits), -functional.softplus(q_logits)
    lp1, lp0 = -functional.softplus(-p_logits), -functional.softplus(p_logits)
    return (lq1.exp() * (lq1 - lp1) + lq0.exp() * (lq0 - lp0)).sum(-1)


def categorical_kl(q_logits: Tensor, p_logits: Tensor) -> Tensor:
    """sum_units sum_k q_k (log q_k - log p_k), logits (..., units, K)."""
    log_q = torch.log_softmax(q_logits, dim=-1)
    log_p = torch.log_softmax(p_logits, dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum((-2, -1))


def layer_log_prob(categories: int, logits: Tensor, value: Tensor) -> Tensor:
    """Bernoulli (categories == 2) or categorical log-probability of ``value`` under ``logits``."""
    return bernoulli_log_prob_sum(logits, value) if categories == 2 else categorical_log_prob_sum(logits, value)


def layer_kl(categories: int, q_logits: Tensor, p_logits: Tensor) -> Tensor:
    """Bernoulli (categories == 2) or categorical KL(q || p), summed over the layer's units."""
    return bernoulli_kl(q_logits, p_logits) if categories == 2 else categorical_kl(q_logits, p_logits)


def log_mean_exp(values: Tensor, dim: int = 0) -> Tensor:
    """log (1/m) sum_i exp(values_i) along ``dim`` (m = its size), via logsumexp."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])
