"""MNIST and Fashion-MNIST from IDX files, dynamically binarized.

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number ``0, 0, type,
ndim`` (type ``0x08`` = unsigned byte), ``ndim`` big-endian uint32 sizes, then the values in C order.
A folder holds ``train-images-idx3-ubyte`` and ``t10k-images-idx3-ubyte`` (each optionally ``.gz``; the
``train-images.idx3-ubyte`` spelling is accepted too); Fashion-MNIST uses the same names.

Splits (the protocol of Burda et al. 2016 and later discrete-latent papers):

- ``train``: all training images but the last ``num_valid`` (10,000), kept as grey levels 0..255 and
  re-binarized for every batch by the trainer (``Dataset.dynamic_binarization`` is True);
- ``valid``: the last ``num_valid`` training images, binarized once with seed ``VALID_SEED``;
- ``test``: the ``t10k`` images, binarized once with seed ``TEST_SEED``.

A fixed binarization sets pixel ``j`` of image ``i`` to ``1`` iff ``U[i, j] < grey[i, j] / 255`` with
``U = torch.rand(N, H*W, generator=torch.Generator().manual_seed(seed))`` (``binarize``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from concretelab.data._files import read_maybe_gzip
from concretelab.data.dataset import Dataset, binarize

__all__ = [
    "NUM_VALID",
    "TEST_SEED",
    "VALID_SEED",
    "LabelledImages",
    "find_idx_files",
    "load_idx_folder",
    "load_labelled_idx_folder",
    "parse_idx_images",
    "parse_idx_labels",
]

NUM_VALID = 10_000
VALID_SEED = 0  # seed of the fixed binarization of the validation images
TEST_SEED = 1  # seed of the fixed binarization of the test images
_UNSIGNED_BYTE = 0x08
_TRAIN_NAMES = ("train-images-idx3-ubyte", "train-images.idx3-ubyte")
_TEST_NAMES = ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte")
_TRAIN_LABEL_NAMES = ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte")
_TEST_LABEL_NAMES = ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")
_DIMENSIONS = {1: "1 dimension: items", 3: "3 dimensions: images x rows x columns"}


def _parse_idx(data: bytes, ndim: int, what: str, unit: str, expected_magic: str, source: str) -> np.ndarray:
    """Parse an unsigned-byte IDX file of ``ndim`` dimensions (``what`` and ``unit`` name its contents in errors)."""
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source}: {len(data)} bytes is too short for an IDX {what} file ({header}-byte header)")
    zero, _, kind, found_ndim = data[:4]
    if data[:2] != b"\x00\x00" or kind != _UNSIGNED_BYTE or found_ndim != ndim:
        raise ValueError(
            f"{source}: magic number 0x{data[:4].hex()} is not that of IDX {what}; expected 0x{expected_magic} "
            f"(unsigned bytes, {_DIMENSIONS[ndim]}), found type 0x{kind:02x}, {found_ndim} dimensions"
            + ("" if zero == 0 else " (is the file gzip-compressed or not an IDX file?)")
        )
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    found = len(data) - header
    if found != expected:
        hint = " (the file looks truncated)" if found < expected else ""
        raise ValueError(
            f"{source}: the header declares {' x '.join(map(str, shape))} = {expected} {unit} bytes after "
            f"the {header}-byte header, found {found}{hint}"
        )
    if 0 in shape:
        raise ValueError(f"{source}: the header declares an empty {what} array of shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def parse_idx_images(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parse an IDX file of unsigned-byte images into a ``(N, H, W)`` uint8 array.

    Raises ``ValueError`` naming ``source`` for a wrong magic number (not unsigned bytes, not 3
    dimensions) or a payload whose length differs from what the header declares (a truncated file).
    """
    return _parse_idx(data, 3, "images", "pixel", "00000803", source)


