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
    assert "| test (embedded) |" in (tmp_path / "summary.md").read_text()
    for path in summary["plots"]:
        assert open(path, "rb").read(4) == b"\x89PNG"
    assert (tmp_path / "run" / "checkpoints" / "best.safetensors").is_file()
