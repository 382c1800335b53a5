"""Parameter and value constraints of the Concrete families, as ``torch.distributions.constraints`` objects.

torch's own miss these: a temperature must be finite, logits may be -inf (an excluded category) but never NaN
or +inf, and ``probs`` may be unnormalised (as torch's Categorical accepts them).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import constraints

__all__ = [
    "categorical_logits",
    "finite_positive",
    "finite_real",
    "log_simplex",
    "open_unit_interval",
    "simplex",
    "unnormalised_simplex",
]

# ----------------------------------------------------------------------------------------------
# Constraints (torch's own miss these: temperature must be finite, logits may be -inf but never NaN/+inf)


class _FinitePositive(constraints.Constraint):
    """Finite and strictly positive (a temperature)."""

    def check(self, value: Tensor) -> Tensor:
        return torch.isfinite(value) & (value > 0)

    def __repr__(self) -> str:
        return "FinitePositive()"


class _FiniteReal(constraints.Constraint):
    """Finite real numbers (binary logits)."""

    def check(self, value: Tensor) -> Tensor:
        return torch.isfinite(value)

    def __repr__(self) -> str:
        return "FiniteReal()"


class _CategoricalLogits(constraints.Constraint):
    """Logit vectors: no NaN, no +inf, -inf allowed (an excluded category), at least one finite entry."""

    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        no_bad = (~torch.isnan(value) & (value < math.inf)).all(dim=-1)
        return no_bad & (value > -math.inf).any(dim=-1)

    def __repr__(self) -> str:
        return "CategoricalLogits(no NaN or +inf; -inf excludes a category; at least one finite)"


class _Simplex(constraints.Constraint):
    """The closed probability simplex, with a dtype-aware tolerance on the sum (sqrt of machine eps)."""

    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        tol = math.sqrt(torch.finfo(value.dtype).eps) if value.dtype.is_floating_point else 0.0
        nonneg = (value >= 0).all(dim=-1)
        return nonneg & ((value.sum(dim=-1) - 1).abs() <= tol)

    def __repr__(self) -> str:
        return "Simplex(nonnegative, summing to 1)"


class _UnnormalisedSimplex(constraints.Constraint):
    """Category weights as torch's ``probs`` accepts them: finite, non-negative, with a positive sum (they are
    normalised, as ``torch.distributions.Categorical`` does)."""

    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        finite = torch.isfinite(value).all(dim=-1)
        return finite & (value >= 0).all(dim=-1) & (value.sum(dim=-1) > 0)

    def __repr__(self) -> str:
        return "UnnormalisedSimplex(finite, nonnegative, positive sum)"


class _LogSimplex(constraints.Constraint):
    """Log-space points of the simplex: no NaN, at most 0, logsumexp equal to 0 (dtype-aware tolerance)."""

    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        tol = math.sqrt(torch.finfo(value.dtype).eps)
        v = value.float() if value.dtype in (torch.float16, torch.bfloat16) else value
        ok = (~torch.isnan(v) & (v <= 0)).all(dim=-1)
        return ok & (torch.logsumexp(v, dim=-1).abs() <= tol)

    def __repr__(self) -> str:
        return "LogSimplex(log of a point in the simplex)"


class _OpenUnitInterval(constraints.Constraint):
    """The open interval (0, 1) (Bernoulli probabilities of a non-degenerate relaxation)."""

    def check(self, value: Tensor) -> Tensor:
        return (value > 0) & (value < 1)

    def __repr__(self) -> str:
        return "OpenInterval(0, 1)"


finite_positive = _FinitePositive()
open_unit_interval = _OpenUnitInterval()
finite_real = _FiniteReal()
categorical_logits = _CategoricalLogits()
simplex = _Simplex()
unnormalised_simplex = _UnnormalisedSimplex()
log_simplex = _LogSimplex()
