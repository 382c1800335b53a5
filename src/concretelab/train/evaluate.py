"""Test log-likelihood of a trained run: the importance-weighted bound L_k of the discrete model.

    NLL = -(1/N) sum_n L_k(x_n),   L_k(x) = log (1/k) sum_i p(x, h_i) / q(h_i | x),  h_i ~ q(. | x)

(Burda et al. 2016, eq. 8), the measure of Maddison et al. (2017, Sec. 5) with k = 50,000. The standard
error is the sample standard deviation of -L_k(x_n) over the images divided by sqrt(N): it covers the
spread over images and over the k-sample draws (not the bias of L_k below log p(x)); with one image it is
undefined (None).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from concretelab.checks import check_int
from concretelab.data import SPLITS, SUBSET_RULE, SUBSET_SEED, fixed_subset, load_dataset
from concretelab.devices import resolve_device
from concretelab.train.checkpoint import load_checkpoint
from concretelab.train.config import config_from_dict
from concretelab.train.io import atomic_write_json
from concretelab.train.load import checkpoint_path, model_from_checkpoint
from concretelab.train.resources import check_bound_memory
from concretelab.train.resumable_bound import resumable_bound_per_image

__all__ = ["evaluate_run", "mean_and_stderr", "paired_difference", "result_path"]

logger = logging.getLogger(__name__)


def result_path(
    run: str | Path, split: str, k: int, checkpoint: str, *, num_images: int | None = None, seed: int = 0
) -> Path:
    """``RUN/eval-{split}-k{K}-{checkpoint}[-subset{N}][-seed{S}].json``: every setting that defines the number is
    in the name (the full split with seed 0 keeps the short name), so a 3-image check never replaces a full one.
    (Before the subset was random, ``-n{N}`` named the first N images; such files are left as they are.)"""
    name = f"eval-{split}-k{k}-{checkpoint}"
    if num_images is not None:
        name += f"-subset{num_images}"
    if seed != 0:
        name += f"-seed{seed}"
    return Path(run) / f"{name}.json"


def _keep_previous(path: Path, checkpoint_step: int) -> None:
    """An existing result of the same setting but another checkpoint step (the run trained on since) is kept
    under ``...-step{S}.json`` before the new one takes the name."""
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    old_step = previous.get("checkpoint_step")
    if old_step is not None and old_step != checkpoint_step:
        kept = path.with_name(f"{path.stem}-step{old_step}.json")
        os.replace(path, kept)
        logger.info("kept the result of step %s as %s", old_step, kept.name)


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    """The mean of per-image values and its standard error s / sqrt(n), s the sample standard deviation (nan for
    one value); a normal-approximation 95% interval is mean ± 1.96 stderr."""
    n = values.numel()
    stderr = float(values.std(unbiased=True)) / math.sqrt(n) if n > 1 else math.nan
    return float(values.mean()), stderr


def paired_difference(
    first: Sequence[float] | torch.Tensor, second: Sequence[float] | torch.Tensor
) -> tuple[float, float]:
    """(mean of second - first, half-width of its normal-approximation 95% interval) over paired items, e.g. two
    bounds of the same images: mean ± 1.96 s / sqrt(n), s the sample standard deviation of the n differences
    (the half-width is nan for one pair). The spread between images cancels in the differences."""
    a = torch.as_tensor(first, dtype=torch.float64).flatten()
    b = torch.as_tensor(second, dtype=torch.float64).flatten()
    if a.shape != b.shape or a.numel() == 0:
        raise ValueError(f"paired_difference needs two equally long, non-empty sets of values, got {a.numel()} and "
                         f"{b.numel()}")
    mean, stderr = mean_and_stderr(b - a)
    return mean, 1.96 * stderr


@torch.no_grad()
def evaluate_run(
    run: str | Path,
    *,
    k: int,
    split: str = "test",
    checkpoint: str = "best",
    seed: int = 0,
    num_images: int | None = None,
    chunk_size: int | None = None,
    batch_size: int = 100,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a run's checkpoint with L_k on ``split``; write and return the result dict (the mean, its
    standard error, and ``per_image_nll``, each image's -L_k, so that two evaluations of the same images can be
    compared image by image: :func:`paired_difference`, ``scripts/paired_difference.py``).

    Args:
        run: the run folder written by ``concretelab train``.
        k: samples of the importance-weighted bound (50,000 in the paper).
        split: ``test``, ``valid`` or ``train`` (the training images: their bound beside the validation one
            measures overfitting; a dynamically binarized training split has no fixed images and is refused).
        checkpoint: ``best`` (by validation bound) or ``last``.
        seed: seeds the proposal samples (with each batch's index, so an interrupted evaluation resumes from
            ``<result>.partial.json`` to the same numbers; see :mod:`concretelab.train.resumable_bound`).
        num_images: evaluate a fixed random subset of N images of the split (None: all), the same N images for
            every run, checkpoint and seed (:func:`concretelab.data.fixed_subset` with seed 0; the splits are not
            in random order, so the first N images would not be a sample of the split).
        chunk_size: samples per chunk inside :func:`concretelab.objectives.discrete_bound`.
        batch_size: images per call of ``discrete_bound``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    check_int("k", k)
    check_int("batch_size", batch_size)
    if num_images is not None:
        check_int("num_images", num_images)
    torch_device = resolve_device(device)
    saved = load_checkpoint(checkpoint_path(run, checkpoint))  # read and verified once
    model = model_from_checkpoint(saved, device=torch_device)
    config = config_from_dict(saved.config, source=f"checkpoint of {run}")
    check_bound_memory(config.model, config.categories, batch=batch_size, chunk_size=chunk_size,
                       device=torch_device, flag="--chunk-size")
    checkpoint_step = saved.step
    dataset = load_dataset(config.data)
    images = dataset.binary_split(split)  # refuses a training split binarized afresh at every step
    if num_images is not None:
        if num_images > images.shape[0]:
            raise ValueError(f"--num-images {num_images} exceeds the {images.shape[0]} images of the {split} split")
        subset = fixed_subset(images.shape[0], num_images, SUBSET_SEED)
        images = images if subset is None else images[subset]
    path = result_path(run, split, k, checkpoint, num_images=num_images, seed=seed)
    state = path.with_name(path.stem + ".partial.json")
    logger.info("evaluating -L_%d on %d %s images (%s checkpoint, step %d)", k, images.shape[0], split, checkpoint,
                checkpoint_step)
    with tqdm(total=images.shape[0], unit="img", desc=f"L_{k} on {split}", disable=None if progress else True) as bar:
        bounds, seconds = resumable_bound_per_image(model, images, k, state=state, seed=seed, batch_size=batch_size,
                                         chunk_size=chunk_size, progress=bar.update, resumed=bar.update,
                                         identity={"checkpoint": checkpoint, "checkpoint_step": checkpoint_step})
    nll = -bounds  # (N,) float64
    n = int(nll.shape[0])
    mean, stderr = mean_and_stderr(nll)
    result = {
        "run": str(run),
        "model": config.model,
        "data": config.data,
        "split": split,
        "k": k,
        "checkpoint": checkpoint,
        "checkpoint_step": checkpoint_step,
        "seed": seed,
        "num_images_requested": num_images,
        **({"subset_seed": SUBSET_SEED, "subset_rule": SUBSET_RULE} if num_images is not None else {}),
        "chunk_size": chunk_size,
        "nll": mean,
        "nll_stderr": stderr if n > 1 else None,
        "n_images": n,
        "seconds": seconds,
        "images_per_s": n / seconds if seconds > 0 else None,
        "device": str(torch_device),
        "per_image_nll": nll.tolist(),  # -L_k of each scored image, in split order: for paired comparisons
    }
    _keep_previous(path, checkpoint_step)
    atomic_write_json(path, result)
    state.unlink(missing_ok=True)
    result["path"] = str(path)
    return result
