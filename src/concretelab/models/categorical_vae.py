"""The categorical VAE of Jang, Gu & Poole (2017), Sec. 4.2: 20 latent variables of 10 categories, MLP
encoder and decoder 784-512-256 (ReLU), uniform categorical prior:

    q(h | x) = prod_j Categorical(h_j; softmax(e_j(x))),   p(h) = prod_j Uniform{1..K},
    p(x | h) = Bernoulli(sigmoid(d(h))),   d: 20 K -> 256 -> 512 -> 784.

With categories = 2 the variables are binary units (0/1 values, 20 decoder inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from concretelab.checks import check_int
from concretelab.models.base import LatentModel, flat, sample_discrete
from concretelab.models.networks import bernoulli_log_likelihood, glorot_init, mean_logits

__all__ = ["CategoricalVAE"]


class CategoricalVAE(LatentModel):
    """Jang et al. (2017)'s categorical VAE; ``variables`` latent variables of ``categories`` categories."""

    def __init__(
        self,
        categories: int = 10,
        variables: int = 20,
        visible: int = 784,
        *,
        train_mean: Tensor | None = None,
    ) -> None:
        super().__init__()
        for name, value, low in (("categories", categories, 2), ("variables", variables, 1), ("visible", visible, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.categories = categories
        self.visible = visible
        self.latent_units = (variables,)
        self.latent_categories = (categories,)
        width = variables if categories == 2 else variables * categories
        self.encoder = nn.Sequential(
            nn.Linear(visible, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, width)
        )
        self.decoder = nn.Sequential(
            nn.Linear(width, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, visible)
        )
        glorot_init(self)
        shape = (variables,) if categories == 2 else (variables, categories)
        self.register_buffer("uniform_logits", torch.zeros(shape))
        if train_mean is not None:
            with torch.no_grad():
                self.decoder[-1].bias.copy_(mean_logits(train_mean, visible))

    def model_args(self) -> dict[str, Any]:
        return {"name": "categorical-vae", "categories": self.categories}

    def proposal_logits(self, i: int, x: Tensor, values: Sequence[Tensor]) -> Tensor:
        self._check_x(x, self.visible)
        out = self.encoder(x)
        return out if self.categories == 2 else out.unflatten(-1, (self.latent_units[0], self.categories))

    def prior_logits(self, x: Tensor, values: Sequence[Tensor]) -> list[Tensor]:
        return [self.uniform_logits]

    def log_likelihood(self, x: Tensor, values: Sequence[Tensor]) -> Tensor:
        return bernoulli_log_likelihood(self.decoder(flat(values[0], self.categories)), x)

    @torch.no_grad()
    def generate(
        self, num: int, *, generator: torch.Generator | None = None, condition: Tensor | None = None
    ) -> Tensor:
        """h ~ uniform prior, then the pixel probabilities sigmoid(d(h)), shape (num, visible)."""
        check_int("num", num, 1)
        h = sample_discrete(self.categories, self.uniform_logits, self._layer_shape(0, (num,)), generator)
        return torch.sigmoid(self.decoder(flat(h, self.categories)))
