"""Estimator tests use tiny tensors: run them on one intra-op thread (restored after each test).

On a loaded 2-core machine torch's default of one thread per core makes these small autograd calls
tens of times slower (threads spin against each other); one thread is also what a pytest-xdist worker
should use. The setting is restored after each test, so other test directories are unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
