"""Seeds derived from a run's seed, so every random draw of a run is a fixed function of where it happens."""

from __future__ import annotations

import hashlib

__all__ = ["derive_seed"]


def derive_seed(*parts: int | float | str) -> int:
    """A 63-bit seed that is a fixed function of ``parts`` (SHA-256 of their text joined by ":"), the same on every
    platform.

    The trainer seeds the sampling noise of step ``t``, shard ``s`` with ``derive_seed(seed, t, s)``, so
    the noise needs no saved state and a shard draws the same noise in whichever process runs it. A part may not
    contain ":", which would make two lists of parts one text (``(0, "1:2")`` and ``(0, 1, 2)``).
    """
    texts = [str(part) for part in parts]
    for part, text in zip(parts, texts, strict=True):
        if ":" in text:
            raise ValueError(f"derive_seed: part {part!r} contains ':', the separator of the parts; expected "
                             "parts without it, so that different parts give different seeds")
    digest = hashlib.sha256(":".join(texts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
