"""The base of every concretelab model: discrete sampling and the discrete-model protocol, written once from
the relaxed protocol (``latent_categories``, ``proposal_logits``, ``prior_logits``, ``log_likelihood``).

Binary layers hold 0/1 values (..., batch, units); K-ary layers one-hot values (..., batch, units, K).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from concretelab.checks import check_int
from concretelab.functional import sample_discrete
from concretelab.objectives.terms import layer_log_prob

__all__ = ["LatentModel", "flat", "sample_discrete"]


def flat(value: Tensor, categories: int) -> Tensor:
    """A layer's value as network input: binary (..., units) as is, K-ary (..., units, K) flattened to units*K."""
    return value if categories == 2 else value.flatten(-2)


class LatentModel(nn.Module):
    """Discrete-model protocol (``sample_posterior``, ``log_joint``) from the relaxed protocol.

    Subclasses set ``latent_categories``, ``latent_units``, ``proposal_is_prior`` and ``conditional`` and
    implement ``proposal_logits``, ``prior_logits``, ``log_likelihood``, ``generate`` and ``model_args``.
    """

    latent_categories: tuple[int, ...]
    latent_units: tuple[int, ...]
    proposal_is_prior: bool = False
    conditional: bool = False
    #: Independent replicas held in one model (``concretelab.train.replicas.stack_replicas``); 1 for a model.
    replicas: int = 1

    def proposal_logits(self, i: int, x: Tensor, values: Sequence[Tensor]) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def prior_logits(self, x: Tensor, values: Sequence[Tensor]) -> list[Tensor]:  # pragma: no cover
        raise NotImplementedError

    def log_likelihood(self, x: Tensor, values: Sequence[Tensor]) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def model_args(self) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _layer_shape(self, i: int, lead: Sequence[int]) -> tuple[int, ...]:
        k = self.latent_categories[i]
        return (*lead, self.latent_units[i]) if k == 2 else (*lead, self.latent_units[i], k)

    def sample_posterior(
        self, x: Tensor, num_samples: int, *, generator: torch.Generator | None = None
    ) -> tuple[list[Tensor], Tensor]:
        """h ~ q(h | x) layer by layer (proposal order) and log q(h | x), shape (num_samples, batch)."""
        check_int("num_samples", num_samples, 1)
        h: list[Tensor] = []
        log_q = x.new_zeros(num_samples, x.shape[0])
        for i, k in enumerate(self.latent_categories):
            logits = self.proposal_logits(i, x, h)
            value = sample_discrete(k, logits, self._layer_shape(i, (num_samples, x.shape[0])), generator)
            log_q = log_q + layer_log_prob(k, logits, value)
            h.append(value)
        return h, log_q

    def log_joint(self, x: Tensor, h: Sequence[Tensor]) -> Tensor:
        """log p(x, h) = sum_layers log p(h_l | parents) + log p(x | h), shape (num_samples, batch)."""
        if len(h) != len(self.latent_categories):
            raise ValueError(f"h must hold {len(self.latent_categories)} layers, got {len(h)}")
        total = self.log_likelihood(x, h)
        for k, logits, value in zip(self.latent_categories, self.prior_logits(x, h), h, strict=True):
            total = total + layer_log_prob(k, logits, value)
        return total

    def _check_x(self, x: Tensor, size: int) -> None:
        if x.dim() != 2 or x.shape[1] != size:
            raise ValueError(f"x must have shape (batch, {size}), got {tuple(x.shape)}")
