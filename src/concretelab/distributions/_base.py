"""Parameter handling of the Concrete families and their two bases (categorical, binary); the constraints live in
``constraints.py`` and the sample's log-space record in ``_record.py``.

Every family stores ``temperature`` (broadcast to the batch shape) and ``logits`` (the user's values,
kept exactly; ``probs`` is derived lazily, or kept exactly when it was the argument given).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Number
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import lazy_property

from concretelab.distributions._record import Recalled, recall, remember_log
from concretelab.distributions.constraints import (
    categorical_logits,
    finite_positive,
    finite_real,
    open_unit_interval,
    unnormalised_simplex,
)
from concretelab.functional import (
    broadcast_shapes,
    compute_dtype,
    log_softmax_and_softmax,
    perturb_and_scale,
    sample_gumbel_and_exponential,
    sample_logistic_and_log_pdf,
    traced,
)

__all__ = [
    "BinaryConcreteParams",
    "CategoricalConcreteParams",
    "GumbelDraw",
    "LogisticDraw",
    "Recalled",
    "check_noise",
    "recall",
    "remember_log",
]

SampleShape = torch.Size | Sequence[int]


@dataclass(frozen=True)
class GumbelDraw:
    """A categorical family's draw: the Concrete scores (logits + G)/lambda, the Gumbel noise G, and exp(-G)
    when G was drawn here (None for noise the caller gave)."""

    scores: Tensor
    noise: Tensor
    exp_neg_noise: Tensor | None


@dataclass(frozen=True)
class LogisticDraw:
    """A binary family's draw: the logit-space point z = (logits + L)/lambda, the logistic noise L, and the
    standard logistic log-density at L when L was drawn here (None for noise the caller gave)."""

    logit: Tensor
    noise: Tensor
    log_pdf: Tensor | None




class _ZeroGradientLink(torch.autograd.Function):
    """Identity on ``value`` that also takes ``params`` as an input whose gradient is exactly 0.

    The log-density at a distribution's own sample, written from the noise, does not depend on the logits
    at all (docs/math.md); linking it keeps ``autograd.grad(log_prob, logits)`` answering 0 rather than
    raising that the logits were not used. In the setup_context form, so that ``torch.func`` transforms
    (grad, vmap, jacrev) and double backward compose with it.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(value: Tensor, params: Tensor) -> Tensor:
        return value.view_as(value)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        ctx.params_shape = inputs[1].shape

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        return grad, grad.new_zeros(()).expand(ctx.params_shape)


def link_zero_gradient(value: Tensor, params: Tensor) -> Tensor:
    """``value``, made to depend on ``params`` with gradient exactly 0 (when params require grad)."""
    if params.requires_grad and torch.is_grad_enabled():
        return _ZeroGradientLink.apply(value, params)
    return value


Slope = Callable[[Tensor, Tensor], Tensor]


class _PointOfValue(torch.autograd.Function):
    """The remembered log-space ``point`` of a sample, with the gradient of the sample ``value`` it stands for:
    forward ``point``, backward ``grad * slope(value, point)``, slope = d point / d value (for Concrete, whose
    point is log x, slope = 1/x). The slope is computed from the saved value, so double backward differentiates
    it too."""

    generate_vmap_rule = True

    @staticmethod
    def forward(point: Tensor, value: Tensor, slope: Slope) -> Tensor:
        return point.view_as(point)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Slope], output: Tensor) -> None:
        point, value, ctx.slope = inputs
        ctx.save_for_backward(point, value)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:
        point, value = ctx.saved_tensors
        return None, (grad * ctx.slope(value.to(grad.dtype), point)).to(value.dtype), None


def check_noise(noise: Tensor, shape: torch.Size, kind: str) -> None:
    if not isinstance(noise, Tensor):
        raise ValueError(f"noise must be a tensor of standard {kind} noise, got {type(noise).__name__}")
    if noise.shape != shape:
        raise ValueError(
            f"noise must be standard {kind} noise shaped like the sample {tuple(shape)}, "
            f"got shape {tuple(noise.shape)}"
        )


