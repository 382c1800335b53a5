"""What the example scripts share besides data: a clear message when an optional extra is missing, and where a
``--smoke`` run puts its figure (a temporary folder, never the current one)."""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or stop with one line naming the ``pip install 'concretelab[extra]'`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        script = Path(sys.argv[0]).name or "this example"
        raise SystemExit(f"{script} needs {module}: pip install 'concretelab[{extra}]'") from None


def figure_path(out: Path | None, smoke: bool, name: str) -> Path:
    """``out`` if given; else, for a ``--smoke`` run, ``name`` in a temporary folder (smoke runs leave nothing in
    the current folder); else ``name`` in the current folder."""
    if out is not None:
        return out
    if smoke:
        folder = Path(tempfile.gettempdir()) / "concretelab-examples"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name
    return Path(name)
