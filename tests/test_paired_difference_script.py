"""scripts/paired_difference.py reads both kinds of evaluation file and refuses to pair different images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "paired_difference.py"


def _run(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, paths)], capture_output=True, text=True,
                          timeout=120)


def _write(path: Path, result: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result), encoding="utf-8")
    return path


def test_reproduce_cache_files_pair_by_their_run_folders(tmp_path: Path) -> None:
    # the test bounds `reproduce table1` caches in a run folder name neither the run nor the data
    common = {"checkpoint": "best", "images": 4, "k": 5000, "seed": 0, "split": "test", "subset_seed": None}
    a = _write(tmp_path / "cell" / "reproduce-eval-test-k5000-n4-seed0-best-step6.json",
               {**common, "checkpoint_step": 6, "nll": 115.0, "per_image_nll": [100.0, 110.0, 120.0, 130.0]})
    b = _write(tmp_path / "cell-cosine-10" / "reproduce-eval-test-k5000-n4-seed0-best-step10.json",
               {**common, "checkpoint_step": 10, "nll": 116.5, "per_image_nll": [101.0, 111.0, 123.0, 131.0]})
    done = _run(a, b)
    assert done.returncode == 0, done.stderr
    # differences 1, 1, 3, 1: mean 1.5, sample sd 1, half-width 1.96 / 2
    assert ("| `cell` best (step 6), L_5,000 | `cell-cosine-10` best (step 10), L_5,000 | 4 | 115.00 | 116.50 | "
            "+1.50 [+0.52, +2.48] |") in done.stdout


def test_results_of_different_images_are_refused(tmp_path: Path) -> None:
    common = {"run": "r", "checkpoint": "best", "checkpoint_step": 1, "k": 100, "nll": 1.0, "n_images": 2,
              "per_image_nll": [1.0, 1.0], "data": "embedded", "subset_seed": None}
    a = _write(tmp_path / "a.json", {**common, "split": "valid"})
    b = _write(tmp_path / "b.json", {**common, "split": "test"})
    done = _run(a, b)
    assert done.returncode != 0
    assert "the two results scored different images: split is 'valid' and 'test'" in done.stderr
