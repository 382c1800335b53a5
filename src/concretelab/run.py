"""Load a trained run (``concretelab.load_run``): the public face of ``concretelab.train.load``."""

from __future__ import annotations

from concretelab.train.load import checkpoint_path, load_run, model_from_checkpoint

__all__ = ["checkpoint_path", "load_run", "model_from_checkpoint"]
