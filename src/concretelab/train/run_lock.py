"""One writer per run folder: an exclusive ``fcntl.flock`` on ``RUN/.lock`` held for as long as a process writes
the folder (``train``, ``train --resume``, ``reproduce``).

The lock belongs to the open file, so the kernel releases it when its process ends in any way, ``kill -9``
included: a lock left by a dead process is taken over by the next one with no stale-file guesswork. The
holder writes its process id (and host name) into the file, so the refusal names it. Re-entrant within a
process (``reproduce`` holds it across training and evaluation; the trainer takes it again inside).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_NAME", "RunFolderBusyError", "lock_holder", "run_lock"]

LOCK_NAME = ".lock"

try:  # POSIX; elsewhere the lock is a no-op (documented)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

_HELD: dict[Path, tuple[int, int]] = {}  # resolved run folder -> (fd, depth) held by this process


class RunFolderBusyError(RuntimeError):
    """Another process holds the run folder's lock."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "an unknown process"


def lock_holder(folder: str | Path) -> str | None:
    """Who holds run folder ``folder``'s lock, as its lock file says, without taking the lock (a probe that took it,
    even for an instant, could make a run starting at that moment fail): the holder's line ("process PID on HOST")
    when that process is alive on this host, or runs on another host (which cannot be checked from here); None when
    the file is missing or empty (released) or names a process of this host that has ended (``kill -9`` leaves its
    line behind: the kernel released the lock, but nobody emptied the file)."""
    try:
        text = (Path(folder) / LOCK_NAME).read_text(encoding="utf-8").strip()
    except OSError:  # no lock file: nobody has held it
        return None
    if not text:
        return None
    words = text.split()  # "process PID on HOST", as run_lock writes it
    here = len(words) == 4 and words[0] == "process" and words[2] == "on" and words[3] == socket.gethostname()
    if here and words[1].isdigit():
        try:
            os.kill(int(words[1]), 0)
        except ProcessLookupError:  # ended: its line outlived it
            return None
        except PermissionError:  # alive, another user's
            pass
    return text


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of run folder ``folder`` (created if needed) for the block.

    Raises ``RunFolderBusyError`` at once, naming the holder's process id, when another process holds it.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _HELD:  # re-entered by the process that holds it
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth - 1)
        return
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunFolderBusyError(
                    f"run folder {str(folder)!r} is in use by {_holder(path)}; wait for it to finish (or stop it), "
                    "or choose another --out"
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
        _HELD[key] = (fd, 1)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # releases the flock
        if created and {p.name for p in folder.iterdir()} == {LOCK_NAME}:  # nothing else was written: leave no folder
            with contextlib.suppress(OSError):
                path.unlink()
                folder.rmdir()
