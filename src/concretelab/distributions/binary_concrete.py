"""BinConcrete and LogitBinConcrete: the binary Concrete relaxation on (0, 1) and in logit space.

BinConcrete(alpha, lambda) (Maddison, Mnih & Teh 2017, Prop. 1(d) and eq. 20-21): with standard
logistic noise L = log U - log(1 - U),

    X = sigmoid((log alpha + L) / lambda),
    p(x) = lambda alpha x^(-lambda-1) (1-x)^(-lambda-1) / (alpha x^(-lambda) + (1-x)^(-lambda))^2,
    P(X <= x) = sigmoid(lambda logit(x) - log alpha).

LogitBinConcrete is the law of Z = logit(X) = (log alpha + L)/lambda, a scaled and shifted logistic:

    log q(z) = log lambda - softplus(-t) - softplus(t),   t = lambda z - log alpha,

and log p(x) = log q(logit x) - log x - log(1 - x). Binary latents should be computed in logit space.

References
    [1] C. J. Maddison, A. Mnih, Y. W. Teh, "The Concrete Distribution", ICLR 2017, arXiv:1611.00712.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import constraints

from concretelab.distributions._base import (
    BinaryConcreteParams,
    SampleShape,
    recall,
    remember_log,
)
from concretelab.functional import (
    logit_binconcrete_log_density,
    logit_binconcrete_log_density_at_noise,
    softplus,
    traced,
)

__all__ = ["BinConcrete", "LogitBinConcrete"]


class _LogitSpaceBinary(BinaryConcreteParams):
    """A binary family computed in logit space: a sample is a function of z = (logits + L)/lambda, and its
    log-density is log q(z) (eq. 21) minus the log-Jacobian of that function."""

    def _log_jacobian(self, z: Tensor) -> Tensor | None:
        """log |d value / d z| at z (None when the value is z itself); the density of the value is log q(z)
        minus this."""
        raise NotImplementedError  # pragma: no cover

    def _minus_log_jacobian(self, log_q: Tensor, z: Tensor) -> Tensor:
        log_jacobian = self._log_jacobian(z)
        return log_q if log_jacobian is None else log_q - log_jacobian

    def _logit_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        """The logit-space point of a ``value`` with no record, computed from its values."""
        raise NotImplementedError  # pragma: no cover

    def log_prob(self, value: Tensor) -> Tensor:
        """log q(z) (eq. 21) minus the log-Jacobian of the value at z; shape (sample..., batch...). A remembered
        sample is scored from its logit (exact where the value rounded to 0 or 1), with the gradients the
        general formula gives the value: partial derivatives for a sample without a sampling path, its own gradient
        for a leaf sample (docs/api.md)."""
        self._validate_value(value)
        logits, temperature = self._compute()
        recalled = recall(value, self._reading)
        if recalled is None:
            z = self._logit_of(value, logits.dtype)
        else:
            z = self._scoring_point(value, recalled).to(logits.dtype)
        return self._minus_log_jacobian(logit_binconcrete_log_density(z, logits, temperature), z)

    def _draw_value_and_log_prob(self, sample_shape: SampleShape, generator: torch.Generator | None,
                                 noise: Tensor | None) -> tuple[Tensor, Tensor]:
        """The sample and its log-density from its own noise, log q(z) = log lambda - softplus(-L) - softplus(L)
        (log lambda + log U + log(1 - U) when the noise is drawn here), minus the log-Jacobian."""
        draw = self._logit_sample(sample_shape, generator, noise)
        _, temperature = self._compute()
        log_q = logit_binconcrete_log_density_at_noise(draw.noise, temperature, log_pdf=draw.log_pdf)
        return self._value_of(draw.logit), self._minus_log_jacobian(log_q, draw.logit)


class LogitBinConcrete(_LogitSpaceBinary):
    r"""The real-valued logit form $Z = (\log \alpha + L)/\lambda$ of BinConcrete, $L$ standard logistic
    (Maddison et al. 2017, eq. 21):

    $$
    \log q(z) = \log \lambda - \operatorname{softplus}\bigl(-(\lambda z - \log \alpha)\bigr)
    - \operatorname{softplus}(\lambda z - \log \alpha).
    $$

    Args:
        temperature: lambda > 0, float or tensor broadcasting against ``logits`` (may require grad).
        logits: log alpha, any shape (the batch shape); finite.
        probs: alpha / (1 + alpha) in (0, 1); give exactly one of logits and probs.
        validate_args: check parameters and values (torch's global default when None).

    float16/bfloat16 parameters are computed in float32; their ``log_prob`` is returned in float32.
    """

    support = constraints.real
    _reading = "logit"  # a value is its own logit-space point

    def _value_of(self, z: Tensor) -> Tensor:
        out = z.to(self.logits.dtype)
        if out is not z:  # a half-precision sample: its float32 point is kept for log_prob
            remember_log(out, z, reading=self._reading)
        return out

    def _log_jacobian(self, z: Tensor) -> None:
        return None

    def _logit_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        return value.to(dtype)

    def cdf(self, value: Tensor) -> Tensor:
        """P(Z <= z) = sigmoid(lambda z - log alpha)."""
        logits, temperature = self._compute()
        return torch.sigmoid(temperature * value - logits)

    def icdf(self, value: Tensor) -> Tensor:
        """z = (logit(q) + log alpha) / lambda."""
        logits, temperature = self._compute()
        return (torch.logit(value) + logits) / temperature


class BinConcrete(_LogitSpaceBinary):
    r"""BinConcrete($\alpha$, $\lambda$) on $(0, 1)$ (Maddison et al. 2017, Prop. 1(d), eq. 20), $L$ standard
    logistic and $q$ the LogitBinConcrete density:

    $$
    X = \sigma\bigl((\log \alpha + L)/\lambda\bigr), \qquad
    P(X \le x) = \sigma\bigl(\lambda \operatorname{logit}(x) - \log \alpha\bigr),
    $$

    $$
    \log p(x) = \log q(\operatorname{logit} x) + \operatorname{softplus}(-\operatorname{logit} x)
    + \operatorname{softplus}(\operatorname{logit} x).
    $$

    ``rsample`` remembers the logit of each sample it returns, so ``log_prob`` of a sample that rounded to
    exactly 0 or 1 is still exact. Other values at 0 or 1 are on the boundary and raise ``ValueError``.

    Args: as [`LogitBinConcrete`][concretelab.distributions.LogitBinConcrete]; logits = log alpha.
    """

    support = constraints.unit_interval
    _reading = "sigmoid"  # a value x is sigmoid of its point z

    def _value_of(self, z: Tensor) -> Tensor:
        x = torch.sigmoid(z).to(self.logits.dtype)
        remember_log(x, z, reading=self._reading)
        return x

    def _log_jacobian(self, z: Tensor) -> Tensor:
        # log sigmoid'(z) = log x + log(1 - x) = -softplus(-z) - softplus(z)
        return -softplus(-z) - softplus(z)

    def _point_slope(self, value: Tensor, point: Tensor) -> Tensor:
        """d logit(x) / d x = 1 / (x (1 - x))."""
        return (value * (1 - value)).reciprocal()

    def _logit_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        value = value.to(dtype)
        if not traced(value) and bool(((value <= 0) | (value >= 1)).any()):
            raise ValueError(
                "value has an entry at 0 or 1 (or outside [0, 1]): the BinConcrete density is defined on the "
                "open interval (0, 1). Score the tensor that rsample returned (its logit is remembered), or use "
                "LogitBinConcrete in logit space."
            )
        return value.log() - torch.log1p(-value)

    def cdf(self, value: Tensor) -> Tensor:
        """P(X <= x) = sigmoid(lambda logit(x) - log alpha) (closed form); 0 at x <= 0 and 1 at x >= 1."""
        logits, temperature = self._compute()
        value = value.to(logits.dtype)
        logit_x = value.log() - torch.log1p(-value)  # -inf at 0, +inf at 1: sigmoid gives 0 and 1
        return torch.sigmoid(temperature * logit_x - logits)

    def icdf(self, value: Tensor) -> Tensor:
        """x = sigmoid((logit(q) + log alpha) / lambda) (closed-form inverse of the CDF)."""
        logits, temperature = self._compute()
        return torch.sigmoid((torch.logit(value.to(logits.dtype)) + logits) / temperature)
