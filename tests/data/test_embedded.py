"""The embedded subset: loads offline, is checksum-checked, and is evenly spaced images of the shared data."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from concretelab.data import embedded, load_dataset

COUNTS = {"train": 10_000, "valid": 1_000, "test": 1_000}


def test_embedded_is_the_default_and_has_the_documented_sizes():
    data = load_dataset()
    assert data.name == "embedded" and data.image_shape == (28, 28) and not data.dynamic_binarization
    for split, count in COUNTS.items():
        assert tuple(data.split(split).shape) == (count, 784)
    assert embedded.read_manifest()["counts"] == COUNTS


def test_embedded_files_are_small():
    folder = Path(embedded.__file__).parent / "embedded"
    assert sum(path.stat().st_size for path in folder.iterdir()) < 600_000


def test_embedded_matches_evenly_spaced_images_of_the_shared_data(shared_dataset):
    data = load_dataset("embedded")
    strides = embedded.read_manifest()["strides"]
    for split, count in COUNTS.items():
        expected = shared_dataset.split(split)[:: strides[split]][:count].numpy()
        assert np.array_equal(data.split(split).numpy(), expected), split


def test_damaged_embedded_data_is_detected(tmp_path, monkeypatch):
    original = embedded._resource
    with np.load(io.BytesIO(original(embedded.DATA_FILE).read_bytes())) as archive:
        packed = {name: archive[name].copy() for name in archive.files}
    packed["valid"][3, 7] ^= 0b100
    np.savez_compressed(tmp_path / embedded.DATA_FILE, **packed)
    (tmp_path / embedded.MANIFEST_FILE).write_bytes(original(embedded.MANIFEST_FILE).read_bytes())
    monkeypatch.setattr(embedded, "_resource", lambda name: tmp_path / name)
    with pytest.raises(ValueError, match=r"the embedded valid split is damaged: expected 1000 images with sha256"):
        load_dataset("embedded")
