"""Score-function building blocks: log-probabilities, scores, baselines and learning signals.

The score-function (REINFORCE) estimator of ∂/∂θ E[f(b)] is (f(b) − c) ∇_θ log p_θ(b) for a baseline c
independent of b (Williams 1992). These functions keep its pieces separate so that a trainer can combine
per-example learning signals, input-dependent baselines and layer-wise conditioning itself: it calls
``surrogate_loss(log_prob, signal, baseline)`` per layer and backpropagates.

Shapes: ``log_prob``, ``signal`` and ``baseline`` broadcast against each other; the leading axis is the
sample axis where one is needed (``leave_one_out_baseline``, ``vimco_signals``).

Log-probabilities come from ``concretelab.functional``: ``bernoulli_log_prob(logits, value)`` (elementwise)
and ``categorical_log_prob(logits, value)`` (summed over the categories), logits first like every
``*_log_prob`` of the package. (This module's own ``bernoulli_log_prob(b, logits)`` and
``categorical_log_prob(b, logits)``, the same names with the arguments swapped, were removed: swapping them
was silently wrong.)

References
    [1] Williams, "Simple statistical gradient-following algorithms", Machine Learning 1992.
    [2] Mnih & Gregor, "Neural Variational Inference and Learning in Belief Networks", ICML 2014 (Sec. 3).
    [3] Mnih & Rezende, "Variational inference for Monte Carlo objectives", ICML 2016 (eq. 8-10).
    [4] Kool, van Hoof & Welling, "Buy 4 REINFORCE samples, get a baseline for free!", ICLR DeepRL 2019.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from concretelab.checks import check_int

__all__ = [
    "RunningMoments",
    "bernoulli_score",
    "categorical_score",
    "leave_one_out_baseline",
    "surrogate_loss",
    "vimco_signals",
]


def bernoulli_score(b: Tensor, logits: Tensor) -> Tensor:
    """∇_θ log p(b) = b − σ(θ), elementwise."""
    return b - torch.sigmoid(logits)


def categorical_score(b: Tensor, logits: Tensor) -> Tensor:
    """∇_θ log p(b) = b − softmax(θ) for one-hot b, shape (..., K)."""
    return b - torch.softmax(logits, dim=-1)


def surrogate_loss(log_prob: Tensor, signal: Tensor, baseline: Tensor | float = 0.0) -> Tensor:
    """A tensor whose gradient is (signal − baseline) ∇ log p: ``(signal − baseline).detach() * log_prob``.

    Returned elementwise (not summed) so a trainer can weight and reduce per example or per layer. Minimise
    its negative to ascend E[signal]. The baseline itself gets no gradient here; train it with
    ``((signal.detach() − baseline) ** 2)`` (Mnih & Gregor 2014, Sec. 3.1).
    """
    return (signal - baseline).detach() * log_prob


def leave_one_out_baseline(values: Tensor, dim: int = 0) -> Tensor:
    """c_k = (1/(K−1)) Σ_{j≠k} values_j along ``dim`` (K >= 2): the mean of the other samples (Kool et al. 2019)."""
    k = values.shape[dim]
    if k < 2:
        raise ValueError(
            f"leave_one_out_baseline needs at least 2 samples along dim {dim}, got shape {tuple(values.shape)}"
        )
    return (values.sum(dim=dim, keepdim=True) - values) / (k - 1)


def vimco_signals(log_weights: Tensor, dim: int = 0) -> tuple[Tensor, Tensor]:
    """VIMCO's per-sample learning signals L̂ − L̂_{−k} and the bound L̂ (Mnih & Rezende 2016, eq. 8-10).

    L̂ = log (1/K) Σ_j exp f_j, and L̂_{−k} is L̂ with f_k replaced by the mean of the others
    (1/(K−1)) Σ_{j≠k} f_j, which does not depend on sample k. Computed with logsumexp throughout.
    ``log_weights`` has the K samples on ``dim`` (K >= 2). Returns (signals, bound): signals have the
    shape of ``log_weights``, the bound has ``dim`` removed.
    """
    k = log_weights.shape[dim]
    if k < 2:
        raise ValueError(
            f"vimco_signals needs at least 2 samples along dim {dim}, got shape {tuple(log_weights.shape)}"
        )
    f = log_weights.movedim(dim, 0)  # (K, rest...)
    log_k = math.log(k)
    bound = torch.logsumexp(f, dim=0) - log_k  # (rest...)
    others_mean = leave_one_out_baseline(f, dim=0)  # (K, rest...)
    # table[k, j] = f_j, with its diagonal f_k replaced by the mean of the others
    table = f.unsqueeze(0).expand(k, *f.shape)
    eye = torch.eye(k, dtype=torch.bool, device=f.device).reshape(k, k, *([1] * (f.dim() - 1)))
    table = torch.where(eye, others_mean.unsqueeze(1), table)
    loo_bound = torch.logsumexp(table, dim=1) - log_k  # (K, rest...)
    return (bound.unsqueeze(0) - loo_bound).movedim(0, dim), bound


class RunningMoments(nn.Module):
    """Exponential moving mean and variance of learning signals, one pair per group (a layer), updated from
    past batches only, kept on the device as buffers (no host sync) and saved with ``state_dict``.

    NVIL centres its signal by the running mean c̄ and divides it by max(1, running std) (Mnih & Gregor
    2014, Sec. 3.3, with α = 0.8 there): c̄ ← α c̄ + (1 − α) mean, s² ← α s² + (1 − α) var, the first batch
    setting both. Dividing rescales the gradient by a positive scalar, so the direction is unchanged but the
    result is no longer an estimate of the gradient itself. Used by the lab's NVIL (one group) and by the
    trainer's layer-wise NVIL (one group per stochastic layer).
    """

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(self, decay: float = 0.8, groups: int = 1) -> None:
        super().__init__()
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"decay must be a number in [0, 1), got {decay!r}")
        check_int("groups", groups, 1)
        self.decay = float(decay)
        self.register_buffer("mean", torch.zeros(groups))
        self.register_buffer("var", torch.ones(groups))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def reset(self) -> None:
        with torch.no_grad():
            self.mean.zero_()
            self.var.fill_(1.0)
            self.count.zero_()

    @torch.no_grad()
    def update(self, signal: Tensor) -> None:
        """Fold a batch of signals into the moments: shape (groups, ...) (with one group, any shape). Moments
        stacked for replicas (``mean`` of shape (R, groups), ``count`` (R,)) take (R, groups, ...)."""
        residual = signal.detach().reshape(self.mean.numel(), -1)
        mean = residual.mean(1).to(self.mean.dtype).view_as(self.mean)
        var = (residual.var(1, unbiased=False).to(self.var.dtype).view_as(self.var) if residual.shape[1] > 1
               else torch.zeros_like(mean))
        first = self.count == 0
        if self.count.dim():  # replicas: one count per replica, over its groups
            first = first.unsqueeze(-1)
        a = self.decay
        self.mean.copy_(torch.where(first, mean, a * self.mean + (1 - a) * mean))
        self.var.copy_(torch.where(first, var, a * self.var + (1 - a) * var))
        self.count.add_(1)

    def scale(self) -> Tensor:
        """max(1, running std) per group: NVIL's divisor, shape (groups,)."""
        return self.var.sqrt().clamp(min=1.0)

    def normalise(self, signal: Tensor) -> Tensor:
        """(signal − mean) / max(1, sqrt(var)) with one group, using the moments from before this batch."""
        return (signal - self.mean.to(signal.dtype)) / self.scale().to(signal.dtype)
