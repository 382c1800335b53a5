"""Metrics of a run: one JSON object per line in ``metrics.jsonl``, and a CSV export.

Training rows hold ``step`` and ``loss`` (the negative training bound in nats, averaged over the steps
since the previous row) with the temperatures, learning rate, elapsed time and steps/s; validation rows
hold ``step`` and ``valid_nll`` (−L_k in nats on the validation images) with ``valid_k`` and
``valid_images``. Rows are told apart by their keys.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from concretelab.train.io import atomic_write_text

logger = logging.getLogger(__name__)

__all__ = ["MetricsWriter", "export_csv", "last_steps_per_s", "read_metrics", "time_left", "truncate_metrics"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no nan/inf; keep the row readable
    return value


class MetricsWriter:
    """Appends rows to a JSONL file, flushing each one so ``kill -9`` loses at most the row being written."""

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._handle = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        if self._handle is None:
            return
        self._handle.write(json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All complete rows of a JSONL file (a torn last line, left by ``kill -9``, is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def truncate_metrics(path: str | Path, last_step: int) -> None:
    """Keep only rows with ``step <= last_step`` (used on resume, so replayed steps are not logged twice)."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = read_metrics(path)
    torn = len([line for line in lines if line.strip()]) - len(rows)
    if torn:
        logger.warning("%s: dropped %d incomplete line(s) (a row being written when the run was killed); the rows "
                       "of steps after %d are written again as the run resumes", path, torn, last_step)
    rows = [row for row in rows if int(row.get("step", 0)) <= last_step]
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def export_csv(rows: Iterable[dict[str, Any]], path: str | Path) -> None:
    """Write rows as CSV with the union of their keys as columns (``step`` first), atomically."""
    rows = list(rows)
    columns: list[str] = ["step"]
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def last_steps_per_s(run: str | Path, *, tail_bytes: int = 16384) -> float | None:
    """The steps/s of the last training row of a run's metrics (its first replica's, for a run of replicas), read
    from the file's last ``tail_bytes``; None when there is none yet."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        replicas = sorted((p for p in Path(run).glob("seed-*/metrics.jsonl") if p.parent.name[5:].isdigit()),
                          key=lambda p: int(p.parent.name[5:]))
        if not replicas:
            return None
        path = replicas[0]
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - tail_bytes))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):  # a cut first line or a torn last one does not parse, and is passed over
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        rate = row.get("steps_per_s") if isinstance(row, dict) else None
        if isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0:
            return float(rate)
    return None


def time_left(steps: int, rate: float | None) -> str:
    """", about N min of training left at S steps/s" (hours from 2 h on) for ``steps`` still to run at ``rate``
    steps/s; empty when the rate is unknown."""
    if not rate:
        return ""
    seconds = steps / rate
    left = f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
    return f", about {left} of training left at {rate:.3g} steps/s"
