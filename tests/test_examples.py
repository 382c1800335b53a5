"""Every example's ``--smoke`` mode runs offline in a few seconds and prints its result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")  # the classification examples' --smoke data (scikit-learn's bundled digits)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(("script", "expected"), [
    ("own_model_vimco.py", "test -L_50 on 100 images"),
    ("categorical_vae.py", "| straight-through |"),
    ("hard_concrete_l0.py", "| lam | test error | weights kept |"),
    ("subset_selection.py", "| pixels kept (k) | test accuracy |"),
    ("pyro_mixture.py", "assignment accuracy"),
])
def test_smoke(tmp_path: Path, script: str, expected: str) -> None:
    if script.startswith("pyro"):
        pytest.importorskip("pyro")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLES / script), "--smoke"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout
