"""Fixtures of the data tests: an isolated cache folder for every test and the shared binarized MNIST."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._helpers import SHARED_ABSENT, SHARED_DIR, shared_available


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own XDG cache, so nothing touches the user's real cache."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "concretelab"


@pytest.fixture(scope="session")
def shared_dataset():
    """The full shared binarized MNIST, loaded once per test session (skipped when absent)."""
    if not shared_available():
        pytest.skip(SHARED_ABSENT)
    from concretelab.data import load_dataset

    return load_dataset(SHARED_DIR)