def _as_float_tensor(name: str, value: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        if not value.dtype.is_floating_point:
            if like is None:
                raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
            value = value.to(like.dtype)
        return value
    if isinstance(value, Number) and not isinstance(value, bool):
        dtype = like.dtype if like is not None else torch.get_default_dtype()
        device = like.device if like is not None else None
        return torch.tensor(float(value), dtype=dtype, device=device)  # type: ignore[arg-type]
    raise ValueError(f"{name} must be a float or a floating-point tensor, got {type(value).__name__}")


def _broadcast_error(what: str, *shapes: tuple[str, torch.Size]) -> ValueError:
    listed = ", ".join(f"{name} {tuple(shape)}" for name, shape in shapes)
    return ValueError(f"shapes do not broadcast ({what}): {listed}")


class _ConcreteParams(Distribution):
    """Parameter handling common to all families; subclasses set the event dimension."""

    has_rsample = True
    _categorical: bool = False

    def _init_params(
        self,
        temperature: float | Tensor,
        logits: float | Tensor | None,
        probs: float | Tensor | None,
        validate_args: bool | None,
        probs_to_logits: Any,
    ) -> tuple[torch.Size, torch.Size]:
        if (logits is None) == (probs is None):
            raise ValueError(
                "exactly one of logits or probs must be given, got "
                + ("both" if logits is not None else "neither")
            )
        if probs is not None:
            probs_t = _as_float_tensor("probs", probs)
            if probs_t.dim() == 0 and self._categorical:
                raise ValueError("probs must have a category dimension (shape (batch..., K)), got a scalar")
            validate = Distribution._validate_args if validate_args is None else validate_args
            if validate:  # before the conversion, so the error names probs rather than the derived logits
                self._check_param("probs", probs_t, unnormalised_simplex if self._categorical else open_unit_interval)
            if self._categorical:  # normalised, as torch's Categorical does
                probs_t = probs_t / probs_t.sum(dim=-1, keepdim=True)
            self.probs = probs_t
            param = probs_to_logits(probs_t)
        else:
            param = _as_float_tensor("logits", logits)
        if self._categorical:
            if param.dim() == 0:
                raise ValueError("logits must have a category dimension (shape (batch..., K)), got a scalar")
            if param.shape[-1] < 2:
                raise ValueError(
                    f"a Concrete distribution needs at least 2 categories, got logits of shape "
                    f"{tuple(param.shape)} (K = {param.shape[-1]} in the last dimension)"
                )
        temp = _as_float_tensor("temperature", temperature, like=param)
        if Distribution._validate_args if validate_args is None else validate_args:
            # Checked as given, before broadcasting, so that the error shows the user's shapes and values.
            self._check_param("temperature", temp, finite_positive)
            if probs is None:
                self._check_param("logits", param, self.arg_constraints["logits"])
        outer = param.shape[:-1] if self._categorical else param.shape
        given = temp.shape
        if self._categorical and temp.dim() == param.dim() and temp.dim() > 0 and temp.shape[-1] == 1:
            temp = temp.squeeze(-1)  # (N, 1) with logits (N, K): batch shape (N,)
        try:
            batch_shape = broadcast_shapes(temp.shape, outer)
        except RuntimeError:
            error = _broadcast_error(
                "temperature against the batch shape of the logits",
                ("temperature", given),
                ("logits" + (" batch" if self._categorical else ""), outer),
            )
            if temp.shape != given:
                error = ValueError(f"{error}; a temperature with the logits' number of dimensions and a last "
                                   f"dimension of 1 stands for the batch shape {tuple(temp.shape)}")
            raise error from None
        event_shape = param.shape[-1:] if self._categorical else torch.Size()
        self.temperature = temp.expand(batch_shape)
        self.logits = param.expand(batch_shape + event_shape)
        if probs is not None:
            self.probs = self.probs.expand(batch_shape + event_shape)
        return batch_shape, event_shape

    def _check_param(self, name: str, value: Tensor, constraint: constraints.Constraint) -> None:
        if traced(value):
            return  # values cannot be read while tracing; they are checked in eager mode
        valid = constraint.check(value)
        if not bool(valid.all()):
            raise ValueError(
                f"Expected parameter {name} (Tensor of shape {tuple(value.shape)}) of distribution "
                f"{type(self).__name__} to satisfy the constraint {constraint!r}, but found invalid values:\n{value}"
            )

    def _compute(self) -> tuple[Tensor, Tensor]:
        """Logits and temperature in the dtype arithmetic runs in (float32 for half inputs)."""
        dtype = compute_dtype(self.logits.dtype)
        return self.logits.to(dtype), self.temperature.to(dtype)

    def _expand_params(self, new: _ConcreteParams, batch_shape: torch.Size) -> None:
        new.temperature = self.temperature.expand(batch_shape)
        new.logits = self.logits.expand(batch_shape + self.event_shape)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(batch_shape + self.event_shape)

    def expand(self, batch_shape: SampleShape, _instance: Any = None) -> _ConcreteParams:
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = torch.Size(batch_shape)
        try:
            expandable = broadcast_shapes(batch_shape, self.batch_shape) == batch_shape
        except RuntimeError:
            expandable = False
        if not expandable:  # the current batch shape must broadcast *to* the new one
            raise _broadcast_error("expand", ("batch_shape", batch_shape), ("current", self.batch_shape))
        self._expand_params(new, batch_shape)
        for key, value in self.__dict__.items():
            own = ("temperature", "logits", "probs", "_batch_shape", "_event_shape")
            if key not in own and key not in new.__dict__:
                new.__dict__[key] = value
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _noise(self, sample_shape: SampleShape, generator: torch.Generator | None, noise: Tensor | None, kind: str,
               draw: Callable[..., tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor | None]:
        """The family's standard noise for ``sample_shape`` in the compute dtype, with what ``draw`` returns
        beside it (None for ``noise`` the caller gave, which is checked against the shape). Noise the caller gave
        is copied (a differentiable copy: gradients still reach it), so that the sample's record holds noise no
        one else can change, whatever the caller later does with its buffer."""
        shape = self._extended_shape(torch.Size(sample_shape))
        dtype = compute_dtype(self.logits.dtype)
        if noise is None:
            return draw(shape, generator=generator, dtype=dtype, device=self.logits.device)
        check_noise(noise, shape, kind)
        converted = noise.to(dtype)
        return (converted.clone() if converted is noise else converted), None

    def sample(self, sample_shape: SampleShape = (), *, generator: torch.Generator | None = None,
               noise: Tensor | None = None) -> Tensor:
        """A sample without gradient: ``rsample`` under ``torch.no_grad()``."""
        with torch.no_grad():
            return self.rsample(sample_shape, generator=generator, noise=noise)

    def rsample(self, sample_shape: SampleShape = (), *, generator: torch.Generator | None = None,
                noise: Tensor | None = None) -> Tensor:
        """A reparameterised sample, shape sample_shape + batch_shape + event_shape: a function of the family's
        noise (Gumbel or logistic, drawn from ``generator``, or the ``noise`` given, of that shape)."""
        return self._draw_value(sample_shape, generator, noise)

    def sample_and_log_prob(self, sample_shape: SampleShape = (), *, generator: torch.Generator | None = None,
                            noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """A reparameterised sample and its log-density, in one pass where the family knows its density at its
        own noise (the default is ``rsample``, then ``log_prob``)."""
        return self._draw_value_and_log_prob(sample_shape, generator, noise)

    def _draw_value(self, sample_shape: SampleShape, generator: torch.Generator | None, noise: Tensor | None
                    ) -> Tensor:  # pragma: no cover - every family base overrides it
        raise NotImplementedError

    def _draw_value_and_log_prob(self, sample_shape: SampleShape, generator: torch.Generator | None,
                                 noise: Tensor | None) -> tuple[Tensor, Tensor]:
        x = self._draw_value(sample_shape, generator, noise)
        return x, self.log_prob(x)

    def _validate_value(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise ValueError(f"value must be a tensor, got {type(value).__name__}")
        event_dim = len(self.event_shape)
        if value.dim() < event_dim or value.shape[value.dim() - event_dim :] != self.event_shape:
            raise ValueError(
                f"value must end in the event shape {tuple(self.event_shape)}, got shape {tuple(value.shape)}"
            )
        try:
            broadcast_shapes(value.shape, self.batch_shape + self.event_shape)
        except RuntimeError:
            raise _broadcast_error(
                "value against the distribution",
                ("value", value.shape),
                ("batch_shape + event_shape", self.batch_shape + self.event_shape),
            ) from None
        if self._validate_args and not traced(value):
            support = self.support
            valid = support.check(value)  # type: ignore[union-attr]
            if not bool(valid.all()):
                raise ValueError(
                    f"Expected value argument (Tensor of shape {tuple(value.shape)}) to be within the support "
                    f"({support!r}) of the distribution {type(self).__name__}, but found invalid values:\n{value}"
                )


    # --- scoring a remembered sample -----------------------------------------------------------------------
    # The record is an optimisation: log_prob of a remembered sample must equal the general formula applied to
    # the sample's value, in value and in every gradient. Which gradient that is depends on the sample:
    #   * it carries its sampling path (it has a grad_fn): the total derivative along the path, which the
    #     identity at the own sample gives directly, and the remembered point (which carries the same path)
    #     gives through the general formula;
    #   * it is a leaf that requires grad (``d.sample().requires_grad_()``): the partial derivatives with
    #     respect to the parameters and to the value (the point is linked to the value by _PointOfValue);
    #   * it has no path (``sample()``, ``detach``-free tensors drawn under no_grad): the partial derivatives
    #     with respect to the parameters, the sample held fixed (the score function: REINFORCE).

    def _point_slope(self, value: Tensor, point: Tensor) -> Tensor:
        """d point / d value for a leaf sample, point its log-space point (1 where the value is the point)."""
        return torch.ones_like(point)

    def _scoring_point(self, value: Tensor, recalled: Recalled) -> Tensor:
        """The remembered log-space point of ``value``, carrying the gradient the general formula gives it."""
        point = recalled.log_point
        if point is value or value.grad_fn is not None:
            return point  # the sample itself, or a point on the same sampling path
        point = point.detach()
        if value.requires_grad and torch.is_grad_enabled():
            return _PointOfValue.apply(point, value, self._point_slope)
        return point

    def _own_noise_if_exact(self, value: Tensor, recalled: Recalled) -> tuple[Tensor, Tensor | None] | None:
        """The noise of ``value`` when the identity at the own sample gives the general formula's value and
        gradients: the sample is this distribution's own (unchanged, as its parameters and noise), and either it
        carries its sampling path (the identity is the total derivative along it) or no gradient can flow."""
        own = recalled.own_noise(self)
        if own is None or value.grad_fn is not None:
            return own
        needs_grad = value.requires_grad or self.logits.requires_grad or self.temperature.requires_grad
        return None if needs_grad and torch.is_grad_enabled() else own


class CategoricalConcreteParams(_ConcreteParams):
    """Base of the categorical families: ``logits``/``probs`` of shape (batch..., K)."""

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "temperature": finite_positive,
        "logits": categorical_logits,
        "probs": unnormalised_simplex,
    }
    _categorical = True

    def __init__(
        self,
        temperature: float | Tensor,
        probs: Tensor | None = None,
        logits: Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        batch_shape, event_shape = self._init_params(temperature, logits, probs, validate_args, torch.log)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @lazy_property
    def probs(self) -> Tensor:
        return torch.softmax(self.logits, dim=-1)

    def _scores(self, sample_shape: SampleShape, generator: torch.Generator | None, noise: Tensor | None) -> GumbelDraw:
        """The Concrete scores s = (logits + G)/lambda with the Gumbel noise G they used."""
        noise, drawn = self._noise(sample_shape, generator, noise, "Gumbel", sample_gumbel_and_exponential)
        logits, temperature = self._compute()
        if self._has_excluded:
            scores = perturb_and_scale(logits, noise, temperature.unsqueeze(-1))
        else:  # no -inf logit to mask: two passes instead of five
            scores = (logits + noise) / temperature.unsqueeze(-1)
        return GumbelDraw(scores, noise, drawn)

    def _draw_value(self, sample_shape: SampleShape, generator: torch.Generator | None, noise: Tensor | None
                    ) -> Tensor:
        draw = self._scores(sample_shape, generator, noise)
        y, x = log_softmax_and_softmax(draw.scores)
        return self._value_of(y, x, draw)

    def _value_of(self, y: Tensor, x: Tensor, draw: GumbelDraw) -> Tensor:
        """The sample returned for the log-space point y = log_softmax(scores) (x = exp(y)), with its record."""
        raise NotImplementedError  # pragma: no cover - every family overrides it

    @lazy_property
    def _has_excluded(self) -> bool:
        """Whether some category has logit -inf (checked once per distribution; assumed where the logits are
        traced, whose values cannot be read: the masked arithmetic is right either way)."""
        if traced(self.logits):
            return True
        return bool(self.logits.amin() == float("-inf")) if self.logits.numel() else False

    @property
    def num_categories(self) -> int:
        return int(self.event_shape[0])

    @property
    def param_shape(self) -> torch.Size:
        return self.logits.shape


def _bernoulli_probs_to_logits(probs: Tensor) -> Tensor:
    return probs.log() - torch.log1p(-probs)  # no clipping: log p - log(1 - p)


class BinaryConcreteParams(_ConcreteParams):
    """Base of the binary families: ``logits`` = log alpha (or ``probs`` = alpha / (1 + alpha)), shape (batch...)."""

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "temperature": finite_positive,
        "logits": finite_real,
        "probs": open_unit_interval,
    }

    def __init__(
        self,
        temperature: float | Tensor,
        probs: float | Tensor | None = None,
        logits: float | Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        batch_shape, event_shape = self._init_params(
            temperature, logits, probs, validate_args, _bernoulli_probs_to_logits
        )
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @lazy_property
    def probs(self) -> Tensor:
        return torch.sigmoid(self.logits)

    def _logit_sample(
        self, sample_shape: SampleShape, generator: torch.Generator | None, noise: Tensor | None
    ) -> LogisticDraw:
        """The logit-space point z = (logits + L)/lambda with the logistic noise L it used."""
        noise, log_pdf = self._noise(sample_shape, generator, noise, "logistic", sample_logistic_and_log_pdf)
        logits, temperature = self._compute()
        return LogisticDraw((logits + noise) / temperature, noise, log_pdf)

    def _draw_value(self, sample_shape: SampleShape, generator: torch.Generator | None, noise: Tensor | None
                    ) -> Tensor:
        return self._value_of(self._logit_sample(sample_shape, generator, noise).logit)

    def _value_of(self, z: Tensor) -> Tensor:
        """The sample returned for the logit-space point z = (logits + L)/lambda, with its record."""
        raise NotImplementedError  # pragma: no cover - every family overrides it

    @property
    def param_shape(self) -> torch.Size:
        return self.logits.shape
