"""concretelab/seeding.py: derived seeds are fixed functions of their parts, distinct for distinct parts, and
within torch's 63-bit seed range."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from concretelab.seeding import derive_seed


def test_derived_seeds_are_fixed_distinct_and_in_range() -> None:
    seeds = {derive_seed(seed, step, shard) for seed in range(3) for step in range(50) for shard in range(4)}
    assert len(seeds) == 3 * 50 * 4 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(0, 1, 2) != derive_seed(0, 2, 1) and derive_seed(0, "validation") != derive_seed(0, "samples")
    # the documented construction: the first 8 bytes of SHA-256 of "part:part:...", little-endian, shifted right
    want = int.from_bytes(hashlib.sha256(b"7:123:0").digest()[:8], "little") >> 1
    assert derive_seed(7, 123, 0) == want


def test_derived_seeds_do_not_depend_on_the_process() -> None:
    """Python's hash() is salted per process; derived seeds must not be."""
    code = "from concretelab.seeding import derive_seed; print(derive_seed(3, 'global', 1.5))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert runs == {f"{derive_seed(3, 'global', 1.5)}\n"}


def test_a_part_with_the_separator_is_refused() -> None:
    # "0:1:2" would be the text of both (0, "1:2") and (0, 1, 2): one seed for two different draws
    with pytest.raises(ValueError, match="part '1:2' contains ':'"):
        derive_seed(0, "1:2")
