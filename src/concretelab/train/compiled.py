"""The training step's loss under ``torch.compile`` (``concretelab train --compile``).

At m = 1 a step of a Table 1 model spends about half its time outside its matmuls: the sampling, the softplus
and log-sigmoid terms of the densities and their backward, each a pass over memory of its own
(docs/training.md, "Speed"). Compiled as one graph, Inductor fuses those passes into a few
loops; the matmuls, the backward's structure and Adam's fused update are unchanged.

The loss draws its noise inside the graph, so the graph takes no ``torch.Generator`` (Dynamo cannot trace one
and splits the graph at every draw). Instead each call seeds the default generator of the loss's device
with the step's noise seed, inside ``torch.random.fork_rng`` (the process's own random state is put back after
the call), and Inductor is told to draw with ATen's own generator (its ``fallback_random`` option). A compiled
step therefore draws the noise of the eager step with the same seed, bit for bit; what differs is the rounding
of the fused arithmetic (last bits of float32), so a compiled run follows the eager run's trajectory closely but
not bit for bit. A compiled run resumed with ``--compile`` replays itself bit for bit (Inductor's CPU code is
deterministic for fixed shapes).

Shapes are static (``dynamic=False``): every batch of a run has the same shape, and the temperatures are passed
as 0-d tensors (or per-replica columns), so a temperature schedule does not compile the graph again.
Compiling takes 10 to 60 seconds at the first step, and needs a C++ compiler on the CPU.

The relaxed objectives compile without a graph break (tests/train/test_compiled.py checks it). ``fullgraph`` is
still left off, for one reason: Dynamo keeps at most ``torch._dynamo.config.recompile_limit`` (8) graphs per
function, so a process that trains more runs than that (a sweep in one process) gets Dynamo's warning and the
eager loss for the runs after, where ``fullgraph=True`` would stop them with an error. Either way the noise is the
same: the eager loss draws from the same seeded default generator.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["CompiledLoss"]

#: Inductor options: draw random numbers with ATen's generators (the eager step's noise), not Inductor's own.
INDUCTOR_OPTIONS = {"fallback_random": True}


class CompiledLoss:
    """``loss_fn(x, prior_t, posterior_t)`` compiled as one graph, its noise drawn from the device's default
    generator seeded per call.

    Args:
        loss_fn: the step's loss on a batch, a 0-d tensor or one loss per replica (R,), drawing its noise from the
            default generator of ``device`` (its objective called with ``generator=None``).
        device: where the loss runs.
    """

    def __init__(self, loss_fn: Callable[[Tensor, Tensor, Tensor], Tensor], device: torch.device) -> None:
        self.device = device
        self._compiled = torch.compile(loss_fn, dynamic=False, options=INDUCTOR_OPTIONS)

    def __call__(self, x: Tensor, prior_t: float | Tensor, posterior_t: float | Tensor, *, seed: int) -> Tensor:
        """The loss on ``x`` with the noise of ``seed``; the process's random state is left as it was."""
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda, device_type=self.device.type):
            if cuda:
                torch.cuda.default_generators[self.device.index or 0].manual_seed(seed)
            else:
                torch.default_generator.manual_seed(seed)
            return self._compiled(x, self._as_tensor(prior_t, x), self._as_tensor(posterior_t, x))

    @staticmethod
    def _as_tensor(temperature: float | Tensor, like: Tensor) -> Tensor:
        """A temperature as a tensor of ``like``'s dtype and device (a float would be compiled in as a constant)."""
        if isinstance(temperature, Tensor):
            return temperature
        return torch.tensor(float(temperature), dtype=like.dtype, device=like.device)
