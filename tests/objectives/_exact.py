"""Exact references for small discrete-latent models, by enumerating every latent state (float64)."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from concretelab.objectives import layer_log_prob


def layer_states(units: int, categories: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Every value of one layer: (K**units, units) 0/1 rows, or (K**units, units, K) one-hot rows."""
    if categories == 2:
        return torch.tensor(list(itertools.product([0.0, 1.0], repeat=units)), dtype=dtype)
    index = torch.tensor(list(itertools.product(range(categories), repeat=units)))
    return torch.nn.functional.one_hot(index, categories).to(dtype)


def all_states(model, batch: int) -> list[Tensor]:
    """Every joint latent state of the model, as h-lists with shape (S, batch, ...)."""
    per_layer = [layer_states(u, k) for u, k in zip(model.latent_units, model.latent_categories, strict=True)]
    counts = [len(s) for s in per_layer]
    grids = torch.cartesian_prod(*[torch.arange(c) for c in counts]).reshape(-1, len(counts))
    out = []
    for i, states in enumerate(per_layer):
        chosen = states[grids[:, i]]  # (S, units[, K])
        out.append(chosen.unsqueeze(1).expand(chosen.shape[0], batch, *chosen.shape[1:]))
    return out


@torch.no_grad()
def exact_terms(model, x: Tensor) -> tuple[Tensor, Tensor]:
    """(log p(x, h), log q(h | x)) for every state h, each (S, batch)."""
    h = all_states(model, x.shape[0])
    log_joint = model.log_joint(x, h)
    log_q = torch.zeros_like(log_joint)
    for i, k in enumerate(model.latent_categories):
        log_q = log_q + layer_log_prob(k, model.proposal_logits(i, x, h[:i]), h[i])
    return log_joint, log_q


def exact_log_marginal(model, x: Tensor) -> Tensor:
    """log p(x) = logsumexp_h log p(x, h), shape (batch,)."""
    log_joint, _ = exact_terms(model, x)
    return torch.logsumexp(log_joint, dim=0)
