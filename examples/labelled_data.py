"""Labelled images for the classification examples, offline: scikit-learn's bundled 8 x 8 digits (``--smoke``)
or Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (IDX files in /usr/share/datasets/fashion-mnist).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def labelled_images(smoke: bool, folder: Path = FASHION_MNIST) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, test_x, test_y, image_shape): pixels in [0, 1], flattened, and integer labels."""
    if smoke:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
        y = torch.tensor(digits.target)
        return x[:1500], y[:1500], x[1500:], y[1500:], (8, 8)
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    files = [next(iter(sorted(folder.glob(name + "*"))), None) for name in names]
    if None in files:
        raise SystemExit(
            f"Fashion-MNIST not found in {folder}. Install it offline-capable with "
            "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass --data FOLDER with the four "
            "IDX files; `--smoke` runs on scikit-learn's bundled digits instead."
        )
    arrays = [_idx(path) for path in files]  # type: ignore[arg-type]
    to_x = lambda a: torch.tensor(a.reshape(a.shape[0], -1) / 255.0, dtype=torch.float32)  # noqa: E731
    return to_x(arrays[0]), torch.tensor(arrays[1]).long(), to_x(arrays[2]), torch.tensor(arrays[3]).long(), (28, 28)
