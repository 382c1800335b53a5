"""One writer per run folder (issue 10.3): a second train/resume/reproduce on a folder in use fails at once,
naming the holder's process id; the lock of a killed process is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from concretelab.reproduce.cells import cell_by_name
from concretelab.reproduce.runner import ReproduceOptions, cell_config, run_cells
from concretelab.train import train
from concretelab.train.run_lock import LOCK_NAME, RunFolderBusyError, run_lock

from ._helpers import REPO, small_config

_MAIN = "import sys; from concretelab.cli import main; sys.exit(main())"


def _cli(out: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-c", _MAIN, "train", "--model", "8H-784V", "--steps", str(steps), "--batch-size", "16",
            "--eval-every", "0", "--checkpoint-every", "100000", "--no-progress", "--threads", "1",
            "--out", str(out), *extra]


def _start_holder(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(_cli(out, 10_000_000), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until it holds the lock and has written its config
        lock = out / LOCK_NAME
        if lock.is_file() and f"process {proc.pid} " in lock.read_text() and (out / "config.toml").is_file():
            return proc
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the first training process never took the lock")


def test_second_writer_fails_at_once_naming_the_holder(tmp_path) -> None:
    out = tmp_path / "run"
    holder = _start_holder(out)
    try:
        config_before = (out / "config.toml").read_bytes()
        for extra in ((), ("--resume",)):
            started = time.monotonic()
            second = subprocess.run(_cli(out, 50, *extra), cwd=REPO, capture_output=True, text=True, timeout=60)
            assert second.returncode == 1, second.stderr
            assert f"is in use by process {holder.pid} " in second.stderr
            assert time.monotonic() - started < 30  # at once: no training happened
        assert (out / "config.toml").read_bytes() == config_before  # the holder's files are untouched
        with pytest.raises(RunFolderBusyError, match=f"process {holder.pid} "):
            train(small_config(out, steps=3), resume=True)
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_process_is_taken_over(tmp_path) -> None:
    out = tmp_path / "run"
    holder = _start_holder(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert f"process {holder.pid} " in (out / LOCK_NAME).read_text()  # the stale record is still there
    # nothing was checkpointed yet (checkpoint every 100000 steps): resume starts afresh, under its own lock
    result = train(small_config(out, steps=3), resume=True)
    assert result.step == 3


def test_reproduce_leaves_a_busy_cell_alone(tmp_path) -> None:
    cell = cell_by_name("200H-784V-m1-relaxed")
    options = ReproduceOptions(configs=REPO / "configs" / "table1", out=tmp_path / "runs",
                               results=tmp_path / "results", steps=2, k=2, num_images=2, data="embedded",
                               recipe="paper")
    with run_lock(Path(cell_config(cell, options).out)):  # held here; a child process plays the second writer
        code = (
            "import sys\nfrom pathlib import Path\nfrom concretelab.reproduce.cells import cell_by_name\n"
            "from concretelab.reproduce.runner import ReproduceOptions, run_cells\n"
            f"o = ReproduceOptions(configs=Path({str(options.configs)!r}), out=Path({str(options.out)!r}), "
            f"results=Path({str(options.results)!r}), steps=2, k=2, num_images=2, data='embedded', recipe='paper')\n"
            "s = run_cells([cell_by_name('200H-784V-m1-relaxed')], o, command='test', commit='test')\n"
            "print(s['200H-784V-m1-relaxed'].state, s['200H-784V-m1-relaxed'].detail)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("busy") and f"process {os.getpid()} " in proc.stdout
    assert not (options.results / f"{cell.name}.json").exists()  # no 'not run' record for a busy cell
    states = run_cells([cell], options, command="test", commit="test")  # free now: it runs
    assert states[cell.name].state == "done"


def test_reentrant_and_no_folder_left_by_a_refused_run(tmp_path) -> None:
    out = tmp_path / "run"
    with run_lock(out), run_lock(out):
        assert (out / LOCK_NAME).is_file()
    assert not out.exists()  # nothing but the lock was written: the folder is removed again
    with pytest.raises(ValueError, match="unknown objective"):
        train(small_config(out, objective="nope"))
    assert not out.exists()


def test_lock_holder_names_a_live_holder_and_forgets_a_dead_one(tmp_path) -> None:
    """``lock_holder`` reads the lock file without taking the lock: the holder while it lives, None once it has
    ended (a kill -9 leaves its line in the file), when the file is empty, or when there is none."""
    import socket

    from concretelab.train.run_lock import lock_holder

    assert lock_holder(tmp_path / "missing") is None
    with run_lock(tmp_path):
        assert lock_holder(tmp_path) == f"process {os.getpid()} on {socket.gethostname()}"
    assert lock_holder(tmp_path) is None  # released: the file is emptied
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    (tmp_path / LOCK_NAME).write_text(f"process {ended.stdout.strip()} on {socket.gethostname()}\n")
    assert lock_holder(tmp_path) is None  # a dead process's line
    (tmp_path / LOCK_NAME).write_text("process 1 on another-host\n")
    assert lock_holder(tmp_path) == "process 1 on another-host"  # not checkable from here: reported
