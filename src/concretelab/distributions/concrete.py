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
    SampleShape,
    link_zero_gradient,
)
from concretelab.distributions._record import cached_log, cached_own_noise, remember_log
from concretelab.distributions.constraints import log_simplex, simplex
from concretelab.functional import (
    exp_concrete_log_density,
    exp_concrete_log_density_at_noise,
    log_softmax_and_softmax,
)

__all__ = ["Concrete", "ExpConcrete"]


class ExpConcrete(CategoricalConcreteParams):
    r"""The law of Y = log X for X ~ Concrete(alpha, lambda): a point of the log-simplex.

    Its density (Maddison et al. 2017, eq. 8 / Appendix C.2) is with respect to Lebesgue measure on
    the log-ratios (y_1 - y_n, ..., y_{n-1} - y_n), not on y itself:

        log kappa(y) = log (n-1)! + (n-1) log lambda + sum_k z_k - n logsumexp_k z_k,
        z_k = log alpha_k - lambda y_k.

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

    def rsample(
        self,
        sample_shape: SampleShape = (),
        *,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Y = log_softmax((logits + G) / lambda) (Maddison et al. eq. 8); shape sample_shape + (batch..., K)."""
        scores, noise, drawn = self._scores(sample_shape, generator, noise)
        y = log_softmax_and_softmax(scores)[0]
        out = y.to(self.logits.dtype)
        # remembered: the float32 point of a half-precision sample, and the noise for the own-sample identity
        remember_log(out, y, source=self, noise=noise, exp_neg_noise=drawn)
        return out

    def log_prob(self, value: Tensor) -> Tensor:
        """log kappa(value), the ExpConcrete log-density on the log-ratios (eq. 8); shape (sample..., batch...).

        For a sample this distribution drew itself (unchanged since), the value comes from the noise
        identity log kappa(y) = log (n-1)! + (n-1) log lambda - sum_k G_k - n logsumexp_k(-G_k), which is
        the same number and the same total (pathwise) gradient in fewer passes (docs/math.md).
        """
        self._validate_value(value)
        logits, temperature = self._compute()
        own = cached_own_noise(value, self)
        if own is not None:
            log_prob = exp_concrete_log_density_at_noise(
                own[1], logits, temperature, has_excluded=self._has_excluded, exp_neg_gumbel=own[2]
            )
            return link_zero_gradient(log_prob, logits)
        y = cached_log(value)
        y = value.to(logits.dtype) if y is None else y.to(logits.dtype)
        return exp_concrete_log_density(y, logits, temperature)

    def sample_and_log_prob(
        self,
        sample_shape: SampleShape = (),
        *,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """A sample and its log-density from the noise identity
        log kappa(y) = log (n-1)! + (n-1) log lambda - sum_k G_k - n logsumexp_k(-G_k) (docs/math.md)."""
        scores, noise, drawn = self._scores(sample_shape, generator, noise)
        y = log_softmax_and_softmax(scores)[0]
        logits, temperature = self._compute()
        log_prob = exp_concrete_log_density_at_noise(
            noise, logits, temperature, has_excluded=self._has_excluded, exp_neg_gumbel=drawn
        )
        log_prob = link_zero_gradient(log_prob, logits)
        out = y.to(self.logits.dtype)
        remember_log(out, y, source=self, noise=noise, exp_neg_noise=drawn)
        return out, log_prob


class Concrete(CategoricalConcreteParams):
    r"""Concrete(alpha, lambda) on the probability simplex (Maddison et al. 2017, Def. 1, eq. 1):

        X_k = softmax_k((log alpha_k + G_k)/lambda),
        log p(x) = log kappa(log x) - sum_k log x_k    (kappa: the ExpConcrete density, eq. 8).

    ``rsample`` remembers the log-space point of every sample it returns, so ``log_prob`` of that very
    tensor never goes through log(x) (which is -inf where x underflowed to 0 at low temperature). Other
    values are scored through log(x); one with a zero component of an included category is on the
    boundary, where the density is not defined, and raises ``ValueError``.

    Args: as :class:`ExpConcrete`. A category with logit -inf gets exactly 0 in every sample, and
    log_prob is the density over the remaining categories.
    """

    support = simplex

    def rsample(
        self,
        sample_shape: SampleShape = (),
        *,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """X = softmax((logits + G) / lambda), computed as exp of the log-space sample.

        Shape sample_shape + (batch..., K)."""
        scores, noise, drawn = self._scores(sample_shape, generator, noise)
        y, x = log_softmax_and_softmax(scores)
        x = x.to(self.logits.dtype)
        remember_log(x, y, source=self, noise=noise, exp_neg_noise=drawn)
        return x

    def _log_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        y = cached_log(value)
        if y is not None:
            return y.to(dtype)
        value = value.to(dtype)
        included = self.logits > float("-inf")
        if bool(((value <= 0) & included).any()):
            raise ValueError(
                "value has a zero (or negative) component in a category with a finite logit: it lies on the "
                "boundary of the simplex, where the Concrete density is not defined. Score the tensor that "
                "rsample returned (its log-space point is remembered), or use ExpConcrete in log space."
            )
        return value.log()

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(x) = log kappa(log x) - sum_k log x_k (Maddison et al. eq. 1 via eq. 8).

        Shape (sample..., batch...)."""
        self._validate_value(value)
        logits, temperature = self._compute()
        own = cached_own_noise(value, self)
        if own is not None:  # a sample this distribution drew: log kappa from the noise identity
            y = own[0].to(logits.dtype)
            log_kappa = exp_concrete_log_density_at_noise(
                own[1], logits, temperature, has_excluded=self._has_excluded, exp_neg_gumbel=own[2]
            )
        else:
            y = self._log_of(value, logits.dtype)
            log_kappa = exp_concrete_log_density(y, logits, temperature)
        return log_kappa - self._log_jacobian(y, logits)

    def _log_jacobian(self, y: Tensor, logits: Tensor) -> Tensor:
        """sum_k log x_k over the included categories: log p(x) = log kappa(log x) - this."""
        if not self._has_excluded:
            return y.sum(dim=-1)
        return torch.where(logits > float("-inf"), y, 0.0).sum(dim=-1)

    def sample_and_log_prob(
        self,
        sample_shape: SampleShape = (),
        *,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """A sample and log p(x) = log kappa (from the noise identity) - sum_k y_k, in one pass."""
        scores, noise, drawn = self._scores(sample_shape, generator, noise)
        y, x = log_softmax_and_softmax(scores)
        logits, temperature = self._compute()
        log_kappa = exp_concrete_log_density_at_noise(
            noise, logits, temperature, has_excluded=self._has_excluded, exp_neg_gumbel=drawn
        )
        x = x.to(self.logits.dtype)
        remember_log(x, y, source=self, noise=noise, exp_neg_noise=drawn)
        return x, log_kappa - self._log_jacobian(y, logits)
