"""HardConcrete: a stretched and clipped BinConcrete with exact point masses at 0 and 1.

Louizos, Welling & Kingma, "Learning Sparse Neural Networks through L0 Regularization", ICLR 2018,
eq. 9-12: with S ~ BinConcrete(alpha, lambda) and an interval (l, u) that contains [0, 1],

    Z = min(1, max(0, S (u - l) + l)),
    P(Z = 0) = P(S <= -l/(u-l)) = sigmoid(lambda log(-l/u) - log alpha),
    P(Z = 1) = P(S >= (1-l)/(u-l)) = sigmoid(log alpha - lambda log((1-l)/(u-1))),
    P(Z != 0) = sigmoid(log alpha - lambda log(-l/u))          (the expected L0 penalty, eq. 12).

``log_prob`` is with respect to the mixed reference measure (Lebesgue on (0, 1) plus unit atoms at 0
and 1): log P(Z = 0) at 0, log P(Z = 1) at 1, and the stretched BinConcrete density in between.
``rsample`` remembers the logit of S for each sample it returns, so ``log_prob`` of that tensor is computed
from it (exact even where the returned value is rounded, e.g. in float16).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import constraints

from concretelab.distributions._base import (
    BinaryConcreteParams,
    _as_float_tensor,
    recall,
    remember_log,
)
from concretelab.functional import binconcrete_log_density, softplus

__all__ = ["HardConcrete"]


class HardConcrete(BinaryConcreteParams):
    r"""Hard Concrete gate (Louizos et al. 2018, eq. 9-12), $S$ a BinConcrete sample stretched to $(l, u)$ and
    clipped to $[0, 1]$:

    $$
    Z = \min\bigl(1, \max(0, S (u - l) + l)\bigr).
    $$

    Args:
        temperature: lambda > 0 (the paper's beta, 2/3 there), float or tensor broadcasting against logits.
        logits: log alpha, any shape (the batch shape); finite.
        lower: l < 0, the left end of the stretch (default -0.1).
        upper: u > 1, the right end of the stretch (default 1.1).
        validate_args: check parameters and values (torch's global default when None).
    """

    support = constraints.unit_interval

    def __init__(
        self,
        temperature: float | Tensor,
        logits: float | Tensor,
        lower: float = -0.1,
        upper: float = 1.1,
        validate_args: bool | None = None,
    ) -> None:
        lower, upper = float(lower), float(upper)
        if not (math.isfinite(lower) and lower < 0):
            raise ValueError(f"lower must be a finite number below 0 (the stretch must cover 0), got {lower!r}")
        if not (math.isfinite(upper) and upper > 1):
            raise ValueError(f"upper must be a finite number above 1 (the stretch must cover 1), got {upper!r}")
        if logits is None:
            raise ValueError("logits must be given (log alpha of the gate), got None")
        self.lower, self.upper = lower, upper
        super().__init__(temperature, logits=_as_float_tensor("logits", logits), validate_args=validate_args)

    def _value_of(self, z: Tensor) -> Tensor:
        """Z = clip(sigmoid(z) (u - l) + l, 0, 1) (eq. 10; gradient 0 where clipped), remembering z."""
        stretched = torch.sigmoid(z) * (self.upper - self.lower) + self.lower
        out = stretched.clamp(0.0, 1.0).to(self.logits.dtype)  # the clip is the definition (eq. 10)
        remember_log(out, z, reading=self._reading)  # log_prob of this tensor uses z, not the rounded value
        return out

    @property
    def _reading(self) -> tuple[str, float, float]:
        """How a value maps to its point z: through this stretch (another stretch reads the same value elsewhere)."""
        return ("stretched sigmoid", self.lower, self.upper)

    def _point_slope(self, value: Tensor, point: Tensor) -> Tensor:
        """d logit(S) / d z for z = S (u - l) + l inside (0, 1): 1/(z - l) + 1/(u - z); 0 where clipped (a mass
        does not depend on the value)."""
        interior = (value > 0) & (value < 1)
        inside = torch.where(interior, value, 0.5)
        return torch.where(interior, (inside - self.lower).reciprocal() + (self.upper - inside).reciprocal(), 0.0)

    def _log_mass_zero(self, logits: Tensor, temperature: Tensor) -> Tensor:
        # log sigmoid(w) = -softplus(-w), w = lambda log(-l/u) - log alpha
        return -softplus(logits - temperature * math.log(-self.lower / self.upper))

    def _log_mass_one(self, logits: Tensor, temperature: Tensor) -> Tensor:
        return -softplus(temperature * math.log((1 - self.lower) / (self.upper - 1)) - logits)

    def prob_nonzero(self) -> Tensor:
        """P(Z != 0) = sigmoid(log alpha - lambda log(-l/u)): the expected L0 norm of a gate (eq. 12)."""
        logits, temperature = self._compute()
        return torch.sigmoid(logits - temperature * math.log(-self.lower / self.upper))

    def log_prob(self, value: Tensor) -> Tensor:
        """log P(Z=0) at 0, log P(Z=1) at 1, log p_S((z-l)/(u-l)) - log(u-l) on (0, 1); shape (sample..., batch...)."""
        self._validate_value(value)
        logits, temperature = self._compute()
        recalled = recall(value, self._reading)
        if recalled is not None:
            # A sample of ours: S = sigmoid(z) is its pre-clip point; it was clipped to 0 iff
            # z <= logit(-l/(u-l)) = log(-l/u), to 1 iff z >= logit((1-l)/(u-l)) = log((1-l)/(u-1)).
            z = self._scoring_point(value, recalled).to(logits.dtype)
            at_or_below = z <= math.log(-self.lower / self.upper)
            at_or_above = z >= math.log((1 - self.lower) / (self.upper - 1))
            interior = ~(at_or_below | at_or_above)
            logit_s = torch.where(interior, z, 0.0)  # keep the unused branch finite for the backward pass
        else:
            value = value.to(logits.dtype)
            interior = (value > 0) & (value < 1)
            at_or_below = value <= 0
            v = torch.where(interior, value, 0.5)  # keep the unused branch finite for the backward pass
            logit_s = torch.log(v - self.lower) - torch.log(self.upper - v)
        density = binconcrete_log_density(logit_s, logits, temperature) - math.log(self.upper - self.lower)
        at_zero = self._log_mass_zero(logits, temperature).expand_as(density)
        at_one = self._log_mass_one(logits, temperature).expand_as(density)
        return torch.where(interior, density, torch.where(at_or_below, at_zero, at_one))

    def cdf(self, value: Tensor) -> Tensor:
        """P(Z <= z): 0 below 0, P(Z=0) at 0, the stretched BinConcrete CDF on (0, 1), 1 at and above 1."""
        logits, temperature = self._compute()
        value = value.to(logits.dtype)
        s = ((value - self.lower) / (self.upper - self.lower)).clamp(0.0, 1.0)
        inner = torch.sigmoid(temperature * (s.log() - torch.log1p(-s)) - logits)
        return torch.where(value < 0, 0.0, torch.where(value >= 1, 1.0, inner))

    def _expand_params(self, new: BinaryConcreteParams, batch_shape: torch.Size) -> None:
        super()._expand_params(new, batch_shape)
        new.lower, new.upper = self.lower, self.upper  # type: ignore[attr-defined]
