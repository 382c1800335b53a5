"""Objectives for discrete-latent models: relaxed training bounds and the discrete importance-weighted bound.

Training objectives, registered in [`OBJECTIVES`][concretelab.objectives.OBJECTIVES] under their CLI names and all
called as ``fn(model, x, *, samples, prior_temperature, posterior_temperature, generator=None) -> (batch,)``:

- ``relaxed`` (default, [`relaxed`][concretelab.objectives.relaxed.relaxed]): relaxed densities for q and p in log
  space; a true lower bound of the relaxed model's log-marginal (Maddison et al. 2017, Sec. 4 and Appendix C);
- ``relaxed-logratio`` ([`relaxed_logratio`][concretelab.objectives.relaxed_logratio]): discrete log-ratio log P(b)/Q(b)
  at b = relaxed sample;
- ``relaxed-analytic-kl`` ([`relaxed_analytic_kl`][concretelab.objectives.relaxed_analytic_kl]): reconstruction at the
  relaxed sample minus the analytic discrete KL of each layer.

Evaluation: [`discrete_bound`][concretelab.objectives.discrete_bound] (L_k of the discrete model, streamed; k up to
50,000) and [`discrete_bound_per_image`][concretelab.objectives.discrete_bound_per_image] (the same over a whole split,
in batches, with progress).

The relaxed protocol ([`RelaxedModel`][concretelab.objectives.RelaxedModel];
[`DiscreteModel`][concretelab.objectives.DiscreteModel] for [`discrete_bound`][concretelab.objectives.discrete_bound],
[`TrainableModel`][concretelab.objectives.TrainableModel] for the trainer). Objectives never import models; a model
offers, with layers numbered in proposal order (the order the proposal samples them; 0 first):

- ``latent_categories: tuple[int, ...]``: categories per stochastic layer; 2 means binary units whose logits
  and values have shape (..., batch, units); K > 2 means K-ary units with shape (..., batch, units, K);
- ``proposal_logits(i, x, values) -> Tensor``: logits of layer i of the proposal given x (batch, D) and the
  values of layers 0..i-1 (relaxed: sigmoid(z) or exp(y); discrete: 0/1 or one-hot), each (m, batch, ...);
  layer 0 may return (batch, units[, K]) without the sample dimension;
- ``prior_logits(x, values) -> list[Tensor]``: the generative model's logits of every layer given the values
  of all layers (the top layer's may be a plain (units[, K]) bias);
- ``log_likelihood(x, values) -> (m, batch)``: log p(x | latents) of the data (Bernoulli for pixels);
- ``proposal_is_prior: bool`` (optional, default False): the proposal is the conditional prior (structured
  prediction), so prior logits are the proposal's and are not recomputed.

The discrete-model protocol (``sample_posterior``, ``log_joint``) that
[`discrete_bound`][concretelab.objectives.discrete_bound] consumes is documented there and in docs/dev/contracts.md.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from concretelab.objectives.bound import (
    StreamingLogMeanExp,
    default_chunk_size,
    discrete_bound,
    discrete_bound_per_image,
    model_placement,
)
from concretelab.objectives.protocols import DiscreteModel, RelaxedModel, TrainableModel
from concretelab.objectives.relaxed import (
    RelaxedSample,
    relaxed,
    relaxed_analytic_kl,
    relaxed_logratio,
    sample_relaxed_latents,
)
from concretelab.objectives.terms import (
    bernoulli_kl,
    bernoulli_log_prob_sum,
    categorical_kl,
    categorical_log_prob_sum,
    layer_kl,
    layer_log_prob,
    log_mean_exp,
)

__all__ = [
    "OBJECTIVES",
    "DiscreteModel",
    "RelaxedModel",
    "RelaxedSample",
    "StreamingLogMeanExp",
    "TrainableModel",
    "bernoulli_kl",
    "bernoulli_log_prob_sum",
    "categorical_kl",
    "categorical_log_prob_sum",
    "default_chunk_size",
    "discrete_bound",
    "discrete_bound_per_image",
    "get_objective",
    "layer_kl",
    "layer_log_prob",
    "log_mean_exp",
    "model_placement",
    "relaxed",
    "relaxed_analytic_kl",
    "relaxed_logratio",
    "sample_relaxed_latents",
]

Objective = Callable[..., Tensor]

#: Training objectives by CLI name; ``relaxed`` is the default.
OBJECTIVES: dict[str, Objective] = {
    "relaxed": relaxed,
    "relaxed-logratio": relaxed_logratio,
    "relaxed-analytic-kl": relaxed_analytic_kl,
}


def get_objective(name: str) -> Objective:
    """The objective registered under ``name``; ValueError listing the names otherwise."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; expected one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