def parse_idx_labels(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parse an IDX file of unsigned-byte labels (magic ``0x00000801``) into an ``(N,)`` uint8 array.

    Raises ``ValueError`` naming ``source`` as ``parse_idx_images`` does.
    """
    return _parse_idx(data, 1, "labels", "label", "00000801", source)


def find_idx_files(folder: Path, *, labels: bool = False) -> dict[str, Path] | None:
    """The training and test image files of ``folder`` (keys ``train``, ``test``), or None if either lacks.

    With ``labels``, the label files as well (keys ``train_labels``, ``test_labels``).
    """
    wanted = [("train", _TRAIN_NAMES), ("test", _TEST_NAMES)]
    if labels:
        wanted += [("train_labels", _TRAIN_LABEL_NAMES), ("test_labels", _TEST_LABEL_NAMES)]
    found = {}
    for key, names in wanted:
        candidates = [folder / f"{name}{suffix}" for name in names for suffix in ("", ".gz")]
        existing = [path for path in candidates if path.is_file()]
        if not existing:
            return None
        found[key] = existing[0]
    return found


def fixed_binarization(grey: np.ndarray, seed: int) -> torch.Tensor:
    """``(N, D)`` uint8 0/1 images drawn once from ``Bernoulli(grey / 255)`` with ``seed`` (see module doc)."""
    generator = torch.Generator().manual_seed(seed)
    return binarize(torch.from_numpy(np.array(grey, dtype=np.uint8, order="C")), generator=generator, dtype=torch.uint8)


def load_idx_folder(folder: str | Path, *, num_valid: int = NUM_VALID, name: str | None = None) -> Dataset:
    """MNIST or Fashion-MNIST from a folder of IDX files, split and binarized as in the module doc.

    Args:
        folder: holds ``train-images-idx3-ubyte[.gz]`` and ``t10k-images-idx3-ubyte[.gz]``.
        num_valid: the last ``num_valid`` training images form the validation split (10,000).
        name: the dataset's name; the folder's name by default.
    """
    folder = Path(folder)
    files = find_idx_files(folder)
    if files is None:
        raise FileNotFoundError(
            f"{folder}: expected IDX files {_TRAIN_NAMES[0]}[.gz] and {_TEST_NAMES[0]}[.gz] in this folder"
        )
    train = parse_idx_images(read_maybe_gzip(files["train"]), source=str(files["train"]))
    test = parse_idx_images(read_maybe_gzip(files["test"]), source=str(files["test"]))
    if train.shape[1:] != test.shape[1:]:
        raise ValueError(
            f"{folder}: training images are {train.shape[1]} x {train.shape[2]} but test images are "
            f"{test.shape[1]} x {test.shape[2]}; expected the same image shape"
        )
    if isinstance(num_valid, bool) or not isinstance(num_valid, int) or not 1 <= num_valid < train.shape[0]:
        raise ValueError(
            f"load_idx_folder: num_valid must be an integer in [1, {train.shape[0] - 1}] for the "
            f"{train.shape[0]} training images of {files['train']}, got {num_valid!r}"
        )
    height, width = train.shape[1:]
    flat_train = train.reshape(train.shape[0], height * width)  # (N, H*W)
    n_train = train.shape[0] - num_valid
    return Dataset(
        name=name or folder.resolve().name,
        train=torch.from_numpy(flat_train[:n_train].copy()),
        valid=fixed_binarization(flat_train[n_train:], VALID_SEED),
        test=fixed_binarization(test.reshape(test.shape[0], height * width), TEST_SEED),
        image_shape=(height, width),
        dynamic_binarization=True,
        source=str(folder),
    )


@dataclass(frozen=True)
class LabelledImages:
    """A labelled IDX dataset as stored: grey levels ``(N, H, W)`` uint8 and labels ``(N,)`` uint8, per split."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def load_labelled_idx_folder(folder: str | Path) -> LabelledImages:
    """MNIST or Fashion-MNIST images with their class labels, for classification (no binarization, no split).

    Args:
        folder: holds ``{train,t10k}-images-idx3-ubyte[.gz]`` and ``{train,t10k}-labels-idx1-ubyte[.gz]``, as the
            Debian package ``dataset-fashion-mnist`` installs them in ``/usr/share/datasets/fashion-mnist``.
    """
    folder = Path(folder)
    files = find_idx_files(folder, labels=True)
    if files is None:
        raise FileNotFoundError(
            f"{folder}: expected IDX files {_TRAIN_NAMES[0]}, {_TRAIN_LABEL_NAMES[0]}, {_TEST_NAMES[0]} and "
            f"{_TEST_LABEL_NAMES[0]} (each optionally .gz) in this folder"
        )
    arrays = {}
    for key, path in files.items():
        parse = parse_idx_labels if key.endswith("labels") else parse_idx_images
        arrays[key] = parse(read_maybe_gzip(path), source=str(path))
    for split in ("train", "test"):
        if arrays[split].shape[0] != arrays[f"{split}_labels"].shape[0]:
            raise ValueError(
                f"{folder}: {arrays[split].shape[0]} {split} images but {arrays[f'{split}_labels'].shape[0]} "
                f"{split} labels; expected one label per image"
            )
    return LabelledImages(arrays["train"], arrays["train_labels"], arrays["test"], arrays["test_labels"])
