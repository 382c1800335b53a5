"""Binarized MNIST: the fixed stochastic binarization of Larochelle & Murray (2011), 50k/10k/10k images.

The data set of Table 1 of Maddison, Mnih & Teh (2017). It is read from a folder of ``.amat`` text
files (``{train,valid,test}.amat[.gz]`` or ``binarized_mnist_{split}.amat[.gz]``) or from an ``.npz``
with uint8 arrays ``train``, ``valid``, ``test`` of shape ``(N, 784)``. Whenever a split is named as
one of this data set's splits and has its shape, its sha256 (of the uint8 array in C order) is
checked against ``ARRAY_SHA256``, and a mismatch raises ``ValueError``.

References
    [1] H. Larochelle, I. Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011.
    [2] R. Salakhutdinov, I. Murray, "On the Quantitative Analysis of Deep Belief Networks", ICML 2008.
    [3] C. J. Maddison, A. Mnih, Y. W. Teh, "The Concrete Distribution", ICLR 2017, Table 1.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from concretelab.data._files import cache_dir, sha256_of_array
from concretelab.data.amat import read_amat_file
from concretelab.data.dataset import SPLITS, Dataset

__all__ = [
    "ARRAY_SHA256",
    "NAME",
    "NUM_IMAGES",
    "NUM_PIXELS",
    "cache_file",
    "find_amat_files",
    "from_arrays",
    "read_amat",
    "read_npz",
    "verify_split",
]

logger = logging.getLogger(__name__)

NAME = "binarized-mnist"
NUM_PIXELS = 784
NUM_IMAGES: dict[str, int] = {"train": 50_000, "valid": 10_000, "test": 10_000}
# sha256 of each split as a uint8 array (C order, N x 784), from ../shared/data/binarized_mnist/README.md.
ARRAY_SHA256: dict[str, str] = {
    "train": "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a",
    "valid": "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e",
    "test": "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86",
}
_AMAT_NAMES = ("{}.amat", "{}.amat.gz", "binarized_mnist_{}.amat", "binarized_mnist_{}.amat.gz")


def cache_file() -> Path:
    """Where ``concretelab data fetch binarized-mnist`` stores the verified arrays (an ``.npz``)."""
    return cache_dir() / "binarized_mnist" / "binarized_mnist.npz"


def split_of(path: Path) -> str | None:
    """The split a file is named as (``train.amat.gz`` -> ``"train"``), or None."""
    name = path.name
    for suffix in (".gz", ".amat"):
        name = name.removesuffix(suffix)
    name = name.removeprefix("binarized_mnist_")
    return name if name in SPLITS else None


def verify_split(split: str, array: np.ndarray, *, source: str) -> bool:
    """Check ``array`` against the published checksum when it has the shape of binarized MNIST's ``split``.

    Returns True when the checksum was checked and matched, False when the shape differs (so the array
    does not claim to be the full split); raises ``ValueError`` naming ``source``, the expected and the
    found sha256 on a mismatch.
    """
    if split not in NUM_IMAGES:
        raise ValueError(f"verify_split: split must be one of {SPLITS}, got {split!r}")
    if array.shape != (NUM_IMAGES[split], NUM_PIXELS):
        return False
    found = sha256_of_array(np.asarray(array, dtype=np.uint8))
    if found != ARRAY_SHA256[split]:
        raise ValueError(
            f"{source}: checksum mismatch for the {split} split of binarized MNIST: expected sha256 "
            f"{ARRAY_SHA256[split]} of the uint8 array ({NUM_IMAGES[split]} x {NUM_PIXELS}, C order), found "
            f"{found}; the file is damaged or is not the fixed binarization of Larochelle & Murray (2011)"
        )
    return True


def read_amat(path: str | Path) -> np.ndarray:
    """Read one ``.amat``/``.amat.gz`` file into a ``(N, 784)`` uint8 array of 0/1.

    When the file is named as a split (``train``, ``valid``, ``test``, optionally prefixed
    ``binarized_mnist_``) and has that split's shape, its checksum is verified (``verify_split``).
    """
    path = Path(path)
    array = read_amat_file(path, width=NUM_PIXELS)
    split = split_of(path)
    if split is not None and verify_split(split, array, source=str(path)):
        logger.debug("%s: sha256 of the %s split verified", path, split)
    return array


def find_amat_files(folder: Path) -> dict[str, Path] | None:
    """The ``.amat[.gz]`` file of each split in ``folder``, or None when any split has none."""
    found = {}
    for split in SPLITS:
        candidates = [folder / pattern.format(split) for pattern in _AMAT_NAMES]
        existing = [path for path in candidates if path.is_file()]
        if not existing:
            return None
        found[split] = existing[0]
    return found


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays ``train``, ``valid``, ``test`` of an ``.npz``, checked to be ``(N, 784)`` 0/1 integers.

    Arrays with the full splits' shapes are checksum-verified (``verify_split``).
    """
    path = Path(path)
    if path.is_file() and not zipfile.is_zipfile(path):  # np.load would guess a pickle and say so
        with open(path, "rb") as handle:
            head = handle.read(6)
        kind = "a single .npy array" if head == b"\x93NUMPY" else "not a data file (an .npz is a zip archive)"
        raise ValueError(f"{path} is {kind}; expected an .npz with arrays train, valid, test, or a folder of "
                         "{train,valid,test}.amat[.gz] files")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"holds a single array of shape {getattr(loaded, 'shape', None)}")
        with loaded as archive:
            names = sorted(archive.files)
            arrays = {split: archive[split] for split in SPLITS if split in names}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as error:
        raise ValueError(f"{path}: not a readable .npz with arrays train, valid, test ({error})") from error
    missing = [split for split in SPLITS if split not in arrays]
    if missing:
        raise ValueError(
            f"{path}: the .npz lacks the arrays {missing}; expected uint8 arrays train, valid, test of "
            f"shape (N, {NUM_PIXELS}), found {names}"
        )
    for split, array in arrays.items():
        source = f"{path}[{split}]"
        if array.ndim != 2 or array.shape[1] != NUM_PIXELS or array.shape[0] == 0:
            raise ValueError(f"{source}: expected shape (N, {NUM_PIXELS}), found {array.shape}")
        if not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"{source}: expected uint8 values 0 or 1, found dtype {array.dtype}")
        if array.size and (array.min() < 0 or array.max() > 1):
            raise ValueError(f"{source}: expected values 0 or 1, found values in [{array.min()}, {array.max()}]")
        arrays[split] = np.ascontiguousarray(array, dtype=np.uint8)
        verify_split(split, arrays[split], source=source)
    return arrays


