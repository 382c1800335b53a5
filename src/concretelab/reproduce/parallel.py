"""``reproduce table1 --jobs N``: N cells side by side, each in its own process with one thread, so the cores
stay busy, with a progress bar per running cell (its step, read from the run folder's metrics) and one log per
cell in ``OUT/{cell}.log``. Each worker is ``concretelab reproduce table1 --cells CELL ...``: it takes the run
folder's lock, resumes, trains, evaluates and writes the cell's result, exactly as a serial run would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from concretelab.reproduce.cells import Cell
from concretelab.reproduce.runner import ReproduceOptions, cell_config
from concretelab.train.replicas import replica_folder

__all__ = ["run_parallel"]

_POLL_SECONDS = 2.0


def _last_step(metrics: Path) -> int:
    """The step of the last complete row of a metrics file (read from its end), 0 when there is none."""
    try:
        with open(metrics, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def run_parallel(cells: list[Cell], options: ReproduceOptions, *, worker_argv: list[str], jobs: int) -> int:
    """Run ``cells`` ``jobs`` at a time as worker processes; returns 0, or the first non-zero worker status."""
    options.out.mkdir(parents=True, exist_ok=True)
    configs = {cell.name: cell_config(cell, options) for cell in cells}
    steps = {name: config.steps for name, config in configs.items()}
    # the rows a cell's bar follows: its run folder's, or with --seeds its first replica's
    metrics = {name: (replica_folder(config.out, config.seed_list[0]) if config.seeds else Path(config.out))
               / "metrics.jsonl" for name, config in configs.items()}
    bars: dict[str, tqdm] = {}
    lock = threading.Lock()
    codes: dict[str, int] = {}
    slots = list(range(jobs))

    def work(cell: Cell) -> None:
        with lock:
            slot = slots.pop(0)
            bars[cell.name] = tqdm(total=steps[cell.name], desc=cell.name, unit="step", position=slot, leave=True,
                                   dynamic_ncols=True)
        command = [sys.executable, "-m", "concretelab", "reproduce", "table1", "--cells", cell.name, *worker_argv]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        with open(options.out / f"{cell.name}.log", "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                while proc.poll() is None:
                    time.sleep(_POLL_SECONDS)
                    step = _last_step(metrics[cell.name])
                    with lock:
                        bar = bars[cell.name]
                        bar.n = min(step, bar.total)
                        bar.refresh()
            except BaseException:
                proc.terminate()  # the worker saves a checkpoint and exits; the next run resumes it
                proc.wait()
                raise
        with lock:
            codes[cell.name] = proc.returncode
            bar = bars[cell.name]
            bar.set_postfix_str("done" if proc.returncode == 0 else f"exit {proc.returncode}, see its log")
            bar.close()
            slots.append(slot)
            slots.sort()

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(work, cells))
    failed = {name: code for name, code in codes.items() if code != 0}
    for name, code in failed.items():
        print(f"{name}: exit {code}; see {options.out / f'{name}.log'}", file=sys.stderr)
    return next(iter(failed.values()), 0)
