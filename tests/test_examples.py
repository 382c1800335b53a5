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
    assert not any(tmp_path.iterdir()), f"--smoke wrote into the current folder: {sorted(tmp_path.iterdir())}"


# A site hook that makes a module unimportable, as on a machine without the extra installed.
_BLOCK = """
import sys
for name in {names!r}:
    sys.modules[name] = None  # `import name` now raises ImportError
"""


@pytest.mark.parametrize(("script", "blocked", "extra"), [
    ("pyro_mixture.py", ["pyro"], "pyro"),
    ("hard_concrete_l0.py", ["sklearn", "sklearn.datasets"], "examples"),
    ("subset_selection.py", ["sklearn", "sklearn.datasets"], "examples"),
])
def test_a_missing_extra_is_one_line_naming_its_install(tmp_path: Path, script: str, blocked: list[str],
                                                        extra: str) -> None:
    """Issue 30: without the extra, the script stops with one line naming ``pip install 'concretelab[extra]'``, not
    a bare ModuleNotFoundError."""
    (tmp_path / "sitecustomize.py").write_text(_BLOCK.format(names=blocked))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(EXAMPLES / script), "--smoke"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"{script} needs {blocked[-1]}: pip install 'concretelab[{extra}]'"]


def test_own_estimator_rejects_the_slip_and_matches_reinforce_loo(tmp_path: Path) -> None:
    """The example's bias test rejects the mean baseline that includes its own sample (its expected share of the
    gradient is (K - 1)/K = 0.75) and not the leave-one-out one, which draws what ``reinforce_loo`` draws."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLES / "own_estimator.py"), "--smoke"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {cells[1].strip(): cells[2:] for line in done.stdout.splitlines()
            if line.startswith("| ") and len(cells := line.split("|")) == 6}
    slip, loo = rows["mean baseline (includes itself)"], rows["mean baseline, leave one out"]
    assert float(slip[0]) < 1e-6 and float(loo[0]) > 1e-3  # the bias test's p-values
    share, half = (float(v) for v in slip[1].split("±"))
    assert abs(share - 0.75) < max(half, 0.01) * 2  # the slip's share of the exact gradient: (K - 1)/K
    assert "identical draws" in done.stdout
    assert not any(tmp_path.iterdir())
