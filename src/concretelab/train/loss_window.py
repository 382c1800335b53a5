"""The per-step losses of the metrics row in progress, kept on the device so the hot loop never waits on it, and
checked for NaN/inf whenever they are read (``NonFiniteLossError`` names the step)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from concretelab.train.distributed import Distributed

__all__ = ["LossWindow", "NonFiniteLossError", "next_row_step"]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stopped without writing a checkpoint."""


class LossWindow:
    """The per-step losses of the metrics row in progress, kept on the device (no per-step host sync).

    ``size`` slots hold the losses between two rows of one ``--log-every``. A run resumed with another
    ``--log-every`` brings the losses pending since its last row, and its next row (at the next multiple of the
    new value) covers them and every step up to it: ``load`` grows the buffer to hold them all, and
    ``reset`` returns it to ``size`` slots after that row.
    """

    def __init__(self, size: int, device: torch.device, context: Distributed, replicas: int = 1) -> None:
        self.size = size
        self.shape: tuple[int, ...] = () if replicas == 1 else (replicas,)  # one loss per replica per step
        self.values = torch.zeros(size, *self.shape, device=device)
        self.count = 0
        self.context = context

    def add(self, loss: Tensor) -> None:
        self.values[self.count] += loss.detach()

    def close_step(self) -> None:
        self.count += 1

    def read(self, step: int, last_path: Path) -> list[float]:
        """The pending losses (averaged over ranks), after checking they are finite (else NonFiniteLossError)."""
        window = self.values[: self.count]
        if self.context.enabled:  # idempotent: values already averaged are equal on every rank
            torch.distributed.all_reduce(window)
            window.div_(self.context.world_size)
        values = window.tolist()
        bad = [(i, v) for i, row in enumerate(values) for v in (row if self.shape else [row]) if not math.isfinite(v)]
        if bad:
            bad_step = step - self.count + bad[0][0] + 1
            kept = f"the last good checkpoint is {last_path}" if last_path.exists() else "no checkpoint was written"
            raise NonFiniteLossError(
                f"non-finite training loss ({bad[0][1]}) at step {bad_step}; stopping ({kept}, untouched)"
            )
        return values

    def reset(self) -> None:
        if self.values.shape[0] != self.size:  # grown by load(): back to one row's losses
            self.values = torch.zeros(self.size, *self.shape, dtype=self.values.dtype, device=self.values.device)
        else:
            self.values.zero_()
        self.count = 0

    def load(self, values: list[float], steps_to_next_row: int) -> None:
        """Restore the losses pending in a checkpoint, with room for the ``steps_to_next_row`` steps still to
        come before the next row; the buffer grows when they do not fit in ``size`` slots (a resumed run's
        ``--log-every`` differs from the one its pending losses were gathered under)."""
        needed = len(values) + max(steps_to_next_row, 0)
        if needed > self.values.shape[0]:
            self.values = torch.zeros(needed, *self.shape, dtype=self.values.dtype, device=self.values.device)
        else:
            self.values.zero_()
        if values:
            self.values[: len(values)] = torch.tensor(values, dtype=self.values.dtype)
        self.count = len(values)


def next_row_step(step: int, log_every: int, steps: int) -> int:
    """The step of the first training row after ``step``: the next multiple of ``log_every``, or the last step
    ``steps`` when that comes first (``step`` itself when no step is left)."""
    return max(min((step // log_every + 1) * log_every, steps), step)
