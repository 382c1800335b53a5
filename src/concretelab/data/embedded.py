"""The embedded default dataset: evenly spaced images of each binarized MNIST split, shipped in the package.

``embedded/binarized_mnist_subset.npz`` holds, for each split, ``N`` evenly spaced images (every
``stride``-th) of binarized MNIST (10,000 train, 1,000 valid, 1,000 test) packed eight pixels to a byte along each image
(``numpy.packbits(images, axis=1)``, 98 bytes an image) in a compressed ``.npz``. ``manifest.json``
beside it records the counts and the sha256 of each unpacked ``(N, 784)`` uint8 array, checked at
every load. ``scripts/make_embedded_subset.py`` regenerates both from the full data set.
"""

from __future__ import annotations

import io
import json
from importlib import resources
from typing import Any

import numpy as np
import torch

from concretelab.data._files import sha256_of_array
from concretelab.data.dataset import SPLITS, Dataset

__all__ = ["DATA_FILE", "MANIFEST_FILE", "NAME", "load_embedded", "read_manifest"]

NAME = "embedded"
DATA_FILE = "binarized_mnist_subset.npz"
MANIFEST_FILE = "manifest.json"
_NUM_PIXELS = 784


def _resource(name: str) -> resources.abc.Traversable:
    return resources.files("concretelab.data").joinpath("embedded", name)


def read_manifest() -> dict[str, Any]:
    """The manifest of the embedded subset: ``counts`` and ``sha256`` per split, and its provenance."""
    return json.loads(_resource(MANIFEST_FILE).read_text(encoding="utf-8"))


def load_embedded() -> Dataset:
    """The embedded subset of binarized MNIST as a ``Dataset`` named ``embedded`` (no network, no cache).

    Raises ``ValueError`` when an unpacked array's sha256 differs from the manifest (a damaged install).
    """
    manifest = read_manifest()
    resource = _resource(DATA_FILE)
    with np.load(io.BytesIO(resource.read_bytes()), allow_pickle=False) as archive:
        packed = {split: archive[split] for split in SPLITS}
    tensors = {}
    for split in SPLITS:
        images = np.unpackbits(packed[split], axis=1, count=_NUM_PIXELS)  # (N, 784) uint8 0/1
        expected_count = manifest["counts"][split]
        found = sha256_of_array(images)
        if images.shape[0] != expected_count or found != manifest["sha256"][split]:
            raise ValueError(
                f"{resource}: the embedded {split} split is damaged: expected {expected_count} images with sha256 "
                f"{manifest['sha256'][split]}, found {images.shape[0]} with sha256 {found}; reinstall concretelab "
                "or regenerate it with scripts/make_embedded_subset.py"
            )
        tensors[split] = torch.from_numpy(images)
    return Dataset(name=NAME, image_shape=(28, 28), dynamic_binarization=False, source=NAME, **tensors)
