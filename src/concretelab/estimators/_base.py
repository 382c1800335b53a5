"""The shared estimator interface, argument checks and the sampling helpers every estimator uses.

Estimand (all estimators): the gradient of an expectation over a discrete distribution given by logits,

    g(θ) = ∂/∂θ E_{b ~ p_θ}[f(b)],

with p_θ either a factorised Bernoulli (``family="bernoulli"``: b ∈ {0,1}, same shape as θ, p = σ(θ))
or a factorised categorical (``family="categorical"``: θ of shape (..., K), b one-hot of the same shape,
p = softmax(θ) along the last axis). f does not depend on θ (Mohamed, Rosca, Figurnov & Mnih, JMLR 2020,
Sec. 2).

The objective f receives a batch of points of shape (M, *logits.shape) for any M and returns shape (M,);
row m of its output must depend only on row m of its input (no batch statistics across rows). Pathwise
estimators (``differentiable_f = True``) also evaluate it at relaxed points (values in [0, 1] or on the
simplex) and differentiate it, so f must be differentiable with respect to its input (checked by
``PathwiseObjective``: ValueError naming the estimator otherwise); score-function estimators only call it
on exact samples.

Per-example objectives. Where the logits hold a batch of independent examples (a VAE's encoder logits, (batch,
units)), f may return one value per example instead: shape (M, *batch), ``batch`` a leading part of
``logits.shape`` that leaves at least one axis (the categorical K axis at least), and entry (m, i) depending only on
row m of example i. Each example's logits are then scored against its own value, so the estimate for example i is
an estimate of ∂/∂θ_i E[f_i(b_i)], the same expectation as for the summed f(b) = Σ_i f_i(b_i), without the other
examples' values as noise in example i's signal. Adapted coefficients (REBAR's η and λ, RELAX's network, the α and
β of double CV and RODEO) and NVIL's baseline stay shared by the batch; RELAX's network takes one example at a
time; IndeCateR changes one variable of every example at once, so a per-example f costs it 1 + n (K − 1)
evaluations for n variables per example. ``exact_multisample_gradient`` needs one value per row.

Terminology. A *sample* is one b ~ p_θ. A *draw* is one independent estimate of g: for the single-sample
estimators one draw uses one sample (plus the f-evaluations it pairs with it), for the multi-sample ones
(``reinforce_loo``, ``vimco``) one draw uses the whole set of ``num_samples`` samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from concretelab.checks import check_int as check_count
from concretelab.checks import check_positive
from concretelab.functional import (
    one_hot_argmax,
    sample_bernoulli,
    sample_categorical,
    sample_gumbel,
    sample_logistic,
    sample_uniform_open,
    softplus,
)

Objective = Callable[[Tensor], Tensor]

FAMILIES = ("bernoulli", "categorical")

__all__ = [
    "FAMILIES",
    "GradientEstimator",
    "MultiSampleEstimator",
    "Objective",
    "PathwiseEstimator",
    "PathwiseObjective",
    "RelaxedPathwiseEstimator",
    "SingleSampleEstimator",
    "arms_weight",
    "bernoulli_conditional_logistic",
    "categorical_conditional_gumbel",
    "check_positive",
    "conditional_noise",
    "conditional_perturbation",
    "dirichlet_copula_bernoulli",
    "disarm_weight",
    "evaluate",
    "leave_one_out_mean",
    "logistic_pair",
    "one_hot_argmax",
    "per_element",
    "perturb_and_sample",
    "relax_point",
    "softmax_jacobian_surrogate",
    "values_and_input_gradients",
]


def check_logits(logits: Tensor, family: str) -> None:
    """Floating, finite logits; the categorical family needs a last axis of size K >= 2."""
    if not isinstance(logits, Tensor):
        raise ValueError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.dtype.is_floating_point:
        raise ValueError(f"logits must have a floating-point dtype, got {logits.dtype}")
    if family == "categorical" and (logits.dim() == 0 or logits.shape[-1] < 2):
        raise ValueError(
            f"categorical logits must have shape (..., K) with K >= 2 categories, got {tuple(logits.shape)}"
        )
    if logits.numel() and not bool(torch.isfinite(logits).all()):
        raise ValueError(f"logits must be finite, got non-finite values in a tensor of shape {tuple(logits.shape)}")


def evaluate(f: Objective, points: Tensor) -> Tensor:
    """f at a batch of points (M, *shape) -> (M,), or (M, *batch) for a per-example f (module docstring), with
    its output shape checked."""
    values = f(points)
    if not isinstance(values, Tensor) or not 1 <= values.dim() < points.dim() \
            or values.shape != points.shape[:values.dim()]:
        got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise ValueError(
            f"f must map a batch of shape {tuple(points.shape)} to values of shape ({points.shape[0]},), or to one "
            f"value per example, of shape {tuple(points.shape[:2])} (the batch axes leading the logits' shape, at "
            f"least one axis left), got {got}"
        )
    return values


def per_element(values: Tensor, dims: int) -> Tensor:
    """f's values, (lead..., *batch), with trailing unit axes to broadcast against a tensor of ``dims`` axes whose
    leading ones they share (one value per row, or per row and example)."""
    return values.reshape(*values.shape, *([1] * (dims - values.dim())))


#: Operations whose gradient torch defines as zero everywhere: an f that rounds its input through one of them has
#: no pathwise gradient, though torch differentiates it without complaint.
_ZERO_GRADIENT_OPS = ("RoundBackward", "FloorBackward", "CeilBackward", "SignBackward", "SgnBackward",
                      "TruncBackward")


def _zero_gradient_op(roots: list[Tensor]) -> str | None:
    """The name of the first zero-gradient operation (round, floor, ...) in the graph of ``roots``, or None."""
    seen: set[object] = set()
    stack = [root.grad_fn for root in roots if root.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        name = type(node).__name__
        if name.startswith(_ZERO_GRADIENT_OPS):
            return name.removesuffix("Backward0").removesuffix("Backward1").removesuffix("Backward").lower()
        stack.extend(next_node for next_node, _ in node.next_functions)
    return None


class PathwiseObjective:
    """f as a pathwise estimator evaluates it: at points carrying the graph to the logits, where f must be
    differentiable with respect to its input.

    Calling it evaluates f (``evaluate``) and raises ``ValueError`` at once when f's values carry no gradient
    (f detached, thresholded or took an argmax of its input, or left torch). After the backward pass,
    ``check`` raises ``ValueError`` when the gradient never reached f's input (its values depend on other
    tensors only, such as f's own parameters) or when it is zero at every point because f rounds its input
    (round, floor, ceil, sign, trunc: torch gives them a zero gradient). Each message names the estimator.
    Costs one device synchronisation per check.
    """

    def __init__(self, f: Objective, estimator: str) -> None:
        self.f = f
        self.estimator = estimator
        self._roots: list[Tensor] = []  # f's values at points with a graph, one per evaluation
        self._reached: set[int] = set()  # the evaluations whose points the backward pass reached
        self._nonzero: list[Tensor] = []  # per reached evaluation: whether its input gradient has a nonzero entry
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []  # on the points, removed by ``check``
        self._checked = False

    def __call__(self, points: Tensor) -> Tensor:
        values = evaluate(self.f, points)
        if not points.requires_grad:
            return values
        if not values.requires_grad:
            raise self._error(
                "its values carry no gradient (f detaches its input, compares or thresholds "
                "it, takes an argmax of it, or computes outside torch)"
            )
        index = len(self._roots)
        self._roots.append(values)
        self._hooks.append(points.register_hook(lambda grad: self._record(index, grad)))
        return values

    def _record(self, index: int, grad: Tensor) -> None:
        if not self._checked and index not in self._reached:  # a later double backward may pass here again
            self._reached.add(index)
            self._nonzero.append(grad.detach().ne(0).any())

    def check(self) -> None:
        """After the backward pass through f: ValueError when f's gradient did not reach its input, or is zero at
        every point because f rounds its input. Releases the graph it held, and removes its hooks from the points:
        a hook refers to this object and so to f, and an f that keeps its values (``one_layer``) holds the graph
        that holds the points, a cycle through autograd's graph that Python's garbage collector cannot see, so
        each call's graph would otherwise live as long as the process (0.4 MB per training step of DisARM's
        linear model with double CV)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        roots, self._roots = self._roots, []
        nonzero, self._nonzero = self._nonzero, []
        self._checked = True
        if len(self._reached) < len(roots):
            raise self._error(
                "the gradient of its values never reaches its input (they depend on other tensors only, such as "
                "f's own parameters, or on the input through a detached or non-differentiable step)"
            )
        if nonzero and not bool(torch.stack(nonzero).any()):
            op = _zero_gradient_op(roots)
            if op is not None:
                raise self._error(
                    f"f applies {op} to its input, whose gradient torch defines as zero, so its gradient is zero "
                    "at every point"
                )

    def _error(self, why: str) -> ValueError:
        from concretelab.estimators import ESTIMATORS  # the registry imports this module

        score = ", ".join(sorted(name for name, cls in ESTIMATORS.items() if not cls.differentiable_f))
        return ValueError(
            f"estimator {self.estimator!r} differentiates f through relaxed or straight-through samples, so f must be "
            f"differentiable with respect to its input: {why}. Make f differentiable in its input, or use a "
            f"score-function estimator, which needs f's values only ({score})"
        )


