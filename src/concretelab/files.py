"""Atomic, durable file writes, the one implementation every module uses.

A file is written to a temporary file in the same folder, flushed and fsynced, given the permissions a plain
``open(path, "w")`` would give it (0666 minus the umask; ``mkstemp`` alone creates 0600, which teammates on a
shared cluster cannot read), then renamed over ``path`` with ``os.replace``, and the folder is fsynced. A
reader, or a run resumed after ``kill -9``, sees the old file or the complete new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "atomic_path",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "default_file_mode",
    "read_json_object",
    "save_figure",
]


def default_file_mode() -> int:
    """0666 minus the process umask: the mode ``open(path, "w")`` gives a new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory fds)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (``savefig``, ``torch.save``);
    on a normal exit it is fsynced, given the default mode and renamed to ``path``; on an error it is removed.
    The folder is created if needed. The temporary name keeps ``path``'s suffix (writers infer formats)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write(file)`` (a binary file object), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the folder is created if needed)."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json_object(path: str | Path) -> dict[str, Any] | None:
    """The JSON object stored at ``path``; None when the file is missing, unreadable, not JSON (a torn write of
    an older version) or not an object."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def save_figure(figure: Any, path: str | Path, **savefig_kwargs: Any) -> None:
    """``figure.savefig`` to ``path`` atomically (matplotlib infers the format from the suffix)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, **savefig_kwargs)
