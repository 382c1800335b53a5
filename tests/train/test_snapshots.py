"""``--snapshot-steps``: the checkpoints of fixed steps, kept beside last and best (the leaderboard measures the
gradient variance at them)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from concretelab.train import TrainConfig, train

from ._helpers import resume, small_config


def _model(path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if k.startswith("model/")}


@pytest.mark.parametrize("seeds", [None, "0-1"])
def test_a_snapshot_is_the_checkpoint_a_run_of_that_many_steps_ends_with(tmp_path, seeds) -> None:
    """Taken through an interruption too: a run stopped at step 3 and resumed keeps the snapshot of step 6."""
    kept, short = tmp_path / "kept", tmp_path / "short"
    train(small_config(kept, steps=3, seeds=seeds, snapshot_steps="6,9"))
    resume(small_config(kept, steps=10, seeds=seeds, snapshot_steps="6,9"))
    train(small_config(short, steps=6, seeds=seeds))
    folders = [("", "")] if seeds is None else [(f"seed-{s}", f"seed-{s}") for s in (0, 1)]
    for kept_folder, short_folder in folders:
        checkpoints = kept / kept_folder / "checkpoints"
        assert sorted(p.name for p in checkpoints.glob("step-*")) == ["step-6.safetensors", "step-9.safetensors"]
        snapshot = _model(checkpoints / "step-6.safetensors")
        ended = _model(short / short_folder / "checkpoints" / "last.safetensors")
        assert snapshot.keys() == ended.keys()
        assert all(torch.equal(snapshot[k], ended[k]) for k in snapshot)


@pytest.mark.parametrize("value", ["0", "5,x", ","])
def test_bad_snapshot_steps_are_refused_naming_the_flag(value) -> None:
    with pytest.raises(ValueError, match="--snapshot-steps"):
        TrainConfig(snapshot_steps=value)
