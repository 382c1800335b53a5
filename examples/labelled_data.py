"""Labelled images for the classification examples, offline: scikit-learn's bundled 8 x 8 digits (``--smoke``)
or Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (IDX files in /usr/share/datasets/fashion-mnist).
"""

from __future__ import annotations

from pathlib import Path

import torch

from _example_support import require
from concretelab.data import load_labelled_idx_folder

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def labelled_images(smoke: bool, folder: Path = FASHION_MNIST) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, test_x, test_y, image_shape): pixels in [0, 1], flattened, and integer labels."""
    if smoke:
        datasets = require("sklearn.datasets", "examples")
        digits = datasets.load_digits()
        x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
        y = torch.tensor(digits.target)
        return x[:1500], y[:1500], x[1500:], y[1500:], (8, 8)
    try:
        data = load_labelled_idx_folder(folder)
    except FileNotFoundError as error:
        raise SystemExit(
            f"{error}.\nFashion-MNIST is not installed: `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu) "
            "puts it in /usr/share/datasets/fashion-mnist, or pass --data FOLDER with the four IDX files; "
            "`--smoke` runs on scikit-learn's bundled digits instead."
        ) from None

    def flat(images):  # (N, H, W) uint8 -> (N, H*W) float32 in [0, 1]
        return torch.from_numpy(images.reshape(images.shape[0], -1).copy()).float() / 255

    labels = lambda a: torch.from_numpy(a.astype("int64"))  # noqa: E731
    shape = tuple(data.train_images.shape[1:])
    return flat(data.train_images), labels(data.train_labels), flat(data.test_images), labels(data.test_labels), shape
