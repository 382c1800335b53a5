"""Regenerate the embedded subset of binarized MNIST (src/concretelab/data/embedded/) from the full data.

Takes N evenly spaced images of each split (every (len/N)-th, starting with the first; the test file is
grouped by digit, so its first images are not representative) of a verified copy of binarized MNIST (any source
``concretelab.data.load_dataset`` accepts; by default the shared copy ../shared/data/binarized_mnist),
packs them with ``numpy.packbits`` along each image, and writes ``binarized_mnist_subset.npz`` (compressed)
and ``manifest.json`` (counts, sha256 of each unpacked uint8 array) atomically.

    .venv/bin/python scripts/make_embedded_subset.py [--source PATH] [--train 10000 --valid 1000 --test 1000]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from concretelab.data import load_dataset
from concretelab.data._files import atomic_write, sha256_of_array
from concretelab.data.embedded import DATA_FILE, MANIFEST_FILE

REPO = Path(__file__).resolve().parents[1]
logger = logging.getLogger("make_embedded_subset")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "binarized_mnist"))
    parser.add_argument("--out", default=str(REPO / "src" / "concretelab" / "data" / "embedded"))
    parser.add_argument("--train", type=int, default=10_000, help="images of the train split to keep (evenly spaced)")
    parser.add_argument("--valid", type=int, default=1_000, help="images of the valid split to keep (evenly spaced)")
    parser.add_argument("--test", type=int, default=1_000, help="images of the test split to keep (evenly spaced)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    dataset = load_dataset(args.source)
    if dataset.name != "binarized-mnist":
        raise SystemExit(f"{args.source} is not the full, checksum-verified binarized MNIST (got {dataset!r})")
    counts = {"train": args.train, "valid": args.valid, "test": args.test}
    strides = {split: len(dataset.split(split)) // count for split, count in counts.items()}
    subset = {split: dataset.split(split)[:: strides[split]][:count].numpy() for split, count in counts.items()}
    packed = {split: np.packbits(images, axis=1) for split, images in subset.items()}  # (N, 98) uint8
    manifest = {
        "description": "N evenly spaced images (every stride-th, from the first) of each split of binarized MNIST "
        "(fixed binarization, Larochelle & "
        "Murray 2011), bit-packed with numpy.packbits(axis=1) in a compressed .npz",
        "data_file": DATA_FILE,
        "counts": counts,
        "strides": strides,
        "sha256": {split: sha256_of_array(images) for split, images in subset.items()},
        "train_mean_pixel": round(float(subset["train"].mean()), 6),
    }
    out = Path(args.out)
    atomic_write(out / DATA_FILE, lambda file: np.savez_compressed(file, **packed))
    atomic_write(out / MANIFEST_FILE, lambda file: file.write((json.dumps(manifest, indent=2) + "\n").encode()))
    logger.info("wrote %s (%d bytes) and %s", out / DATA_FILE, (out / DATA_FILE).stat().st_size, MANIFEST_FILE)


if __name__ == "__main__":
    main()
