"""The learning rate at each optimizer step: a pure function of the step, so a resumed run needs no state.

    warmup (t < W):   lr(t) = base * (t + 1) / W
    after warmup, with progress p = (t - W) / (T - W) over the decay horizon T:
        constant      lr(t) = base
        cosine        lr(t) = base * (1 + cos(pi * p)) / 2          (Loshchilov & Hutter, ICLR 2017, eq. 5, eta_min = 0)
        linear        lr(t) = base * (1 - p)

t counts the optimizer steps already taken (0 for the first), so the last step of the horizon uses
lr(T - 1) = base * (1 + cos(pi (T - 1 - W) / (T - W))) / 2 > 0 and the schedule reaches 0 only at T.
"""

from __future__ import annotations

import math

__all__ = ["LR_SCHEDULES", "learning_rate"]

LR_SCHEDULES = ("constant", "cosine", "linear")


def learning_rate(base: float, step: int, *, schedule: str, warmup_steps: int, horizon: int) -> float:
    """lr(step) for ``schedule`` with a linear warmup of ``warmup_steps`` and decay to 0 at ``horizon``."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
    if warmup_steps and step < warmup_steps:
        return base * (step + 1) / warmup_steps
    if schedule == "constant":
        return base
    span = max(horizon - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base * (1.0 - progress)
