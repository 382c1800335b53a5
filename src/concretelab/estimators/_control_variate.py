"""The estimator shared by REBAR and RELAX, and their online variance-minimising adaptation.

For z = θ + noise, b = H(z) and z̃ ~ p(z | b) (conditional noise, differentiable in θ with its own noise
held fixed), and a control variate c_φ evaluated at perturbed logits,

    ĝ = [f(b) − c_φ(z̃)] ∇_θ log p_θ(b) + ∇_θ c_φ(z) − ∇_θ c_φ(z̃)

(Tucker et al. 2017, eq. 6; Grathwohl et al. 2018, the RELAX estimator) is unbiased for every φ, so φ can descend
the per-coordinate second moment E[‖ĝ‖²], which equals the variance up to a constant independent of φ
(Grathwohl et al. 2018; relax.py says why no equation numbers are cited). The gradient ∂E[ĝ²]/∂φ goes through
∇_θ c_φ, so the pathwise terms are built with ``create_graph=True`` when adapting (a second backward pass through f).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from concretelab.checks import check_positive
from concretelab.estimators._base import (
    MultiSampleEstimator,
    Objective,
    PathwiseObjective,
    SingleSampleEstimator,
    conditional_noise,
    conditional_perturbation,
    evaluate,
    mean_param,
    per_element,
    perturb_and_sample,
)

__all__ = ["AdaptedCoefficients", "ControlVariateEstimator", "coefficient", "control_variate_estimates",
           "variance_step"]


class ControlVariateEstimator(SingleSampleEstimator):
    """The state REBAR and RELAX share: the control-variate scale η and the relaxation's temperature λ, both
    adapted online (Adam, step ``lr``) to lower the estimate's second moment when ``adapt``; three
    f-evaluations per sample. Subclasses add their own parameters in ``reset``."""

    unbiased = True
    evaluations_per_sample = 3
    differentiable_f = True
    stateful = True

    def __init__(self, family: str = "bernoulli", *, eta: float = 1.0, temperature: float = 0.5, lr: float = 1e-2,
                 adapt: bool = True) -> None:
        super().__init__(family)
        self.initial_eta = float(eta)
        if not math.isfinite(self.initial_eta):
            raise ValueError(f"eta must be a finite number, got {eta!r}")
        self.initial_temperature = check_positive("temperature", temperature)
        self.lr = check_positive("lr", lr)
        self.adapt = bool(adapt)

    def reset(self) -> None:
        self.eta_param = torch.tensor(self.initial_eta, dtype=torch.float64, requires_grad=True)
        self.log_temperature = torch.tensor(math.log(self.initial_temperature), dtype=torch.float64, requires_grad=True)
        self.last_second_moment = float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {"eta": self.eta_param.detach().clone(), "log_temperature": self.log_temperature.detach().clone(),
                "optimizer": copy.deepcopy(self.optimizer.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.eta_param.copy_(state["eta"])
            self.log_temperature.copy_(state["log_temperature"])
        self.optimizer.load_state_dict(state["optimizer"])

    @property
    def eta(self) -> float:
        return float(self.eta_param.detach())

    @property
    def temperature(self) -> float:
        return float(self.log_temperature.detach().exp())


def coefficient(name: str) -> property:
    """The current value of the adapted coefficient ``name`` (``AdaptedCoefficients``), as a float."""
    return property(lambda self: float(getattr(self, f"{name}_param").detach()), doc=f"The current {name}.")


class AdaptedCoefficients(MultiSampleEstimator):
    """A multi-sample estimator with scalar control-variate coefficients (``double_cv``'s α; ``rodeo``'s α, β),
    each a float64 leaf ``{name}_param`` adapted online when ``adapt``: one Adam step (``lr``) per call on the mean
    squared norm of the call's estimates (``variance_step``). ``reset()`` restores the initial values."""

    coefficients: ClassVar[tuple[str, ...]] = ()
    unbiased = True
    differentiable_f = True
    stateful = True

    def __init__(self, family: str, *, lr: float, adapt: bool, **initial: float) -> None:
        super().__init__(family)
        for name in self.coefficients:
            value = initial[name]
            if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        self.initial = {name: float(initial[name]) for name in self.coefficients}
        self.lr = check_positive("lr", lr)
        self.adapt = bool(adapt)
        self.reset()

    def reset(self) -> None:
        for name, value in self.initial.items():
            setattr(self, f"{name}_param", torch.tensor(value, dtype=torch.float64, requires_grad=True))
        self.optimizer = torch.optim.Adam(self._params(), lr=self.lr)
        self.last_second_moment = float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {**{name: param.detach().clone() for name, param in zip(self.coefficients, self._params(), strict=True)},
                "optimizer": copy.deepcopy(self.optimizer.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for name, param in zip(self.coefficients, self._params(), strict=True):
                param.copy_(state[name])
        self.optimizer.load_state_dict(state["optimizer"])

    def _params(self) -> list[Tensor]:
        return [getattr(self, f"{name}_param") for name in self.coefficients]

    def coefficient_values(self, dtype: torch.dtype) -> list[Tensor]:
        """The coefficients in ``dtype``, differentiable (for ``adapt_to``)."""
        return [param.to(dtype) for param in self._params()]

    def adapt_to(self, estimates: Tensor) -> None:
        """One step of the coefficients on this call's estimates, when adapting."""
        if self.adapt:
            self.last_second_moment = variance_step(estimates, self._params(), self.optimizer)


def control_variate_estimates(
    f: Objective,
    logits: Tensor,
    num: int,
    family: str,
    generator: torch.Generator | None,
    control: Callable[[Tensor, int], Tensor],
    *,
    create_graph: bool,
    objective: PathwiseObjective,
) -> Tensor:
    """(num, *logits.shape) one-sample estimates ĝ; with ``create_graph`` they stay differentiable in φ.

    ``control`` maps perturbed logits (M, *shape) and the number of f's batch axes (0, or those of a per-example f)
    to c_φ values shaped like f's, (M[, *batch]); it is called once on z and z̃ stacked and
    evaluates f at relaxed points through ``objective``, checked after the pathwise backward pass (ValueError
    naming the estimator when f is not differentiable with respect to its input).
    """
    noise, b = perturb_and_sample(logits, num, family, generator)  # (num, *shape) each
    cond = conditional_noise(b, family, generator)
    with torch.no_grad():
        fb = evaluate(f, b).detach().to(logits.dtype)  # (num,)
    rep = logits.detach().expand(num, *logits.shape).clone().requires_grad_(True)
    with torch.enable_grad():
        z = rep + noise
        z_tilde = conditional_perturbation(rep, b, family, cond)
        c = control(torch.cat([z, z_tilde]), fb.dim() - 1)  # (2 num[, *batch])
        c_z, c_tilde = c[:num], c[num:]
        (pathwise,) = torch.autograd.grad((c_z - c_tilde).sum(), rep, create_graph=create_graph, allow_unused=True)
        objective.check()
        if pathwise is None:  # not reached: check() raised unless f was never evaluated at a relaxed point
            pathwise = torch.zeros_like(rep)
        if not create_graph:
            c_tilde = c_tilde.detach()
        score = b - mean_param(logits, family)  # ∇_θ log p_θ(b), no graph needed
        signal = per_element(fb - c_tilde, 1 + logits.dim())
        return signal * score + pathwise


def variance_step(estimates: Tensor, params: Sequence[Tensor], optimizer: torch.optim.Optimizer) -> float:
    """One optimizer step on mean_n ‖ĝ_n‖² with respect to ``params`` only (f's own parameters untouched).

    Returns the loss value (the mean squared norm of the estimates, before the step).
    """
    with torch.enable_grad():
        loss = estimates.pow(2).reshape(estimates.shape[0], -1).sum(dim=1).mean()
        grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    optimizer.zero_grad(set_to_none=True)
    finite = True
    for p, g in zip(params, grads, strict=True):
        if g is not None and not bool(torch.isfinite(g).all()):
            finite = False
        p.grad = None if g is None else g.detach()
    if finite:  # a non-finite second moment (overflowing f) skips the step instead of corrupting φ
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())
