"""The shared binarized MNIST: shapes, pixel means and checksums as its README states; damaged copies fail."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from concretelab.data import SPLITS, load_dataset
from concretelab.data._files import sha256_of_array
from concretelab.data.binarized_mnist import ARRAY_SHA256, NUM_IMAGES, read_amat

from ._helpers import SHARED_ABSENT, SHARED_DIR, write_amat

README_MEANS = {"train": 0.1306, "valid": 0.1311, "test": 0.1325}


def test_shapes_means_and_name(shared_dataset):
    assert shared_dataset.name == "binarized-mnist"
    assert shared_dataset.image_shape == (28, 28) and not shared_dataset.dynamic_binarization
    for split in SPLITS:
        images = shared_dataset.split(split)
        assert images.dtype.is_floating_point is False and tuple(images.shape) == (NUM_IMAGES[split], 784)
        assert round(float(images.numpy().mean(dtype=np.float64)), 4) == README_MEANS[split]
    assert tuple(shared_dataset.train_mean.shape) == (784,)
    assert round(float(shared_dataset.train_mean.double().mean()), 4) == README_MEANS["train"]


def test_checksums_match_the_readme(shared_dataset):
    readme = (SHARED_DIR / "README.md").read_text()
    for split in SPLITS:
        row = re.search(rf"^\| {split}\s*\| ([0-9a-f]{{64}}) \| ([0-9a-f]{{64}}) \|", readme, re.MULTILINE)
        assert row is not None, f"no checksum row for {split} in the README"
        assert ARRAY_SHA256[split] == row.group(2)
        assert sha256_of_array(shared_dataset.split(split).numpy()) == row.group(2)


def test_one_flipped_pixel_is_a_checksum_mismatch(shared_dataset, tmp_path):
    images = shared_dataset.valid.numpy().copy()
    images[1234, 400] ^= 1
    path = write_amat(tmp_path / "valid.amat", images)
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(path))}: checksum mismatch .* expected sha256 "
        rf"{ARRAY_SHA256['valid']} .* found [0-9a-f]{{64}}",
    ):
        read_amat(path)


def test_truncated_copy_of_the_test_split_names_the_line(tmp_path):
    if not (SHARED_DIR / "test.amat.gz").is_file():
        pytest.skip(SHARED_ABSENT)
    text = gzip.decompress((SHARED_DIR / "test.amat.gz").read_bytes())
    path = tmp_path / "test.amat"
    path.write_bytes(text[: 99 * 1568 + 1000])  # the first 99 lines and part of the 100th
    with pytest.raises(ValueError, match=r"line 100: found 500 values, expected 784 \(the file looks truncated\)"):
        read_amat(path)


def test_folder_missing_a_split_is_not_taken_for_binarized_mnist(tmp_path):
    for split in ("train", "valid"):
        (tmp_path / f"{split}.amat").write_bytes(b"0 1\n")
    with pytest.raises(FileNotFoundError, match="no recognised data files in this folder"):
        load_dataset(tmp_path)
