"""Sigmoid belief networks (Neal 1992) with binary or K-ary stochastic layers, as trained with Concrete
relaxations in Maddison, Mnih & Teh (2017), Sec. 5 and Appendix C.

Generative model, layers h_L (top) ... h_1 above the pixels x:

    p(h_L) = Bernoulli(sigmoid(b))  (or Categorical(softmax(b)) per K-ary unit; b a learned bias)
    p(h_l | h_{l+1}) = Bernoulli(sigmoid(f_l(h_{l+1}))),   p(x | h_1) = Bernoulli(sigmoid(f_0(h_1)))

with each f an affine map (``-`` in the spec) or two tanh layers as wide as the stochastic layer above
(``~``). The inference network mirrors it: q(h_1 | x) q(h_2 | h_1) ... q(h_L | h_{L-1}), with the same
map shapes. K-ary values enter the networks as one-hot vectors (units * K inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from concretelab.checks import check_int
from concretelab.models.base import LatentModel, flat, sample_discrete
from concretelab.models.networks import ACTIVATIONS, bernoulli_log_likelihood, last_linear, make_map, mean_logits
from concretelab.models.spec import NetworkSpec, parse_spec

__all__ = ["SigmoidBeliefNet"]


class SigmoidBeliefNet(LatentModel):
    """An SBN with its inference network, built from a parsed spec (use
    [`from_spec`][concretelab.models.SigmoidBeliefNet.from_spec]).

    Layers are stored in proposal order: index 0 is h_1 (next to the pixels), the last is the top layer.
    Args:
        spec: a parsed [`NetworkSpec`][concretelab.models.NetworkSpec] without conditioning pixels.
        train_mean: (visible,) training pixel means for the output bias (None: zero bias).
        activation: the hidden layers' nonlinearity of the ``~`` maps, a name in ``models.networks.ACTIVATIONS``:
            ``tanh`` (the paper's) or ``leaky_relu`` (slope 0.3, DisARM's nonlinear models).
    """

    def __init__(self, spec: NetworkSpec, *, train_mean: Tensor | None = None, activation: str = "tanh") -> None:
        super().__init__()
        if spec.structured:
            raise ValueError(f"spec {spec.spec!r} is a structured-prediction spec; use StructuredPredictionSBN")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        act = ACTIVATIONS[activation]
        k = spec.categories
        self.spec = spec
        self.visible = spec.visible
        bits = spec.hidden_bits[::-1]  # proposal order
        self.latent_units = spec.units[::-1]
        self.latent_categories = (k,) * len(bits)
        nonlinear = spec.nonlinear[::-1]  # nonlinear[i]: the connection below proposal layer i
        width = [u if k == 2 else u * k for u in self.latent_units]
        n = len(bits)

        def hidden(i: int) -> int | None:
            return bits[i] if nonlinear[i] else None

        self.decoder = make_map(width[0], spec.visible, hidden(0), act)
        self.generative = nn.ModuleList(make_map(width[i + 1], width[i], hidden(i + 1), act) for i in range(n - 1))
        self.encoder = nn.ModuleList(
            [make_map(spec.visible, width[0], hidden(0), act)]
            + [make_map(width[i - 1], width[i], hidden(i), act) for i in range(1, n)]
        )
        top_shape = (self.latent_units[-1],) if k == 2 else (self.latent_units[-1], k)
        self.prior_bias = nn.Parameter(torch.zeros(top_shape))
        if train_mean is not None:
            with torch.no_grad():
                last_linear(self.decoder).bias.copy_(mean_logits(train_mean, spec.visible))

    @classmethod
    def from_spec(
        cls, spec: str, categories: int = 2, *, train_mean: Tensor | None = None, activation: str = "tanh"
    ) -> SigmoidBeliefNet:
        """Build from a spec string such as ``200H~784V`` (see `concretelab.models.spec`)."""
        return cls(parse_spec(spec, categories), train_mean=train_mean, activation=activation)

    def model_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"name": self.spec.spec, "categories": self.spec.categories}
        if self.activation != "tanh":  # (absent from the checkpoints of tanh models, as before)
            args["activation"] = self.activation
        return args

    def _logits(self, net: nn.Module, inputs: Tensor, i: int) -> Tensor:
        out = net(inputs)
        k = self.latent_categories[i]
        return out if k == 2 else out.unflatten(-1, (self.latent_units[i], k))

    def proposal_logits(self, i: int, x: Tensor, values: Sequence[Tensor]) -> Tensor:
        if i == 0:
            self._check_x(x, self.visible)
            return self._logits(self.encoder[0], x, 0)
        return self._logits(self.encoder[i], flat(values[i - 1], self.latent_categories[i - 1]), i)

    def prior_logits(self, x: Tensor, values: Sequence[Tensor]) -> list[Tensor]:
        below = [
            self._logits(net, flat(values[i + 1], self.latent_categories[i + 1]), i)
            for i, net in enumerate(self.generative)
        ]
        top = self.prior_bias
        if self.replicas > 1:  # stacked replicas (R, *shape): replica r's bias for its rows r*b..(r+1)*b-1 of x
            top = top.repeat_interleave(x.shape[0] // self.replicas, dim=0)
        return [*below, top]

    def log_likelihood(self, x: Tensor, values: Sequence[Tensor]) -> Tensor:
        """log p(x | h_1) = sum_d x_d a_d - softplus(a_d), a = f_0(h_1); shape (m, batch)."""
        return bernoulli_log_likelihood(self.decoder(flat(values[0], self.latent_categories[0])), x)

    @torch.no_grad()
    def generate(
        self, num: int, *, generator: torch.Generator | None = None, condition: Tensor | None = None
    ) -> Tensor:
        """Ancestral samples h_L, ..., h_1 and the pixel probabilities sigmoid(f_0(h_1)), shape (num, visible)."""
        check_int("num", num, 1)
        top = len(self.latent_categories) - 1
        h = sample_discrete(self.latent_categories[top], self.prior_bias, self._layer_shape(top, (num,)), generator)
        for i in range(top - 1, -1, -1):
            logits = self._logits(self.generative[i], flat(h, self.latent_categories[i + 1]), i)
            h = sample_discrete(self.latent_categories[i], logits, self._layer_shape(i, (num,)), generator)
        return torch.sigmoid(self.decoder(flat(h, self.latent_categories[0])))