def from_arrays(arrays: dict[str, np.ndarray], *, source: str, name: str | None = None) -> Dataset:
    """A ``Dataset`` of binary 28 x 28 images from uint8 arrays keyed by split.

    Named ``binarized-mnist`` when every split has the full data set's shape (and so was verified by
    the reader), else ``name`` or the source's file name.
    """
    full = all(arrays[split].shape == (NUM_IMAGES[split], NUM_PIXELS) for split in SPLITS)
    tensors = {split: torch.from_numpy(_writable(arrays[split])) for split in SPLITS}
    return Dataset(
        name=NAME if full else (name or Path(source).name),
        image_shape=(28, 28),
        dynamic_binarization=False,
        source=source,
        **tensors,
    )


def load_folder(folder: Path) -> Dataset:
    """Binarized MNIST from a folder holding ``{train,valid,test}.amat[.gz]``."""
    files = find_amat_files(folder)
    if files is None:
        raise FileNotFoundError(f"{folder}: no {{train,valid,test}}.amat[.gz] files")
    arrays = {split: read_amat(path) for split, path in files.items()}
    return from_arrays(arrays, source=str(folder))


def load_npz(path: Path, *, name: str | None = None) -> Dataset:
    """Binarized MNIST (or a subset of the same format) from an ``.npz`` with ``train``, ``valid``, ``test``."""
    return from_arrays(read_npz(path), source=str(path), name=name)


def _writable(array: np.ndarray) -> np.ndarray:
    return array if array.flags.writeable and array.flags.c_contiguous else np.array(array, order="C")
