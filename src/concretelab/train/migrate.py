"""Run folders written by older versions, brought to the current checkpoint's contents in one step.

A resumed run reads two records from its checkpoint's ``extra`` that older versions did not write:

* ``valid_subset``: how ``--eval-images N`` picks the validation images. Checkpoints from before the record drew
  them as the first N images; one that has validated keeps that rule, so that its best checkpoint stays
  comparable (``first``), and one that has not gets today's fixed random subset (``random``).
* ``resolved_temperatures``: the constant (prior, posterior) temperatures the run trained at. An unset
  temperature resolves to the default for the model's units, and a default has changed between versions
  (structured models: (1/2, 2/3) until commit 5ce0d22, then the posterior's for both), so the temperatures are
  read from the checkpoint's config where it set them explicitly, else from the run's last logged training row
  at or before the checkpoint's step; where neither says, the record stays absent.
* ``loss_window``, ``validation_due`` and ``devices``: the losses of the metrics row in progress, whether a
  validation was owed and the devices the run trained on, recorded since; an older checkpoint had no row in
  progress, owed no validation and did not record its device (empty lists, False).

``migrate_checkpoint`` fills in what is missing and changes nothing else; the trainer calls it once, when it
loads the checkpoint it resumes from, and the loop reads only the records.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from concretelab.train.checkpoint import Checkpoint
from concretelab.train.metrics import read_metrics

__all__ = ["TEMPERATURE_KEYS", "migrate_checkpoint"]

TEMPERATURE_KEYS = ("prior_temperature", "posterior_temperature")


def _trained_temperatures(checkpoint: Checkpoint, metrics: Path) -> list[float] | None:
    """The temperatures an old checkpoint trained at: its config's explicit values, else the last logged row's."""
    if all(checkpoint.config.get(key) is not None for key in TEMPERATURE_KEYS):
        return [float(checkpoint.config[key]) for key in TEMPERATURE_KEYS]
    rows = [row for row in read_metrics(metrics) if row.get("step", 0) <= checkpoint.step
            and all(key in row for key in TEMPERATURE_KEYS)]
    return [float(rows[-1][key]) for key in TEMPERATURE_KEYS] if rows else None  # logged as float32


def migrate_checkpoint(checkpoint: Checkpoint, metrics: Path) -> Checkpoint:
    """``checkpoint`` with the records an older version did not write (``valid_subset``, ``resolved_temperatures``,
    ``loss_window``, ``validation_due``, ``devices``) filled in from what it did write and from the run's ``metrics``
    file; a current checkpoint is returned as is."""
    extra = dict(checkpoint.extra)
    if "valid_subset" not in extra:
        extra["valid_subset"] = "first" if checkpoint.best_valid is not None else "random"
    for key, absent in (("loss_window", []), ("validation_due", False), ("devices", [])):
        extra.setdefault(key, absent)
    if "resolved_temperatures" not in extra:
        trained = _trained_temperatures(checkpoint, metrics)
        if trained is not None:
            extra["resolved_temperatures"] = trained
    return checkpoint if extra == checkpoint.extra else dataclasses.replace(checkpoint, extra=extra)
