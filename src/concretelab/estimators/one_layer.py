"""The lab's single-layer estimators as trainers of a model with one stochastic layer: ``concretelab train
--estimator NAME`` for ARM, double control variates, RODEO, REBAR, RELAX, REINFORCE, IndeCateR, straight-through,
straight-through Gumbel, Gumbel-Rao and ReinMax.

These estimators are defined for one set of independent variables and an f of them (``concretelab.estimators``),
so they train a model whose latents are one layer h: DisARM's linear and nonlinear Bernoulli VAEs (``200H-784V``,
``200H~784V``) and the categorical VAEs. A model with two or more layers is refused with a message saying so (the
estimators with a per-layer form, NVIL, VIMCO, REINFORCE-LOO, DisARM and ARMS, train those).

With encoder logits a = a_φ(x) (batch, units) and the per-example objective (``concretelab.estimators``, module
docstring)

    f_i(h) = log p_θ(x_i, h) − log q(h | a_i),   q's logits held fixed inside f,

the estimator's estimate ĝ_i of ∂/∂a_i E_q[f_i(h)] (one row of values per example, so example i's signal is its own f_i)
is backpropagated into φ through a. The proposal's own term E_q[−∇_φ log q(h | x)] is zero and is left out, as the
layered estimators leave it out (``concretelab.estimators.layered``). The generative gradient is ∇_θ of the mean of f
over the exact samples the estimator evaluated f at (both members of ARM's pair; the K samples of double CV and RODEO; b
of REBAR and RELAX, not their relaxed points; IndeCateR's samples, not the points with one variable changed), without
evaluating f again: f keeps its values with their graph to θ. The value returned, the training bound, is the mean of
those values.

The pathwise estimators (straight-through, ST Gumbel, Gumbel-Rao, ReinMax: ``PathwiseEstimator``) are applied
directly: f is evaluated once at the estimator's points, built from the encoder logits by its ``point_map``, and one
backward pass gives both the encoder's gradient (the estimator's) and the decoder's (at the sample, the points'
value).

The estimator's adaptive state (REBAR's η and λ and their Adam state, RELAX's network, the coefficients of double CV
and RODEO, REINFORCE's moving average) is the module's extra state, so a checkpoint stores it and a resumed run
replays an uninterrupted one; in eval mode it is frozen (each estimate uses it, and the step the lab estimator then
takes is undone). That state is shared by every example of a batch, so stacked replicas (``train
--seeds``) would share it too: estimators with adaptive state train one seed per process (``replicable``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from concretelab.estimators._base import GradientEstimator, PathwiseEstimator
from concretelab.estimators.layered import LayeredEstimator, _Model, _value_with_gradient_of
from concretelab.objectives import layer_log_prob

__all__ = ["ONE_LAYER", "OneLayerEstimator", "one_layer_form"]

#: The lab estimators that train through this module (those without a per-layer form that take a per-example f).
ONE_LAYER = ("arm", "double_cv", "gumbel_rao", "indecater", "rebar", "reinforce", "reinmax", "relax", "rodeo",
             "st_gumbel", "straight_through")


class OneLayerEstimator(LayeredEstimator):
    """A lab estimator applied to a model with one stochastic layer (module docstring). Subclasses made by
    ``one_layer_form`` name the estimator (``estimator_class``)."""

    estimator_class: ClassVar[type[GradientEstimator]]
    structured = False
    single_layer: ClassVar[bool] = True
    replicable: ClassVar[bool] = True

    def __init__(self, estimator: GradientEstimator) -> None:
        super().__init__()
        self.estimator = estimator

    @classmethod
    def for_model(cls, model: _Model, *, input_width: int, **options: Any) -> OneLayerEstimator:
        """The estimator for ``model``'s one latent layer (Bernoulli for binary units, categorical otherwise)."""
        categories = tuple(model.latent_categories)
        name = cls.estimator_class.name
        if len(categories) != 1:
            raise ValueError(f"estimator {name!r} is defined for one layer of independent variables; the model has "
                             f"{len(categories)} stochastic layers (train it with a layered estimator: nvil, vimco, "
                             "reinforce_loo, disarm or arms)")
        family = "bernoulli" if categories[0] == 2 else "categorical"
        return cls(cls.estimator_class(family, **options))

    def extra_repr(self) -> str:
        return repr(self.estimator)

    def get_extra_state(self) -> dict[str, Any]:
        return self.estimator.state_dict()

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.estimator.load_state_dict(state)

    def estimate(self, model: _Model, x: Tensor, samples: int, generator: torch.Generator | None) -> Tensor:
        categories = model.latent_categories[0]
        logits = model.proposal_logits(0, x, [])  # (batch, units) or (batch, units, K)
        fixed = logits.detach()
        exact: list[Tensor] = []  # f at the exact samples, with the graph to θ

        def f(points: Tensor) -> Tensor:  # (M, batch, units[, K]) -> (M, batch)
            # an exact sample (relaxed and straight-through points are built from the logits; IndeCateR's changed
            # points, evaluated after its samples, are not samples)
            sample = points.is_leaf and not (self.estimator.off_sample_points and exact)
            # a sample's values keep their graph to θ, even under the no_grad of an estimator that needs them only
            with torch.set_grad_enabled(sample or torch.is_grad_enabled()):
                values = model.log_joint(x, [points]) - layer_log_prob(categories, fixed, points)
            if sample:
                exact.append(values)
            return values

        if isinstance(self.estimator, PathwiseEstimator):
            theta = logits.expand(samples, *logits.shape)
            values = f(self.estimator.point_map(fixed, samples, generator)(theta))  # (m, batch)
            return _value_with_gradient_of(values.detach().mean(0), values.mean(0))
        frozen = self.estimator.state_dict() if not self.training else None  # a copy (state_dict's contract)
        grad = self.estimator.estimate(f, fixed, samples, generator=generator)  # ĝ, shaped like the logits
        if frozen is not None:  # eval mode: the step the estimator took after its estimate is undone
            self.estimator.load_state_dict(frozen)
        evaluated = torch.cat(exact)  # (rows, batch)
        encoder = (grad.detach() * logits).flatten(1).sum(1)
        return _value_with_gradient_of(evaluated.detach().mean(0), evaluated.mean(0) + encoder)


def one_layer_form(estimator: type[GradientEstimator]) -> type[OneLayerEstimator]:
    """The ``OneLayerEstimator`` of a lab estimator class: what its ``layered`` attribute names."""
    return type(f"OneLayer{estimator.__name__}", (OneLayerEstimator,), {
        "estimator_class": estimator,
        "min_samples": estimator.min_samples,
        "binary_only": "categorical" not in estimator.families,
        "replicable": not estimator.stateful,
        "__doc__": f"``{estimator.name}`` on a model with one stochastic layer (``OneLayerEstimator``).",
        "__module__": __name__,
    })
