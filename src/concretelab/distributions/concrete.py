"""ExpConcrete and Concrete: the relaxed categorical on the log-simplex and on the simplex.

Concrete(alpha, lambda) with n categories (Maddison, Mnih & Teh 2017, Def. 1 and eq. 1): with standard
Gumbel noise G_k,

    X_k = softmax_k((log alpha_k + G_k) / lambda),
    p(x) = (n-1)! lambda^(n-1) prod_k [alpha_k x_k^(-lambda-1) / sum_i alpha_i x_i^(-lambda)].

ExpConcrete is the law of Y = log X (eq. 8 / Appendix C.2); its density kappa is with respect to
Lebesgue measure on the log-ratios (y_1 - y_n, ..., y_{n-1} - y_n):

    log kappa(y) = log (n-1)! + (n-1) log lambda + sum_k (log alpha_k - lambda y_k)
                   - n logsumexp_k (log alpha_k - lambda y_k),

and log p(x) = log kappa(log x) - sum_k log x_k. All arithmetic happens in log space: Concrete's
``rsample`` remembers the log-space point each sample came from, so ``log_prob`` of a sample whose
components underflowed to 0 at low temperature is still exact and finite.

References
    [1] C. J. Maddison, A. Mnih, Y. W. Teh, "The Concrete Distribution: A Continuous Relaxation of
        Discrete Random Variables", ICLR 2017, arXiv:1611.00712.
    [2] E. Jang, S. Gu, B. Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017.
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.distributions._base import (
    CategoricalConcreteParams,
    GumbelDraw,
    Recalled,
    SampleShape,
    link_zero_gradient,
    recall,
)
from concretelab.distributions._record import remember_log
from concretelab.distributions.constraints import log_simplex, simplex
from concretelab.functional import (
    exp_concrete_log_density,
    exp_concrete_log_density_at_noise,
    log_softmax_and_softmax,
    traced,
)

__all__ = ["Concrete", "ExpConcrete"]


class _LogSpaceCategorical(CategoricalConcreteParams):
    """A categorical family computed on the log-simplex: a sample is a function of
    y = log_softmax((logits + G)/lambda), and its log-density is log kappa(y) (eq. 8) minus the log-Jacobian
    of that function. At a sample the distribution drew itself, log kappa comes from the noise identity
    log kappa(y) = log (n-1)! + (n-1) log lambda - sum_k G_k - n logsumexp_k(-G_k) (docs/math.md)."""

    _reading: str  # how a value maps to its log-space point y: "log-simplex" (it is y) or "simplex" (it is exp y)

    def _log_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        """The log-space point of a ``value`` with no record, computed from its values."""
        raise NotImplementedError  # pragma: no cover

    def _log_jacobian(self, y: Tensor, logits: Tensor) -> Tensor | None:
        """log |d value / d (log-ratios)| at y (None when the value is y itself); the density of the value is
        log kappa(y) minus this."""
        raise NotImplementedError  # pragma: no cover

    def _minus_log_jacobian(self, log_kappa: Tensor, y: Tensor, logits: Tensor) -> Tensor:
        log_jacobian = self._log_jacobian(y, logits)
        return log_kappa if log_jacobian is None else log_kappa - log_jacobian

    def _at_noise_minus_log_jacobian(self, noise: Tensor, exp_neg_noise: Tensor | None, y: Tensor) -> Tensor:
        """The log-density at the own sample y drawn with ``noise``: log kappa from the noise identity (which does
        not depend on the logits) minus the log-Jacobian at y."""
        logits, temperature = self._compute()
        log_kappa = exp_concrete_log_density_at_noise(
            noise, logits, temperature, has_excluded=self._has_excluded, exp_neg_gumbel=exp_neg_noise
        )
        log_jacobian = self._log_jacobian(y, logits)
        if log_jacobian is not None:
            return log_kappa - log_jacobian  # y links the logits (along the sampling path, when there is one)
        return link_zero_gradient(log_kappa, logits)  # gradient exactly 0 rather than "not used in the graph"

    def log_prob(self, value: Tensor) -> Tensor:
        """log kappa(y) (eq. 8) minus the log-Jacobian, y the log-space point of ``value``; shape
        (sample..., batch...). A remembered sample is scored from its log-space point (exact where the simplex
        value underflowed), and one this distribution drew itself from its noise where that identity gives the
        same value and gradients (a sample that carries its sampling path, or no gradient at all): the same
        numbers in fewer passes."""
        self._validate_value(value)
        logits, temperature = self._compute()
        recalled = self._recall(value, logits)
        if recalled is None:
            y = self._log_of(value, logits.dtype)
            return self._minus_log_jacobian(exp_concrete_log_density(y, logits, temperature), y, logits)
        y = self._scoring_point(value, recalled).to(logits.dtype)
        own = self._own_noise_if_exact(value, recalled)
        if own is not None:
            return self._at_noise_minus_log_jacobian(*own, y)
        return self._minus_log_jacobian(exp_concrete_log_density(y, logits, temperature), y, logits)

    def _remember(self, value: Tensor, y: Tensor, draw: GumbelDraw) -> Tensor:
        """Record ``value`` as drawn from the log-space point y by this distribution (its reading, whether a
        category is excluded, and the noise for the own-sample identity); returns ``value``."""
        remember_log(value, y, reading=self._reading, excluded=self._has_excluded, source=self, noise=draw.noise,
                     exp_neg_noise=draw.exp_neg_noise)
        return value

    def _recall(self, value: Tensor, logits: Tensor) -> Recalled | None:
        """The record of ``value`` if this distribution may read it: made in this family's space (``_reading``),
        and, if it was drawn with a category excluded (its point is -inf there), by a distribution whose logits
        are -inf exactly where this one's are (else the general formula decides, which raises on a zero of an
        included category). Only that case reads the logits' values, and not for this distribution's own sample
        with its logits unchanged since."""
        recalled = recall(value, self._reading)
        if recalled is not None and recalled.excluded and recalled.own_noise(self) is None and not traced(logits):
            point = recalled.log_point
            if not torch.equal(torch.isneginf(point), torch.isneginf(logits).expand_as(point)):
                return None
        return recalled

    def _draw_value_and_log_prob(self, sample_shape: SampleShape, generator: torch.Generator | None,
                                 noise: Tensor | None) -> tuple[Tensor, Tensor]:
        """The sample and its log-density in one pass: log kappa from the noise identity, minus the log-Jacobian."""
        draw = self._scores(sample_shape, generator, noise)
        y, x = log_softmax_and_softmax(draw.scores)
        return self._value_of(y, x, draw), self._at_noise_minus_log_jacobian(draw.noise, draw.exp_neg_noise, y)


class ExpConcrete(_LogSpaceCategorical):
    r"""The law of $Y = \log X$ for $X \sim$ Concrete($\alpha$, $\lambda$): a point of the log-simplex.

    Its density (Maddison et al. 2017, eq. 8 / Appendix C.2) is with respect to Lebesgue measure on
    the log-ratios $(y_1 - y_n, \dots, y_{n-1} - y_n)$, not on $y$ itself:

    $$
    \log \kappa(y) = \log (n-1)! + (n-1) \log \lambda + \textstyle\sum_k z_k - n \operatorname{logsumexp}_k z_k,
    \qquad z_k = \log \alpha_k - \lambda y_k.
    $$

    This is the form objectives should consume: it stays finite where the simplex value underflows.

    Args:
        temperature: lambda > 0, a float or a tensor broadcasting against the batch shape
            ``logits.shape[:-1]`` (a tensor shaped like logits with last dimension 1 is also accepted).
            May require grad (a learnable temperature).
        logits: log alpha, shape (batch..., K), K >= 2; -inf excludes a category.
        probs: alpha normalised, shape (batch..., K); give exactly one of logits and probs.
        validate_args: check parameters and values (torch's global default when None).

    float16/bfloat16 parameters are computed in float32; their ``log_prob`` is returned in float32.
    """

    support = log_simplex
    _reading = "log-simplex"  # a value is its own log-space point

    def _value_of(self, y: Tensor, x: Tensor, draw: GumbelDraw) -> Tensor:
        # remembered: the float32 point of a half-precision sample, and the noise for the own-sample identity
        return self._remember(y.to(self.logits.dtype), y, draw)

    def _log_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        return value.to(dtype)

    def _log_jacobian(self, y: Tensor, logits: Tensor) -> None:
        return None


class Concrete(_LogSpaceCategorical):
    r"""Concrete($\alpha$, $\lambda$) on the probability simplex (Maddison et al. 2017, Def. 1, eq. 1):

    $$
    X_k = \operatorname{softmax}_k\bigl((\log \alpha_k + G_k)/\lambda\bigr), \qquad
    \log p(x) = \log \kappa(\log x) - \textstyle\sum_k \log x_k,
    $$

    with $G_k$ standard Gumbel and $\kappa$ the ExpConcrete density (eq. 8).

    ``rsample`` remembers the log-space point of every sample it returns, so ``log_prob`` of that very
    tensor never goes through log(x) (which is -inf where x underflowed to 0 at low temperature). Other
    values are scored through log(x); one with a zero component of an included category is on the
    boundary, where the density is not defined, and raises ``ValueError``.

    Args: as [`ExpConcrete`][concretelab.distributions.ExpConcrete]. A category with logit -inf gets exactly 0 in every
    sample, and log_prob is the density over the remaining categories.
    """

    support = simplex
    _reading = "simplex"  # a value x is exp of its point y

    def _value_of(self, y: Tensor, x: Tensor, draw: GumbelDraw) -> Tensor:
        return self._remember(x.to(self.logits.dtype), y, draw)

    def _point_slope(self, value: Tensor, point: Tensor) -> Tensor:
        """d log x / d x = 1/x."""
        return value.reciprocal()

    def _log_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        value = value.to(dtype)
        included = self.logits > float("-inf")
        if not traced(value) and bool(((value <= 0) & included).any()):
            raise ValueError(
                "value has a zero (or negative) component in a category with a finite logit: it lies on the "
                "boundary of the simplex, where the Concrete density is not defined. Score the tensor that "
                "rsample returned (its log-space point is remembered), or use ExpConcrete in log space."
            )
        return value.log()

    def _log_jacobian(self, y: Tensor, logits: Tensor) -> Tensor:
        """sum_k log x_k over the included categories: log p(x) = log kappa(log x) - this."""
        if not self._has_excluded:
            return y.sum(dim=-1)
        return torch.where(logits > float("-inf"), y, 0.0).sum(dim=-1)
