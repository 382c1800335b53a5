"""``concretelab train --tensorboard``: the scalars of metrics.jsonl and sample images, as TensorBoard events in
``RUN/tensorboard/`` (through ``torch.utils.tensorboard``; the optional extra ``concretelab[tensorboard]``).

Resume: the writer of a resumed run purges every event at or after the first step it will replay
(``SummaryWriter(purge_step=...)``), so events a killed run wrote after its last checkpoint are dropped and
no step is duplicated or out of order.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["SCALARS", "TensorBoardLog", "require_tensorboard"]

# metrics.jsonl key -> TensorBoard tag
SCALARS = {
    "loss": "train/loss",
    "prior_temperature": "train/prior_temperature",
    "posterior_temperature": "train/posterior_temperature",
    "lr": "train/lr",
    "valid_nll": "valid/nll",
}

_INSTALL = "pip install 'concretelab[tensorboard]' (or pip install tensorboard)"


def require_tensorboard() -> None:
    """ValueError naming the flag and the install command when the tensorboard package is missing."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as error:
        raise ValueError(f"--tensorboard needs the tensorboard package, which is not installed: {_INSTALL}") from error


class TensorBoardLog:
    """Writes metrics rows and sample images to ``folder``; ``first_step`` is the first step this process logs."""

    def __init__(self, folder: str | Path, first_step: int) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder), purge_step=first_step if first_step > 0 else None)

    def row(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        for key, tag in SCALARS.items():
            value = row.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(tag, value, global_step=step)
        self.writer.flush()

    @torch.no_grad()
    def samples(self, step: int, model: nn.Module, image_shape: tuple[int, int], condition: torch.Tensor | None,
                generator: torch.Generator) -> None:
        """Pixel probabilities of 16 samples of the model (conditional models: given ``condition``)."""
        if getattr(model, "conditional", False) and condition is not None:
            probs = model.generate(condition.shape[0], generator=generator, condition=condition)
        else:
            probs = model.generate(16, generator=generator)
        images = probs.detach().float().cpu().reshape(-1, 1, *image_shape).clamp(0, 1)
        self.writer.add_images("samples/pixel_probabilities", images, global_step=step, dataformats="NCHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
