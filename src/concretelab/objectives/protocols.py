"""The model interface, as ``typing.Protocol`` classes: what the objectives, ``discrete_bound`` and the
trainer call on a model, and nothing more. Any object with these members works; no base class is needed
(``concretelab.models.LatentModel`` implements all three for the built-in models).

Layers are numbered in proposal order (the order the proposal samples them; 0 first). A binary layer's
logits and values have shape (..., batch, units); a K-ary layer's (..., batch, units, K). The contract in
words, with examples, is docs/dev/contracts.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["DiscreteModel", "RelaxedModel", "TrainableModel"]


@runtime_checkable
class RelaxedModel(Protocol):
    """What the relaxed objectives ([`relaxed`][concretelab.objectives.relaxed.relaxed],
    [`relaxed_logratio`][concretelab.objectives.relaxed_logratio],
    [`relaxed_analytic_kl`][concretelab.objectives.relaxed_analytic_kl]) call. A model may also set ``proposal_is_prior
    = True`` (structured prediction: the prior's logits are the proposal's and are not recomputed); without it the
    objectives take False."""

    #: Categories per stochastic layer: 2 for binary units, K > 2 for K-ary ones.
    latent_categories: tuple[int, ...]

    def proposal_logits(self, i: int, x: Tensor, values: Sequence[Tensor]) -> Tensor:
        """Logits of proposal layer i given x (batch, D) and the values of layers 0..i-1, each (m, batch, ...);
        layer 0 may leave out the sample dimension."""
        ...

    def prior_logits(self, x: Tensor, values: Sequence[Tensor]) -> list[Tensor]:
        """The generative model's logits of every layer given the values of all layers (the top layer's may be
        a plain (units[, K]) bias)."""
        ...

    def log_likelihood(self, x: Tensor, values: Sequence[Tensor]) -> Tensor:
        """log p(x | latents), shape (m, batch)."""
        ...


@runtime_checkable
class DiscreteModel(Protocol):
    """What [`discrete_bound`][concretelab.objectives.discrete_bound] calls: the discrete model and its proposal."""

    def sample_posterior(
        self, x: Tensor, num_samples: int, *, generator: torch.Generator | None = None
    ) -> tuple[list[Tensor], Tensor]:
        """h ~ q(h | x) (one tensor per layer, each (num_samples, batch, ...)) and log q(h | x),
        shape (num_samples, batch)."""
        ...

    def log_joint(self, x: Tensor, h: Sequence[Tensor]) -> Tensor:
        """log p(x, h), shape (num_samples, batch) (log p(y, h | context) for a conditional model)."""
        ...


@runtime_checkable
class TrainableModel(RelaxedModel, DiscreteModel, Protocol):
    """What ``concretelab train`` needs of a model: both protocols above, the ``torch.nn.Module`` members
    it uses to optimise, move and checkpoint it, and ``model_args()``, the keyword arguments that rebuild it
    (stored in the checkpoint)."""

    training: bool

    def model_args(self) -> dict[str, Any]: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...
