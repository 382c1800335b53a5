"""Seeds derived from a run's seed, so every random draw of a run is a fixed function of where it happens."""

from __future__ import annotations

import hashlib

__all__ = ["derive_seed"]


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that is a fixed function of ``parts`` (SHA-256 of their text), the same on every platform.

    The trainer seeds the sampling noise of step ``t``, shard ``s`` with ``derive_seed(seed, t, s)``, so
    the noise needs no saved state and a shard draws the same noise in whichever process runs it.
    """
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
