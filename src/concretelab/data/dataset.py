"""The dataset object every loader returns (the Bernoulli binarization of grey levels lives in batches.py).

A ``Dataset`` holds three splits as ``torch.uint8`` tensors of shape ``(N, H*W)``. Validation and
test images are always binary (0/1). The training images are binary too, unless the dataset is
*dynamically binarized* (MNIST and Fashion-MNIST read from IDX files): then ``train`` holds grey levels
0..255 and every training batch is drawn afresh as ``x ~ Bernoulli(grey / 255)`` (``binarize``),
the protocol of Burda et al. (2016, Sec. 5) and of later discrete-latent-variable papers.

References
    [1] Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
    [2] H. Larochelle, I. Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from concretelab.data.batches import BatchIterator, binarize

__all__ = ["SPLITS", "Dataset", "binarize"]

SPLITS: tuple[str, str, str] = ("train", "valid", "test")


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Three splits of binary images, ready for the trainer.

    Attributes:
        name: short name (``"embedded"``, ``"binarized-mnist"``, or the folder's name).
        train: ``(N_train, H*W)`` ``torch.uint8``: 0/1, or grey levels 0..255 when ``dynamic_binarization``.
        valid: ``(N_valid, H*W)`` ``torch.uint8`` 0/1.
        test: ``(N_test, H*W)`` ``torch.uint8`` 0/1.
        image_shape: ``(H, W)``, row-major pixel order; ``(28, 28)`` for MNIST.
        dynamic_binarization: True when ``train`` holds grey levels to be binarized per batch.
        source: where the data came from (a spec name or a path), for logs and checkpoints.
        train_mean: ``(H*W,)`` float32 mean of each training pixel (of ``grey / 255`` when dynamically
            binarized, i.e. the mean of the binarized pixel); initialises the models' output bias.
    """

    name: str
    train: Tensor
    valid: Tensor
    test: Tensor
    image_shape: tuple[int, int] = (28, 28)
    dynamic_binarization: bool = False
    source: str = ""
    train_mean: Tensor = field(init=False)

    def __post_init__(self) -> None:
        if len(self.image_shape) != 2 or min(self.image_shape) < 1:
            raise ValueError(f"Dataset: image_shape must be (H, W) with H, W >= 1, got {self.image_shape}")
        pixels = math.prod(self.image_shape)
        for split in SPLITS:
            images = getattr(self, split)
            if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 2:
                got = f"{images.dtype} of shape {tuple(images.shape)}" if isinstance(images, Tensor) else type(images)
                raise ValueError(f"Dataset: {split} must be a torch.uint8 tensor (N, {pixels}), got {got}")
            if images.shape[1] != pixels or images.shape[0] == 0:
                raise ValueError(
                    f"Dataset: {split} has shape {tuple(images.shape)}; expected (N >= 1, {pixels}) for images "
                    f"of shape {self.image_shape}"
                )
            binary_required = split != "train" or not self.dynamic_binarization
            largest = int(images.cpu().numpy().max())  # numpy reductions: several times faster than torch's on uint8
            if binary_required and largest > 1:
                raise ValueError(f"Dataset: {split} must hold 0/1 pixels, found the value {largest}")
        scale = 255.0 if self.dynamic_binarization else 1.0
        total = self.train.cpu().numpy().sum(axis=0, dtype=np.int64)  # exact pixel counts, (H*W,)
        mean = torch.from_numpy(total / (scale * self.train.shape[0])).to(torch.float32)
        object.__setattr__(self, "train_mean", mean)

    @property
    def num_pixels(self) -> int:
        """H * W, the length of one flattened image."""
        return math.prod(self.image_shape)

    def split(self, name: str) -> Tensor:
        """The ``(N, H*W)`` uint8 tensor of split ``name`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if name not in SPLITS:
            raise ValueError(f"Dataset.split: name must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def binary_split(self, name: str) -> Tensor:
        """The ``(N, H*W)`` uint8 0/1 images of split ``name``, the fixed images a bound is evaluated on.

        The training split of a dynamically binarized dataset holds grey levels, binarized afresh at every
        training step, so it has no fixed 0/1 images: refused (evaluate ``valid`` or ``test``, or binarize
        ``train`` yourself with ``binarize``).
        """
        images = self.split(name)
        if name == "train" and self.dynamic_binarization:
            raise ValueError(
                f"split 'train': the training images of {self.name!r} are grey levels binarized afresh at every "
                "step, with no fixed 0/1 images to score; use 'valid' or 'test'"
            )
        return images

    def train_batches(
        self, batch_size: int, *, seed: int, drop_last: bool = False, dtype: torch.dtype = torch.float32
    ) -> BatchIterator:
        """A resumable, shuffled stream of training batches (binarized per batch when required)."""
        return BatchIterator(
            self.train,
            batch_size,
            seed=seed,
            dynamic_binarization=self.dynamic_binarization,
            drop_last=drop_last,
            dtype=dtype,
        )

    def eval_batches(self, split: str, batch_size: int, *, dtype: torch.dtype = torch.float32) -> Iterator[Tensor]:
        """The images of a binary split in order, as ``(<= batch_size, H*W)`` 0/1 tensors of ``dtype``
        (the split's images from ``binary_split``, which refuses a dynamically binarized training split).
        """
        if batch_size < 1:
            raise ValueError(f"Dataset.eval_batches: batch_size must be >= 1, got {batch_size}")
        images = self.binary_split(split)
        for start in range(0, images.shape[0], batch_size):
            yield images[start : start + batch_size].to(dtype)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{split}={tuple(getattr(self, split).shape)}" for split in SPLITS)
        return (
            f"Dataset(name={self.name!r}, {shapes}, image_shape={self.image_shape}, "
            f"dynamic_binarization={self.dynamic_binarization}, source={self.source!r})"
        )
