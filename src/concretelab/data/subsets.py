"""Fixed random subsets of a split, the same for every run, checkpoint and evaluation seed.

A subset is drawn at random rather than taken from the front, because the splits need not be in random order. The
standard binarized MNIST test set is not: its blocks of 1,000 images have 133, 60, 110, 114, 99, 104, 112, 90, 119
and 99 pixels on, on average (104 over the whole set), as digits grouped by class would, so its first N images are
not a sample of it.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["SUBSET_RULE", "SUBSET_SEED", "fixed_subset"]

SUBSET_SEED = 0  # the one subset of N images that evaluate --num-images and train --eval-images score
# recorded beside a result computed on a subset, so a reader can rebuild the images without this package
SUBSET_RULE = "sorted(torch.randperm(N, generator=torch.Generator().manual_seed(subset_seed))[:n])"


def fixed_subset(total: int, size: int | None, seed: int = 0) -> Tensor | None:
    """Sorted indices of a fixed random subset of ``size`` of ``total`` images (``SUBSET_RULE``), or None
    for all of them (``size`` None or at least ``total``)."""
    if size is None or size >= total:
        return None
    if size < 1:
        raise ValueError(f"subset size must be >= 1, got {size}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:size].sort().values
