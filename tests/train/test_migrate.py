"""Older run folders are brought to the current checkpoint's records in one step (concretelab.train.migrate), so
that the loop reads only the records (issue 30: compatibility is one tested migration, not branches in the loop)."""

from __future__ import annotations

import json
from pathlib import Path

from concretelab.train.checkpoint import Checkpoint
from concretelab.train.migrate import migrate_checkpoint


def _checkpoint(step: int = 300, best_valid: float | None = 100.0, config: dict | None = None,
                extra: dict | None = None) -> Checkpoint:
    return Checkpoint(step=step, model_state={}, optimizer_state={}, rng={}, data_state=None, best_valid=best_valid,
                      config=config or {"model": "392V-240H-240H-392V"}, model_args={}, extra=extra or {})


def _metrics(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


CURRENT = {"valid_subset": "random", "resolved_temperatures": [0.5, 0.5], "loss_window": [101.0],
           "validation_due": True, "devices": [[0, "cpu"]]}


def test_a_current_checkpoint_is_returned_unchanged(tmp_path: Path) -> None:
    current = _checkpoint(extra=dict(CURRENT))
    assert migrate_checkpoint(current, tmp_path / "absent.jsonl") is current


def test_records_an_old_checkpoint_lacks_get_the_values_it_implied(tmp_path: Path) -> None:
    """Before these were recorded a checkpoint had no metrics row in progress, owed no validation and did not say
    its device."""
    old = _checkpoint(extra={"valid_subset": "random", "resolved_temperatures": [0.5, 0.5]})
    extra = migrate_checkpoint(old, tmp_path / "absent.jsonl").extra
    assert (extra["loss_window"], extra["validation_due"], extra["devices"]) == ([], False, [])


def test_the_validation_subset_of_an_old_run_that_validated_stays_its_first_images(tmp_path: Path) -> None:
    absent = tmp_path / "absent.jsonl"
    assert migrate_checkpoint(_checkpoint(best_valid=101.5), absent).extra["valid_subset"] == "first"
    assert migrate_checkpoint(_checkpoint(best_valid=None), absent).extra["valid_subset"] == "random"


def test_temperatures_from_the_config_else_from_the_last_row_at_or_before_the_step(tmp_path: Path) -> None:
    explicit = _checkpoint(config={"prior_temperature": 0.5, "posterior_temperature": 2 / 3})
    assert migrate_checkpoint(explicit, tmp_path / "absent.jsonl").extra["resolved_temperatures"] == [0.5, 2 / 3]
    # unset in the config (the default then was (1/2, 2/3) for this model): the run's log says what it trained at
    rows = [{"step": 100, "loss": 1.0, "prior_temperature": 0.5, "posterior_temperature": 0.6666666865348816},
            {"step": 300, "loss": 1.0, "prior_temperature": 0.5, "posterior_temperature": 0.6666666865348816},
            {"step": 400, "loss": 1.0, "prior_temperature": 0.25, "posterior_temperature": 0.25}]  # after the step
    migrated = migrate_checkpoint(_checkpoint(), _metrics(tmp_path, rows))
    assert migrated.extra["resolved_temperatures"] == [0.5, 0.6666666865348816]
    # neither says: nothing is invented
    assert "resolved_temperatures" not in migrate_checkpoint(_checkpoint(), tmp_path / "absent.jsonl").extra
    # the other contents are untouched
    assert migrated.step == 300 and migrated.best_valid == 100.0 and migrated.config == _checkpoint().config
