"""Seeds derived from a run's seed: re-exported from ``concretelab.seeding``, the one implementation."""

from __future__ import annotations

from concretelab.seeding import derive_seed

__all__ = ["derive_seed"]
