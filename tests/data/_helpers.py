"""Helpers of the data tests: where the shared binarized MNIST lives, and writers of small test files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED_DIR = REPO.parent / "shared" / "data" / "binarized_mnist"  # ../shared/data/binarized_mnist
SHARED_ABSENT = f"the shared binarized MNIST is absent ({SHARED_DIR} lacks {{train,valid,test}}.amat.gz)"


def shared_available() -> bool:
    return all((SHARED_DIR / f"{split}.amat.gz").is_file() for split in ("train", "valid", "test"))


def amat_bytes(images: np.ndarray) -> bytes:
    """Canonical .amat text of a (N, D) 0/1 array: single spaces, '\\n' after every line."""
    text = np.full((images.shape[0], 2 * images.shape[1]), ord(" "), dtype=np.uint8)
    text[:, 0::2] = images + ord("0")
    text[:, -1] = ord("\n")
    return text.tobytes()


def write_amat(path: Path, images: np.ndarray) -> Path:
    """Write ``images`` as .amat text, gzip-compressed when ``path`` ends in .gz."""
    data = amat_bytes(images)
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)
    return path


def random_binary(rows: int, seed: int, width: int = 784) -> np.ndarray:
    return (np.random.default_rng(seed).random((rows, width)) < 0.3).astype(np.uint8)


def idx_bytes(images: np.ndarray) -> bytes:
    """IDX encoding of a (N, H, W) uint8 array: magic 0x00000803, three big-endian sizes, the pixels."""
    header = bytes([0, 0, 0x08, 3]) + np.asarray(images.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(images, dtype=np.uint8).tobytes()


def write_idx(path: Path, images: np.ndarray) -> Path:
    """Write ``images`` as an IDX file, gzip-compressed when ``path`` ends in .gz."""
    data = idx_bytes(images)
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)
    return path
