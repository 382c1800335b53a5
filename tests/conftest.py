"""Shared test fixtures, generic across the test tree.

* ``generator``: a seeded ``torch.Generator`` factory, so tests never touch the global RNG.
* an autouse guard: no test may switch torch's global default dtype (house style); a test that does
  fails here, and the default is restored so that later tests are not affected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch


@pytest.fixture
def generator() -> Callable[[int], torch.Generator]:
    """``generator(seed)``: a fresh CPU ``torch.Generator`` seeded with ``seed``."""

    def make(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    return make


@pytest.fixture(autouse=True)
def _default_dtype_unchanged() -> Iterator[None]:
    before = torch.get_default_dtype()
    yield
    after = torch.get_default_dtype()
    if after != before:
        torch.set_default_dtype(before)
        pytest.fail(f"the test switched torch's global default dtype from {before} to {after}")
