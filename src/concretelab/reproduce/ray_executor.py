"""``reproduce table1 --executor ray``: cells as Ray tasks, on an existing Ray cluster (``--address``) or on a
local one started for the call.

Each task is one cell (its ``--seeds`` trained as replicas inside it) and runs the same worker as ``--jobs``, the
command ``concretelab reproduce table1 --cells CELL ...`` in a child process with one thread: it takes the run
folder's lock, resumes from the run folder, trains, evaluates and writes the cell's result. So what holds for a
serial run holds on a cluster, provided that

- every node has this package and its dependencies installed (the same version: a result names its commit), and
- the run folders (``--out``), the results (``--results``), the configs and the data are paths every node sees
  (a shared file system that supports ``flock``, which the run-folder lock uses). Paths are made absolute before
  they are sent.

A task asks Ray for one CPU per cell. Interrupting the driver (Ctrl-C) cancels the tasks: a running worker gets
SIGTERM, saves its checkpoint and exits, and the next call resumes it. Each cell's output goes to
``OUT/{cell}.log``, as with ``--jobs``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from concretelab.reproduce.cells import Cell

__all__ = ["INSTALL_HINT", "run_on_ray"]

INSTALL_HINT = "pip install 'concretelab[ray]'"


def _require_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ValueError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from error
    return ray


def _run_worker(cell: str, argv: list[str], log_path: str, cwd: str, program: tuple[str, ...]) -> int:
    """One cell's worker process (the body of the Ray task); its exit status."""
    command = [sys.executable, "-m", "concretelab", *program, "--cells", cell, *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        here = cwd if Path(cwd).is_dir() else None  # the driver's folder, where this node has it (for git)
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=here)
        try:
            return proc.wait()
        except BaseException:  # the task was cancelled: the worker saves its checkpoint and exits
            proc.terminate()
            proc.wait()
            raise


def run_on_ray(cells: Sequence[Cell | Any], *, worker_argv: list[str], out: Path, address: str | None = None,
               local_cpus: int | None = None, program: tuple[str, ...] = ("reproduce", "table1")) -> int:
    """Run ``cells`` as Ray tasks (one CPU each) and wait for them; 0, or the first non-zero worker status.

    ``address``: an existing cluster's (``ray://host:10001`` or ``host:6379``; None starts a local Ray with
    ``local_cpus`` CPUs, all of this machine's by default, and stops it at the end). ``worker_argv``: the
    worker's flags after ``--cells CELL``, with absolute paths; ``program``: the command the worker runs
    (``reproduce table1``, or ``lab leaderboard`` for the leaderboard's cells), which takes ``--cells``."""
    ray = _require_ray()
    started = not ray.is_initialized()
    if started:
        if address is None:
            ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    task = ray.remote(num_cpus=1, max_retries=0)(_run_worker)
    cwd = str(Path.cwd())
    futures = {cell.name: task.remote(cell.name, worker_argv, str(out / f"{cell.name}.log"), cwd, tuple(program))
               for cell in cells}
    try:
        codes = dict(zip(futures, ray.get(list(futures.values())), strict=True))
    except BaseException:
        for future in futures.values():
            ray.cancel(future)
        raise
    finally:
        if started:
            ray.shutdown()
    failed = {name: code for name, code in codes.items() if code != 0}
    for name, code in failed.items():
        print(f"{name}: exit {code}; see {out / f'{name}.log'}", file=sys.stderr)
    return next(iter(failed.values()), 0)
