"""The built wheel works without the source tree (issue 12.3): ``python -m build`` makes an sdist and a wheel
with no warnings, and the wheel, installed into an empty folder and run from elsewhere, prints its version,
loads the embedded data and runs ``concretelab demo --skip-training``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("build")


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_wheel_installed_outside_the_source_tree(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)], cwd=tmp_path,
                 env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    log = (built.stdout + built.stderr).lower()
    assert "warning" not in log, [line for line in log.splitlines() if "warning" in line]
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1

    target = tmp_path / "site"
    installed = _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                      str(wheels[0])], cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**env, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    where = _run([sys.executable, "-c", "import concretelab; print(concretelab.__file__)"], cwd=elsewhere, env=env)
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout  # the wheel, not the source tree
    version = _run([sys.executable, "-m", "concretelab", "--version"], cwd=elsewhere, env=env)
    assert version.stdout.strip() == "concretelab 0.1.0"
    data = _run([sys.executable, "-c", "from concretelab.data import load_dataset; d = load_dataset('embedded'); "
                 "print(tuple(d.train.shape), tuple(d.test.shape))"], cwd=elsewhere, env=env)
    assert data.stdout.strip() == "(10000, 784) (1000, 784)", data.stderr[-2000:]
    demo = _run([sys.executable, "-m", "concretelab", "demo", "--skip-training", "--out", "demo"], cwd=elsewhere,
                env=env)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert (elsewhere / "demo" / "tour" / "simplex-density.png").stat().st_size > 1000
