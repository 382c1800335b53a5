"""The training demo (what `make demo` runs), on a tiny budget: files and summary fields."""

from __future__ import annotations

import json
import math

from concretelab.train.demo import run_training_demo


def test_demo_writes_summary_and_plots(tmp_path) -> None:
    summary = run_training_demo(tmp_path, model="8H-784V", steps=12, eval_k=3, valid_k=2, progress=False)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["steps"] == 12 and summary["k"] == 3
    for key in ("test_nll", "valid_nll", "best_valid_nll", "final_train_loss"):
        assert math.isfinite(summary[key]) and summary[key] > 0, key
    markdown = (tmp_path / "summary.md").read_text()
    assert "| test (embedded) |" in markdown
    assert "Why the training curve sits" in markdown and "k = 2 samples" in markdown  # issue 30, item 7
    for path in summary["plots"]:
        assert open(path, "rb").read(4) == b"\x89PNG"
    assert (tmp_path / "run" / "checkpoints" / "best.safetensors").is_file()


def test_reconstructions_are_paired_rows() -> None:
    """Issue 30, item 7: each row of test images sits directly above the row of its reconstructions (labelled),
    so an original and its reconstruction read as a pair."""
    import torch

    from concretelab.train.plots import _pair_canvas

    originals = torch.arange(5 * 4, dtype=torch.float32).reshape(5, 4) / 100  # 5 images of 2 x 2 pixels
    reconstructions = 1 - originals
    canvas, centres, labels = _pair_canvas(originals, reconstructions, (2, 2), columns=3)
    assert labels == ["test", "reconstruction", "test", "reconstruction"]
    for p in range(2):  # pair p holds images 3p .. 3p + 2
        top, below = (int(centres[2 * p] - 0.5), int(centres[2 * p + 1] - 0.5))
        assert below == top + 3  # two pixel rows of images, one of gap
        for c in range(min(3, 5 - 3 * p)):
            i = 3 * p + c
            torch.testing.assert_close(canvas[top : top + 2, 3 * c : 3 * c + 2].reshape(-1), originals[i])
            torch.testing.assert_close(canvas[below : below + 2, 3 * c : 3 * c + 2].reshape(-1), reconstructions[i])
    assert torch.isnan(canvas[int(centres[2] - 0.5):, 6:]).all()  # no sixth image
