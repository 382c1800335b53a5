"""Subnormal floats on the CPU: flushed to zero while training and evaluating.

Late in training some float32 values fall below the smallest normal number, 2^-126 ≈ 1.2e-38: importance
weights softmax(log w) over m samples whose log-weights spread over tens of nats, the gradients those weights
scale, and the probabilities of saturated units. x86 CPUs compute with such subnormal operands in a slow
microcode path: an m = 50 VIMCO step of a trained 200H~784V took 265 ms with them and 73 ms with them flushed
(``benchmarks/denormals.py``, docs/training.md). Flushing subnormals to zero changes a value only where its
magnitude is below 1.2e-38 (2.2e-308 in float64), far below anything a bound or an Adam step can resolve.

The setting belongs to a thread (the CPU's MXCSR register). With one torch thread (``--threads 1``, as the Table 1
cells run) it covers every operation; with more, work that torch hands to its other threads may keep subnormals.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["flush_denormals"]


_depth = 0  # blocks of flush_denormals now open (nested ones leave the setting to the outermost)


@contextlib.contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[None]:
    """Run the block with ``torch.set_flush_denormal(True)`` when ``enabled`` (a no-op on CPUs without the
    SSE3 control bits, and for CUDA tensors, which follow their own flags). The outermost block turns it off
    again at its end: torch cannot read the setting, so it is left off, torch's default, whatever it was before.
    ``enabled=False`` changes nothing (inside an enabled block, subnormals are still flushed)."""
    global _depth
    if not enabled:
        yield
        return
    if _depth == 0:
        torch.set_flush_denormal(True)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            torch.set_flush_denormal(False)
