"""The importance-weighted bound L_k of a discrete model, streamed over chunks of samples.

    L_k(x) = log (1/k) sum_{i=1..k} p(x, h_i) / q(h_i | x),   h_i ~ q(. | x) i.i.d.   (Burda et al. 2016, eq. 8)

E[L_k] <= E[L_{k+1}] <= log p(x), and L_k -> log p(x) as k -> infinity (Burda et al., Thm. 1), so with
k = 50,000 it is the test log-likelihood estimate of Maddison et al. (2017), Sec. 5.

References
    [1] Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
    [2] C. J. Maddison, A. Mnih, Y. W. Teh, "The Concrete Distribution", ICLR 2017 (Sec. 5: L_50000).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from concretelab.checks import check_int
from concretelab.objectives.protocols import DiscreteModel

__all__ = [
    "StreamingLogMeanExp",
    "default_chunk_size",
    "discrete_bound",
    "discrete_bound_per_image",
    "model_placement",
]

# Elements of one (chunk, batch, D) tensor in the default chunk (2**23 float32 values = 32 MiB).
_TARGET_ELEMENTS = 2**23


def default_chunk_size(batch: int, dim: int, k: int) -> int:
    """Samples per chunk so that a (chunk, batch, dim) tensor holds about 2**23 elements; at most k."""
    return max(1, min(k, _TARGET_ELEMENTS // max(1, batch * dim)))


class StreamingLogMeanExp:
    """log (1/n) sum_i exp(w_i) over chunks of w, with a running maximum M and a running sum
    S = sum_i exp(w_i - M) (kept in float64): on a new chunk with maximum c, M' = max(M, c) and
    S' = S exp(M - M') + sum_j exp(w_j - M'). Exact for any magnitude of w; -inf weights contribute 0.
    """

    def __init__(self) -> None:
        self._max: Tensor | None = None
        self._sum: Tensor | None = None
        self._count = 0

    def update(self, log_weights: Tensor) -> None:
        """Add a chunk of log-weights, shape (chunk, batch...)."""
        w = log_weights.detach().to(torch.float64)
        chunk_max = w.amax(dim=0)
        if self._max is None or self._sum is None:
            new_max = chunk_max
            scaled_old = torch.zeros_like(chunk_max)
        else:
            new_max = torch.maximum(self._max, chunk_max)
            finite = new_max > -math.inf  # where everything so far is -inf the sum stays 0 (no inf - inf)
            scaled_old = torch.where(finite, self._sum * torch.exp(self._max - new_max), 0.0)
        shift = torch.where(new_max > -math.inf, new_max, 0.0)
        self._sum = scaled_old + torch.exp(w - shift).sum(dim=0)
        self._max = new_max
        self._count += w.shape[0]

    def value(self) -> Tensor:
        """log (1/n) sum_i exp(w_i) (float64); -inf where every weight was -inf."""
        if self._max is None or self._sum is None:
            raise ValueError("no log-weights were added (update was never called)")
        shift = torch.where(self._max > -math.inf, self._max, 0.0)
        return shift + self._sum.log() - math.log(self._count)


def discrete_bound(
    model: DiscreteModel,
    x: Tensor,
    k: int,
    *,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""The importance-weighted bound $L_k$ of the discrete model with its own proposal, per example (batch,):

    $$
    L_k(x) = \log \frac{1}{k} \sum_{i=1}^k \exp\bigl(\log p(x, h_i) - \log q(h_i \mid x)\bigr), \qquad
    h_i \sim q(\cdot \mid x).
    $$

    The k samples are drawn in chunks of ``chunk_size`` (default:
    [`default_chunk_size`][concretelab.objectives.default_chunk_size], about 2**23 elements per (chunk, batch, D)
    tensor) and their log-weights folded into a streaming log-mean-exp
    ([`StreamingLogMeanExp`][concretelab.objectives.StreamingLogMeanExp]), so memory is bounded for any k (50,000 is
    routine). Runs under ``torch.no_grad()``; the result has x's dtype.

    The model needs only the discrete-model protocol (docs/dev/contracts.md), so any ``nn.Module`` works:

    - ``sample_posterior(x, num_samples, *, generator=None) -> (h, log_q)``: h drawn from the proposal (a list,
      one tensor per stochastic layer, each (num_samples, batch, ...)), and log_q, shape (num_samples, batch);
    - ``log_joint(x, h) -> (num_samples, batch)``: log p(x, h) (for a conditional model, log p(y, h | context)).

    Chunks use ``generator`` in sequence, so a fixed generator gives a reproducible result for a fixed
    ``chunk_size``; different chunk sizes give different draws from the same distribution.
    """
    check_int("k", k, 1)
    if not isinstance(x, Tensor) or x.dim() < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a (batch, D) tensor, got {shape}")
    if chunk_size is None:
        chunk_size = default_chunk_size(x.shape[0], math.prod(x.shape[1:]), k)
    else:
        check_int("chunk_size", chunk_size)
    stream = StreamingLogMeanExp()
    with torch.no_grad():
        done = 0
        while done < k:
            m = min(chunk_size, k - done)
            h, log_q = model.sample_posterior(x, m, generator=generator)
            log_w = model.log_joint(x, h) - log_q
            if log_w.shape != (m, x.shape[0]):
                raise ValueError(
                    f"log_joint(x, h) - log_q must have shape (num_samples, batch) = {(m, x.shape[0])}, "
                    f"got {tuple(log_w.shape)}"
                )
            stream.update(log_w)
            done += m
    return stream.value().to(x.dtype)


def model_placement(model: object, images: Tensor) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype an evaluation of ``model`` runs in: those of its first parameter (a
    module's), else the images' device and float32 (a parameter-free model, such as a test's fixed one)."""
    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    if first is None:
        return images.device, torch.float32
    return first.device, first.dtype if first.dtype.is_floating_point else torch.float32


@torch.no_grad()
def discrete_bound_per_image(
    model: DiscreteModel,
    images: Tensor,
    k: int,
    *,
    batch_size: int = 100,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """L_k of every image (Burda et al. 2016, eq. 8), float64 on the CPU, shape (N,):
    [`discrete_bound`][concretelab.objectives.discrete_bound] on ``batch_size`` images at a time, moved to the device
    and dtype of the model's parameters (a module's; else the images' device, in float32). A module is put in eval mode
    for the evaluation and left as it was. ``images`` (N, D) may be uint8 or float 0/1; ``progress(n)`` is called after
    each batch with the number of images it held. The generator is used in sequence over the batches, so a fixed seed
    and batch size give a reproducible result.
    """
    if not isinstance(images, Tensor) or images.dim() != 2 or images.shape[0] < 1:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be an (N, D) tensor with N >= 1, got {shape}")
    check_int("batch_size", batch_size, 1)
    device, dtype = model_placement(model, images)
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()  # type: ignore[attr-defined]
    try:
        bounds = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device=device, dtype=dtype)  # (batch, D)
            bounds.append(discrete_bound(model, x, k, chunk_size=chunk_size, generator=generator).double().cpu())
            if progress is not None:
                progress(x.shape[0])
    finally:
        if was_training is not None:
            model.train(was_training)  # type: ignore[attr-defined]
    return torch.cat(bounds)
