"""Structured prediction with stochastic layers (Maddison, Mnih & Teh 2017, Sec. 5, after Raiko et al. 2015):
model the lower half of an image given its upper half, ``392V-240H-240H-392V``:

    p(y, h_1, h_2 | u) = p(h_1 | u) p(h_2 | h_1) p(y | h_2),

each factor Bernoulli (or Categorical per K-ary unit) of an affine map (``-``) or a two-tanh-layer map
(``~``) of the layer before it. There is no inference network: the conditional prior p(h | u) is also the
proposal, so the importance weights are p(y | h) and the NLL counts the lower half only. x is the full image
(batch, 784); its first ``conditioning`` pixels (rows 0-13 of a 28 x 28 image) are u, the rest y.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from concretelab.models.base import LatentModel, flat, sample_discrete
from concretelab.models.networks import bernoulli_log_likelihood, last_linear, make_map, mean_logits
from concretelab.models.spec import NetworkSpec, parse_spec

__all__ = ["StructuredPredictionSBN"]


class StructuredPredictionSBN(LatentModel):
    """p(lower | upper) through stochastic layers; the conditional prior is the proposal.

    Args:
        spec: a parsed structured-prediction [`NetworkSpec`][concretelab.models.NetworkSpec] (``NV-...H-...-MV``).
        train_mean: (N + M,) training pixel means of the full image (the lower part sets the output bias).
    """

    proposal_is_prior = True
    conditional = True

    def __init__(self, spec: NetworkSpec, *, train_mean: Tensor | None = None) -> None:
        super().__init__()
        if not spec.structured:
            raise ValueError(f"spec {spec.spec!r} is not a structured-prediction spec (NV-...-MV)")
        k = spec.categories
        self.spec = spec
        self.upper = spec.conditioning
        self.lower = spec.visible
        self.latent_units = spec.units
        self.latent_categories = (k,) * len(spec.units)
        width = [u if k == 2 else u * k for u in spec.units]
        # connection j joins (conditioning pixels, h_1, ..., h_n)[j] to the next layer; '~' uses the width of
        # the layer above it in bits (the conditioning pixels for the first)
        sizes_in = [spec.conditioning, *width]
        bits_in = [spec.conditioning, *spec.hidden_bits]
        sizes_out = [*width, spec.visible]
        self.nets = nn.ModuleList(
            make_map(sizes_in[j], sizes_out[j], bits_in[j] if spec.nonlinear[j] else None)
            for j in range(len(sizes_out))
        )
        if train_mean is not None:
            if not isinstance(train_mean, Tensor) or train_mean.shape != (self.upper + self.lower,):
                shape = tuple(train_mean.shape) if isinstance(train_mean, Tensor) else type(train_mean).__name__
                raise ValueError(f"train_mean must have shape ({self.upper + self.lower},), got {shape}")
            with torch.no_grad():
                last_linear(self.nets[-1]).bias.copy_(mean_logits(train_mean[self.upper :], self.lower))

    @classmethod
    def from_spec(
        cls, spec: str, categories: int = 2, *, train_mean: Tensor | None = None
    ) -> StructuredPredictionSBN:
        return cls(parse_spec(spec, categories), train_mean=train_mean)

    def model_args(self) -> dict[str, Any]:
        return {"name": self.spec.spec, "categories": self.spec.categories}

    def _logits(self, i: int, inputs: Tensor) -> Tensor:
        out = self.nets[i](inputs)
        k = self.latent_categories[i]
        return out if k == 2 else out.unflatten(-1, (self.latent_units[i], k))

    def proposal_logits(self, i: int, x: Tensor, values: Sequence[Tensor]) -> Tensor:
        if i == 0:
            self._check_x(x, self.upper + self.lower)
            return self._logits(0, x[:, : self.upper])
        return self._logits(i, flat(values[i - 1], self.latent_categories[i - 1]))

    def prior_logits(self, x: Tensor, values: Sequence[Tensor]) -> list[Tensor]:
        return [self.proposal_logits(i, x, values) for i in range(len(self.latent_categories))]

    def log_likelihood(self, x: Tensor, values: Sequence[Tensor]) -> Tensor:
        """log p(y | h_n) of the lower pixels y = x[:, upper:], shape (m, batch)."""
        logits = self.nets[-1](flat(values[-1], self.latent_categories[-1]))
        return bernoulli_log_likelihood(logits, x[:, self.upper :])

    def log_joint(self, x: Tensor, h: Sequence[Tensor]) -> Tensor:
        """log p(y, h | u), shape (num_samples, batch)."""
        return super().log_joint(x, h)

    @torch.no_grad()
    def generate(
        self, num: int, *, generator: torch.Generator | None = None, condition: Tensor | None = None
    ) -> Tensor:
        """Images (num, D) whose upper half is ``condition``'s (num, D) and whose lower half holds the pixel
        probabilities of one ancestral sample h ~ p(h | upper)."""
        if condition is None:
            raise ValueError(
                "this structured-prediction model is conditional: generate needs condition=(num, "
                f"{self.upper + self.lower}) images whose upper {self.upper} pixels are kept"
            )
        if condition.shape != (num, self.upper + self.lower):
            raise ValueError(
                f"condition must have shape (num, {self.upper + self.lower}) = "
                f"{(num, self.upper + self.lower)}, got {tuple(condition.shape)}"
            )
        param = next(self.parameters())
        x = condition.to(device=param.device, dtype=param.dtype)
        h: list[Tensor] = []
        for i, k in enumerate(self.latent_categories):
            logits = self.proposal_logits(i, x, h)
            h.append(sample_discrete(k, logits, self._layer_shape(i, (num,)), generator))
        probs = torch.sigmoid(self.nets[-1](flat(h[-1], self.latent_categories[-1])))
        return torch.cat([x[:, : self.upper], probs], dim=1)
