"""concretelab/train/load.py (public as concretelab.run and concretelab.load_run): finding a run's checkpoint,
with messages that say what is wrong, and rebuilding its model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import concretelab
from concretelab.cli import main
from concretelab.run import checkpoint_path as public_checkpoint_path
from concretelab.train import load_checkpoint
from concretelab.train.load import checkpoint_path, model_from_checkpoint


@pytest.fixture(scope="module")
def run_without_validation(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--model", "8H-784V", "--steps", "2", "--batch-size", "8", "--eval-every", "0",
                 "--no-progress", "--threads", "1", "--out", str(out)]) == 0
    return out


def test_checkpoint_path_names_what_is_missing(tmp_path: Path, run_without_validation: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is missing"):
        checkpoint_path(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file, not a run folder"):
        checkpoint_path(tmp_path / "file")
    with pytest.raises(ValueError, match="--checkpoint must be best or last, got 'first'"):
        checkpoint_path(run_without_validation, "first")
    with pytest.raises(FileNotFoundError, match="never validated; use --checkpoint last"):
        checkpoint_path(run_without_validation, "best")
    # None falls back to last when the run has no best checkpoint
    assert checkpoint_path(run_without_validation) == run_without_validation / "checkpoints" / "last.safetensors"
    assert public_checkpoint_path is checkpoint_path


def test_model_from_checkpoint_rebuilds_the_trained_weights_in_eval_mode(run_without_validation: Path) -> None:
    checkpoint = load_checkpoint(checkpoint_path(run_without_validation, "last"))
    model = model_from_checkpoint(checkpoint)
    assert not model.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, checkpoint.model_state[name]), name
    loaded, config = concretelab.load_run(run_without_validation)
    assert config.model == "8H-784V" and config.steps == 2
    x = torch.zeros(2, 784)
    h_loaded, _ = loaded.sample_posterior(x, 3, generator=torch.Generator().manual_seed(0))
    h_model, _ = model.sample_posterior(x, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loaded.log_joint(x, h_loaded), model.log_joint(x, h_model))
