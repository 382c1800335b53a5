"""A timing helper shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, which puts this folder
on the import path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def cpu_seconds(work: Callable[[], object], inner: int) -> float:
    """CPU seconds of this process per call of ``work``, over ``inner`` calls after one warm-up call (allocator,
    first-call costs)."""
    work()
    start = time.process_time()
    for _ in range(inner):
        work()
    return (time.process_time() - start) / inner