def hard_sample(z: Tensor, family: str) -> Tensor:
    """The exact sample a perturbed logit determines: 1[z > 0] (Bernoulli) or one-hot argmax (categorical)."""
    return (z > 0).to(z.dtype) if family == "bernoulli" else one_hot_argmax(z)


def perturb(logits: Tensor, num: int, family: str, generator: torch.Generator | None) -> Tensor:
    """z = θ + L (logistic, Bernoulli) or θ + G (Gumbel, categorical), shape (num, *logits.shape), for relaxed
    points only; where the exact sample of z is needed too, use ``perturb_and_sample``.
    """
    shape = (num, *logits.shape)
    sampler = sample_logistic if family == "bernoulli" else sample_gumbel
    noise = sampler(shape, generator=generator, dtype=logits.dtype, device=logits.device)
    return logits + noise


def perturb_and_sample(
    logits: Tensor, num: int, family: str, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """(noise, b): standard noise (logistic or Gumbel), shape (num, *logits.shape), in the dtype of the logits,
    and the exact sample b = H(θ + noise) it determines: 1[z > 0] ~ Bernoulli(σ(θ)) or one-hot argmax z ~
    Categorical(softmax θ) (Maddison et al. 2017, eq. 2 and 9).

    The noise is drawn in float64 and b is decided there, before the noise is rounded to the logits' dtype,
    so no state is drawn more often than its probability by float rounding (``functional._DECISION_DTYPE``).
    """
    shape = (num, *logits.shape)
    sampler = sample_logistic if family == "bernoulli" else sample_gumbel
    noise = sampler(shape, generator=generator, dtype=torch.float64, device=logits.device)
    b = hard_sample(noise + logits.detach().to(torch.float64), family).to(logits.dtype)
    return noise.to(logits.dtype), b


def disarm_weight(b: Tensor, b_anti: Tensor, logits: Tensor) -> Tensor:
    """(−1)^{b̃_i} 1[b_i ≠ b̃_i] σ(|θ_i|): what multiplies ½ (f(b) − f(b̃)) in DisARM's gradient (Dong et al.
    2020, eq. 5), elementwise; ``logits`` are treated as constants."""
    logits = logits.detach()
    return (1.0 - 2.0 * b_anti) * (b != b_anti).to(logits.dtype) * torch.sigmoid(logits.abs())


def logistic_pair(
    logits: Tensor, num: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor, Tensor]:
    """(noise, b, b̃) for ARM and DisARM: a standard logistic L (num, *logits.shape) in the logits' dtype,
    b = 1[θ − L > 0] = 1[u < σ(θ)] and its antithetic b̃ = 1[θ + L > 0] = 1[1 − u < σ(θ)], decided in float64
    (see ``perturb_and_sample``).
    """
    noise = sample_logistic((num, *logits.shape), generator=generator, dtype=torch.float64, device=logits.device)
    theta = logits.detach().to(torch.float64)
    b = (theta - noise > 0).to(logits.dtype)
    b_anti = (theta + noise > 0).to(logits.dtype)
    return noise.to(logits.dtype), b, b_anti


def dirichlet_copula_bernoulli(logits: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """k draws of Bernoulli(σ(θ)), shape (k, *logits.shape), in the logits' dtype, coupled along the first axis by
    the Dirichlet copula (Dimitriev & Zhou 2021, ARMS, Sec. 3) and independent across the elements of ``logits``.

    d ~ Dirichlet(1, ..., 1) over the k draws (d_j = E_j / Σ_i E_i, E_j standard exponentials), u_j = (1 − d_j)^{k−1}
    (Uniform(0, 1) marginally: d_j ~ Beta(1, k − 1)); b_j = 1[u_j < p] where p = σ(θ) < ½ and b_j = 1[1 − u_j < p]
    where p >= ½, so that the copula always couples the rarer value, as the authors' code does. At k = 2,
    u_2 = 1 − u_1: DisARM's antithetic pair. Decided in float64 and in log space, with 1 − d_j = Σ_{i≠j} E_i / Σ_i E_i
    summed without cancellation: log u_j = (k − 1) (log Σ_{i≠j} E_i − log Σ_i E_i).
    """
    shape = (k, *logits.shape)
    u = sample_uniform_open(shape, generator=generator, dtype=torch.float64, device=logits.device)
    e = u.log_().neg_()  # (k, *shape) standard exponentials
    others = torch.stack([torch.cat([e[:j], e[j + 1:]]).sum(0) for j in range(k)])  # Σ_{i≠j} E_i, no cancellation
    log_u = (k - 1) * (others.log() - e.sum(0).log())  # log (1 − d_j)^{k−1}
    theta = logits.detach().to(torch.float64)
    below = log_u < -softplus(-theta)  # u < p
    above = log_u > -softplus(theta)  # u > 1 − p, i.e. 1 − u < p
    return torch.where(theta < 0, below, above).to(logits.dtype)


def arms_weight(logits: Tensor, k: int) -> Tensor:
    """1 / (1 − ρ): the factor that makes leave-one-out REINFORCE unbiased on the k copula-coupled draws of
    ``dirichlet_copula_bernoulli`` (Dimitriev & Zhou 2021, ARMS), elementwise, as a constant (no graph).

    ρ = (P(b_i = b_j = 1) − p²) / (p (1 − p)) is the correlation of two of the draws; with m = min(p, 1 − p) = σ(−|θ|)
    (the value the copula couples) and the copula's bivariate CDF C(m, m) = max(0, 2 m^{1/(k−1)} − 1)^{k−1},
    1 / (1 − ρ) = p (1 − p) / (m − C(m, m)) = (1 − m) / (1 − C(m, m)/m). At k = 2, C = 0 and the factor is σ(|θ|),
    DisARM's. Computed in float64 and returned in the logits' dtype.
    """
    theta = logits.detach().to(torch.float64)
    m = torch.sigmoid(-theta.abs())
    c = torch.relu(2 * m.pow(1.0 / (k - 1)) - 1).pow(k - 1)  # 0 whenever m < 2^{−(k−1)}, so for m = 0 too
    c_over_m = torch.where(c > 0, c / m, torch.zeros_like(m))  # <= m: the draws are negatively correlated
    return ((1 - m) / (1 - c_over_m)).to(logits.dtype)


def relax_point(z: Tensor, temperature: Tensor | float, family: str) -> Tensor:
    """σ(z/λ) (Bernoulli) or softmax(z/λ) (categorical): the Concrete relaxation of the sample of z."""
    if family == "bernoulli":
        return torch.sigmoid(z / temperature)
    return torch.softmax(z / temperature, dim=-1)


def bernoulli_conditional_logistic(logits: Tensor, b: Tensor, noise: Tensor) -> Tensor:
    """z̃ ~ p(z | b) for z = θ + L, b = 1[z > 0], differentiable in θ with its uniform v fixed.

    The reference's u' = b((1 − p) + v p) + (1 − b) v (1 − p), z̃ = θ + logit(u') (Tucker et al. 2017,
    App. C) simplifies to the exact log-space form

        b = 1:  z̃ = softplus(θ + log v) − log(1 − v)        (> 0)
        b = 0:  z̃ = −softplus(−θ + log(1 − v)) + log v      (< 0)

    (multiply out e^θ u'/(1 − u') with e^θ = p/(1 − p)); no clipping, finite for every finite θ.
    ``noise`` is logit(v), a standard logistic of the shape of ``b`` (a leading sample axis, then the
    shape of ``logits``).
    """
    log_v = -softplus(-noise)  # log v, v = σ(noise) ∈ (0, 1)
    log_1mv = -softplus(noise)  # log(1 − v)
    above = softplus(logits + log_v) - log_1mv
    below = log_v - softplus(-logits + log_1mv)
    return torch.where(b > 0.5, above, below)


def categorical_conditional_gumbel(logits: Tensor, b: Tensor, noise: Tensor) -> Tensor:
    """z̃ ~ p(z | argmax z = k) for z = θ + G, with b the one-hot of k; differentiable in θ, noise fixed.

    The maximum is a Gumbel located at logsumexp θ and the others are Gumbels located at θ_i truncated
    below it (Maddison, Tarlow & Minka 2014, A* sampling; Tucker et al. 2017, App. C; Paulus et al. 2021,
    App. A): with g = ``noise`` standard Gumbel of the shape of ``b`` (S, ..., K),

        z̃_k = logsumexp(θ) + g_k,      z̃_i = −log(e^{−(θ_i + g_i)} + e^{−z̃_k})   (i ≠ k).
    """
    top = torch.logsumexp(logits, dim=-1, keepdim=True) + (noise * b).sum(dim=-1, keepdim=True)  # (S, ..., 1)
    others = -torch.logaddexp(-(logits + noise), -top)
    return torch.where(b > 0.5, top, others)


def conditional_noise(b: Tensor, family: str, generator: torch.Generator | None) -> Tensor:
    """The standard noise (logistic or Gumbel) ``conditional_perturbation`` consumes, shaped like ``b``."""
    sampler = sample_logistic if family == "bernoulli" else sample_gumbel
    return sampler(b.shape, generator=generator, dtype=b.dtype, device=b.device)


def conditional_perturbation(logits: Tensor, b: Tensor, family: str, noise: Tensor) -> Tensor:
    """z̃ ~ p(z | b) for the family's perturbation z (see the two functions above)."""
    if family == "bernoulli":
        return bernoulli_conditional_logistic(logits, b, noise)
    return categorical_conditional_gumbel(logits, b, noise)


def softmax_jacobian_surrogate(probs: Tensor, logits: Tensor, family: str) -> Tensor:
    """A zero-valued tensor whose gradient in ``logits`` is the softmax Jacobian at ``probs``.

    With δ = θ − stop_grad(θ) (value 0): π ⊙ δ − π (π · δ) for categorical probabilities π (..., K)
    (J = diag π − π πᵀ, the Jacobian of softmax at π), and π (1 − π) δ for a Bernoulli probability π
    (the two-category case with logits (θ, 0)). ``probs`` is treated as a constant.
    """
    probs = probs.detach()
    delta = logits - logits.detach()
    if family == "bernoulli":
        return probs * (1 - probs) * delta
    return probs * delta - probs * (probs * delta).sum(dim=-1, keepdim=True)


def mean_param(logits: Tensor, family: str) -> Tensor:
    """E[b]: σ(θ) or softmax(θ); the score ∇_θ log p(b) is b minus this (both families)."""
    return torch.sigmoid(logits) if family == "bernoulli" else torch.softmax(logits, dim=-1)


def exact_sample(logits: Tensor, num: int, family: str, generator: torch.Generator | None) -> Tensor:
    """``num`` exact samples of p_θ, shape (num, *logits.shape), in the dtype of the logits (decided in float64:
    ``concretelab.functional.sample_bernoulli`` and ``sample_categorical``)."""
    shape = (num, *logits.shape)
    if family == "bernoulli":
        return sample_bernoulli(logits, shape, generator=generator)
    return sample_categorical(logits, shape, generator=generator)


class GradientEstimator:
    """Base class: ``estimate`` and ``per_draw`` share one signature across every estimator.

    Class attributes describe the estimator to the lab: ``name`` (the registry key), ``families`` it
    supports, ``unbiased`` (for ∂/∂θ E[f(b)], or for VIMCO the multi-sample objective), ``evaluations_per_sample``
    (f-evaluations per sample; None where the count depends on the number of variables, as IndeCateR's does:
    ``evaluations(logits)`` gives the count for a shape), ``differentiable_f`` (whether f is differentiated and
    called on relaxed points), ``min_samples``, ``stateful`` (adapts parameters as it is called; ``reset()``
    restores them) and ``objective`` (``"expectation"``, or ``"multisample"`` for VIMCO, whose reference is
    ``exact_multisample_gradient``).
    """

    name: ClassVar[str] = ""
    families: ClassVar[tuple[str, ...]] = FAMILIES
    unbiased: ClassVar[bool] = True
    evaluations_per_sample: ClassVar[int | None] = 1  # None: depends on the logits' shape, see evaluations(logits)
    differentiable_f: ClassVar[bool] = False
    multi_sample: ClassVar[bool] = False
    min_samples: ClassVar[int] = 1
    stateful: ClassVar[bool] = False
    objective: ClassVar[str] = "expectation"  # "multisample" for VIMCO: ∂/∂θ E[log mean_k exp f(b^k)]
    #: Whether f is also evaluated at exact points that are not samples of p_θ (IndeCateR's changed points), after
    #: its first evaluation, at the samples: a trainer then takes the generative gradient from that first one only.
    off_sample_points: ClassVar[bool] = False
    #: The same estimator applied layer by layer to a model's latents (a ``LayeredEstimator`` class from
    #: ``concretelab.estimators.layered``), for ``concretelab train --estimator``; None: not for training.
    layered: ClassVar[type | None] = None

    def __init__(self, family: str = "bernoulli") -> None:
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
        if family not in self.families:
            raise ValueError(
                f"estimator {self.name!r} supports only family {' or '.join(map(repr, self.families))}, "
                f"got family={family!r}"
            )
        self.family = family

    def __repr__(self) -> str:
        return f"{type(self).__name__}(family={self.family!r})"

    def evaluations(self, logits: Tensor) -> int:
        """f-evaluations per sample for ``logits``: ``evaluations_per_sample``, or, where that is None (IndeCateR's
        count grows with the number of variables), the count for this shape."""
        if self.evaluations_per_sample is None:  # pragma: no cover - such estimators override this method
            raise NotImplementedError(f"{type(self).__name__} must define evaluations(logits)")
        return int(self.evaluations_per_sample)

    def reset(self) -> None:
        """Restore the initial adaptive state (no-op for stateless estimators)."""

    def state_dict(self) -> dict[str, Any]:
        """A copy of the adaptive state (tensors, numbers and optimizer states; empty for stateless estimators), which
        later calls do not change, for a checkpoint: ``load_state_dict`` of an estimator built with the same options
        continues where this one is."""
        if self.stateful:  # pragma: no cover - every stateful estimator overrides it
            raise NotImplementedError(f"{type(self).__name__} must define state_dict()")
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        if state:
            raise ValueError(f"estimator {self.name!r} has no adaptive state, got entries {sorted(state)}")

    def estimate(
        self,
        f: Objective,
        logits: Tensor,
        num_samples: int,
        *,
        generator: torch.Generator | None = None,
        reduce: bool = True,
    ) -> Tensor:
        """The estimate of ∂/∂logits E[f(b)] from ``num_samples`` samples, shaped like ``logits``.

        With ``reduce=False``: the draws whose mean is that estimate, shape (num_draws, *logits.shape);
        num_draws = num_samples for single-sample estimators, 1 for multi-sample ones.
        """
        self._check(f, logits, num_samples)
        if self.multi_sample:
            draws = self._draws(f, logits.detach(), num_samples, 1, generator)
        else:
            draws = self._draws(f, logits.detach(), 1, num_samples, generator)
        return draws.mean(dim=0) if reduce else draws

    def per_draw(
        self,
        f: Objective,
        logits: Tensor,
        num_samples: int,
        num_draws: int,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``num_draws`` independent estimates, each what ``estimate(f, logits, num_samples)`` returns,
        computed in one batched call (a stateful estimator uses its current state for all of them and then
        adapts once). Shape (num_draws, *logits.shape); their mean and spread give bias, variance and SNR.
        """
        self._check(f, logits, num_samples)
        check_count("num_draws", num_draws)
        logits = logits.detach()
        if self.multi_sample:
            return self._draws(f, logits, num_samples, num_draws, generator)
        per_sample = self._draws(f, logits, 1, num_samples * num_draws, generator)
        return per_sample.reshape(num_draws, num_samples, *logits.shape).mean(dim=1)

    def _check(self, f: Objective, logits: Tensor, num_samples: int) -> None:
        if not callable(f):
            raise ValueError(f"f must be callable, got {type(f).__name__}")
        check_logits(logits, self.family)
        check_count("num_samples", num_samples, self.min_samples)

    def _draws(
        self, f: Objective, logits: Tensor, num_samples: int, num_draws: int, generator: torch.Generator | None
    ) -> Tensor:
        """(num_draws, *logits.shape) estimates, each from ``num_samples`` samples (1 unless multi-sample)."""
        raise NotImplementedError


class SingleSampleEstimator(GradientEstimator):
    """An estimator whose draw uses one sample: subclasses implement ``per_sample``."""

    def _draws(
        self, f: Objective, logits: Tensor, num_samples: int, num_draws: int, generator: torch.Generator | None
    ) -> Tensor:
        return self.per_sample(f, logits, num_draws, generator)

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        """(num, *logits.shape) one-sample estimates from ``num`` independent samples."""
        raise NotImplementedError


class PathwiseEstimator(SingleSampleEstimator):
    """A single-sample estimator that differentiates f at points built from the logits, one f-evaluation per sample:
    subclasses implement ``point_map``, and the estimate is the gradient of f at those points with respect to the
    logits (``pathwise_per_sample``)."""

    unbiased = False
    evaluations_per_sample = 1
    differentiable_f = True

    def point_map(self, logits: Tensor, num: int, generator: torch.Generator | None) -> Callable[[Tensor], Tensor]:
        """Draw the noise of ``num`` samples at ``logits`` and return the map from repeated logits θ_rep (num, *shape)
        to the points f is evaluated at: their values (a sample, or its relaxation) and, through θ_rep, the
        estimator's gradient path. A trainer evaluates f on ``point_map(θ, m, g)(θ.expand(m, *θ.shape))`` and
        backpropagates once into θ and f's own parameters (``concretelab.estimators.one_layer``)."""
        raise NotImplementedError

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        objective = PathwiseObjective(f, self.name)  # f, checked to be differentiable in its input
        points = self.point_map(logits, num, generator)
        return pathwise_per_sample(lambda theta: objective(points(theta)), logits, num, objective)


class RelaxedPathwiseEstimator(PathwiseEstimator):
    """A biased pathwise estimator through a relaxation at ``temperature`` (default 1.0): one differentiable
    f-evaluation per sample (Concrete, straight-through Gumbel, ReinMax, Gumbel-Rao)."""

    def __init__(self, family: str = "bernoulli", *, temperature: float = 1.0) -> None:
        super().__init__(family)
        self.temperature = check_positive("temperature", temperature)


class MultiSampleEstimator(GradientEstimator):
    """An estimator whose draw couples ``num_samples >= 2`` samples: subclasses implement ``per_set``."""

    multi_sample: ClassVar[bool] = True
    min_samples: ClassVar[int] = 2

    def _draws(
        self, f: Objective, logits: Tensor, num_samples: int, num_draws: int, generator: torch.Generator | None
    ) -> Tensor:
        return self.per_set(f, logits, num_samples, num_draws, generator)

    def per_set(
        self, f: Objective, logits: Tensor, num_samples: int, num_sets: int, generator: torch.Generator | None
    ) -> Tensor:
        """(num_sets, *logits.shape) estimates, each from its own set of ``num_samples`` samples."""
        raise NotImplementedError


def values_and_input_gradients(f: Objective, b: Tensor, estimator: str) -> tuple[Tensor, Tensor]:
    """(f(b), ∇_b f(b)) at exact samples b (M, *shape), both detached, in b's dtype: one evaluation per row and one
    backward pass, for estimators whose control variates use f's gradient at the samples (``double_cv``,
    ``rodeo``). f must be differentiable with respect to its input: ValueError naming ``estimator`` otherwise
    (``PathwiseObjective``).

    The graph of f's values is kept after the input gradient is taken (``retain_graph``): an f that keeps its own
    values to backpropagate into its parameters later (``concretelab.estimators.one_layer``) can, and otherwise the
    graph is freed with the values when this function returns."""
    objective = PathwiseObjective(f, estimator)
    points = b.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        values = objective(points)
        (grad,) = torch.autograd.grad(values.sum(), points, allow_unused=True, retain_graph=True)
    objective.check()
    grad = torch.zeros_like(points) if grad is None else grad
    return values.detach().to(b.dtype), grad.detach().to(b.dtype)


def scored_sets(f: Objective, logits: Tensor, num_samples: int, num_sets: int, family: str,
                generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """``num_sets`` sets of ``num_samples`` exact samples b: f at each, detached, (sets, K) (or (sets, K, *batch)
    for a per-example f), and each sample's score ∇_θ log p_θ(b) = b − E[b], (sets, K, *logits.shape): what the
    score-function estimators weight."""
    b = exact_sample(logits, num_sets * num_samples, family, generator)
    with torch.no_grad():
        values = evaluate(f, b).detach().to(logits.dtype)
    values = values.reshape(num_sets, num_samples, *values.shape[1:])
    return values, (b - mean_param(logits, family)).reshape(num_sets, num_samples, *logits.shape)


def weighted_scores(signal: Tensor, scores: Tensor) -> Tensor:
    """signal_k ∇ log p(b^k) for every sample: ``signal`` (sets, K[, *batch]) against ``scores`` (sets, K, *shape)."""
    return per_element(signal, scores.dim()) * scores


@dataclass(frozen=True)
class TaylorSamples:
    """K exact Bernoulli samples per set with what the Taylor-expansion control variates (``double_cv``, ``rodeo``)
    need: f at the samples (sets, K) (or (sets, K, *batch) for a per-example f), the samples (sets, K, *shape),
    p = σ(θ) (*shape), the scores b − p and the slopes ḡ_{−k} = (1/(K−1)) Σ_{j≠k} ∇f(b^j), the mean gradient of f
    at the *other* samples (sets, K, *shape)."""

    values: Tensor
    samples: Tensor
    probs: Tensor
    scores: Tensor
    slopes: Tensor

    @staticmethod
    def draw(f: Objective, logits: Tensor, num_samples: int, num_sets: int, generator: torch.Generator | None,
             estimator: str) -> TaylorSamples:
        shape = logits.shape
        b = exact_sample(logits, num_sets * num_samples, "bernoulli", generator)
        values, grads = values_and_input_gradients(f, b, estimator)
        samples = b.reshape(num_sets, num_samples, *shape)
        probs = torch.sigmoid(logits)
        slopes = leave_one_out_mean(grads.reshape(num_sets, num_samples, *shape), dim=1)
        values = values.reshape(num_sets, num_samples, *values.shape[1:])  # (sets, K[, *batch])
        return TaylorSamples(values, samples, probs, samples - probs, slopes)


def leave_one_out_mean(values: Tensor, dim: int) -> Tensor:
    """(1/(K−1)) Σ_{j≠k} values_j along ``dim`` (K >= 2), for every k, summed without subtracting values_k from the
    total (no cancellation when one value dominates)."""
    k = values.shape[dim]
    parts = values.unbind(dim)
    others = [sum(parts[:j] + parts[j + 1:]) for j in range(k)]
    return torch.stack(others, dim) / (k - 1)


def pathwise_per_sample(
    surrogate: Callable[[Tensor], Tensor], logits: Tensor, num: int, objective: PathwiseObjective
) -> Tensor:
    """Per-sample gradients: ∂/∂θ_n of ``surrogate(θ_rep).sum()``, θ_rep the logits repeated ``num`` times.

    ``surrogate`` maps the (num, *shape) repeated logits to (num,) values whose row n depends only on
    θ_rep[n], so the gradient's row n is the one-sample estimate of sample n. It evaluates f through
    ``objective``, which is checked after the backward pass (ValueError naming the estimator when f is not
    differentiable with respect to its input).
    """
    rep = logits.detach().expand(num, *logits.shape).clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(surrogate(rep).sum(), rep, allow_unused=True)
    objective.check()
    return torch.zeros_like(rep) if grad is None else grad
