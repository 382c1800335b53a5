"""Fixed random subsets: the recorded rule (SUBSET_RULE, saved beside every result on a subset so that a reader can
rebuild its images without this package) is what fixed_subset does, and the subset itself is pinned."""

from __future__ import annotations

import pytest
import torch

from concretelab.data import fixed_subset
from concretelab.data.subsets import SUBSET_RULE


@pytest.mark.parametrize(("total", "size", "seed"), [(10_000, 1_000, 0), (10_000, 50, 0), (1_000, 999, 3), (7, 1, 2)])
def test_the_recorded_rule_rebuilds_the_subset(total, size, seed) -> None:
    rebuilt = eval(SUBSET_RULE, {"torch": torch, "sorted": sorted}, {"N": total, "n": size, "subset_seed": seed})
    assert fixed_subset(total, size, seed).tolist() == [int(i) for i in rebuilt]


def test_the_subset_of_the_results_is_pinned() -> None:
    # the first of the 1,000 test images every -L_5000 of RESULTS.md and the leaderboard is computed on (a change of
    # torch's randperm would change them, and with them every number on a subset)
    assert fixed_subset(10_000, 1_000, 0)[:5].tolist() == [33, 35, 45, 57, 78]
    assert fixed_subset(10_000, 50, 0)[:5].tolist() == [137, 297, 337, 429, 684]


def test_all_images_or_a_bad_size() -> None:
    assert fixed_subset(10, None) is None and fixed_subset(10, 10) is None and fixed_subset(10, 11) is None
    with pytest.raises(ValueError, match="subset size must be >= 1, got 0"):
        fixed_subset(10, 0)
