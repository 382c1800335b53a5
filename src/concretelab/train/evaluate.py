"""Test log-likelihood of a trained run: the importance-weighted bound L_k of the discrete model.

    NLL = -(1/N) sum_n L_k(x_n),   L_k(x) = log (1/k) sum_i p(x, h_i) / q(h_i | x),  h_i ~ q(. | x)

(Burda et al. 2016, eq. 8), the measure of Maddison et al. (2017, Sec. 5) with k = 50,000. The standard
error is the sample standard deviation of -L_k(x_n) over the images divided by sqrt(N): it covers the
spread over images and over the k-sample draws (not the bias of L_k below log p(x)); with one image it is
undefined (None).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from concretelab.checks import check_int
from concretelab.data import SPLITS, SUBSET_RULE, SUBSET_SEED, fixed_subset, load_dataset
from concretelab.devices import resolve_device
from concretelab.files import read_json_object
from concretelab.train.checkpoint import Checkpoint, load_checkpoint
from concretelab.train.config import config_from_dict
from concretelab.train.io import atomic_write_json
from concretelab.train.load import checkpoint_path, model_from_checkpoint
from concretelab.train.replicas import replica_folder
from concretelab.train.resources import check_bound_memory
from concretelab.train.resumable_bound import resumable_bound_per_image

__all__ = ["DEFAULT_EVAL_BATCH_SIZE", "bound_subset", "evaluate_checkpoint", "evaluate_run", "mean_and_stderr",
           "paired_difference", "result_path"]

logger = logging.getLogger(__name__)


DEFAULT_EVAL_BATCH_SIZE = 100  # images per call of the bound; with the seed it decides each image's samples


def result_path(
    run: str | Path, split: str, k: int, checkpoint: str, *, num_images: int | None = None, seed: int = 0,
    batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
) -> Path:
    """``RUN/eval-{split}-k{K}-{checkpoint}[-subset{N}][-seed{S}][-b{B}].json``: every setting that defines the
    number is in the name (the defaults keep the short name: the whole split, seed 0, batches of 100), so a 3-image
    check never replaces a full one. The checkpoint's step is in the file; a result of an earlier step is kept
    under ``...-step{S}.json`` when a later one takes the name. (Before the subset was random, ``-n{N}`` named the
    first N images; such files are left as they are.)"""
    name = f"eval-{split}-k{k}-{checkpoint}"
    if num_images is not None:
        name += f"-subset{num_images}"
    if seed != 0:
        name += f"-seed{seed}"
    if batch_size != DEFAULT_EVAL_BATCH_SIZE:
        name += f"-b{batch_size}"
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


class _ProgressLog:
    """Progress of an evaluation as a log line about every 10%, with the time left at this call's rate."""

    def __init__(self, label: str, k: int, total: int) -> None:
        self.label, self.k, self.total = label, k, total
        self.done = self.resumed = 0
        self.next_share = 0.1
        self.start = time.perf_counter()

    def resume(self, images_done: int) -> None:
        self.done = self.resumed = images_done
        self.next_share = images_done / self.total + 0.1

    def advance(self, images: int) -> None:
        self.done += images
        share = self.done / self.total
        if self.next_share <= share < 1:
            elapsed = time.perf_counter() - self.start
            rate = (self.done - self.resumed) / elapsed  # images/s of this call
            logger.info("%s L_%d: %d%% of %d images, %.0f s, about %.0f s left", self.label, self.k, int(100 * share),
                        self.total, elapsed, (self.total - self.done) / rate)
            self.next_share = share + 0.1


def bound_subset(total: int, num_images: int | None, split: str) -> Tensor | None:
    """The images -L_k is computed on: all ``total`` of a split (None) or the fixed random subset of ``num_images``
    (``concretelab.data.fixed_subset`` with seed 0, the one rule of evaluate, reproduce and validation; the
    splits are not in random order, so the first N images would not be a sample of the split)."""
    if num_images is None:
        return None
    check_int("num_images", num_images)
    if num_images > total:
        raise ValueError(f"--num-images {num_images} exceeds the {total} images of the {split} split")
    return fixed_subset(total, num_images, SUBSET_SEED)


def _stored_result(path: Path, checkpoint_step: int, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The result at ``path`` if it was computed at this checkpoint step with these settings and kept its per-image
    values; None otherwise."""
    stored = read_json_object(path)
    if stored is None:
        return None
    same = stored.get("checkpoint_step") == checkpoint_step and all(stored.get(key) == value
                                                                     for key, value in settings.items())
    return stored if same and "per_image_nll" in stored else None


@torch.no_grad()
@contextlib.contextmanager
def _progress(label: str | None, k: int, split: str, total: int, show: bool
              ) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(advance, resumed) callbacks of an evaluation's progress: a log line about every 10% with ``label`` (for
    runs whose output goes to a log file), else a bar (hidden unless ``show``)."""
    if label is not None:
        log = _ProgressLog(label, k, total)
        yield log.advance, log.resume
        return
    with tqdm(total=total, unit="img", desc=f"L_{k} on {split}", disable=None if show else True) as bar:
        yield bar.update, bar.update


def evaluate_checkpoint(
    run: str | Path,
    saved: Checkpoint,
    images: Tensor,
    *,
    model: torch.nn.Module | Callable[[], torch.nn.Module],
    checkpoint: str,
    split: str,
    k: int,
    num_images: int | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
    chunk_size: int | None = None,
    device: torch.device,
    reuse: bool = False,
    progress: bool = True,
    label: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """-L_k of a checkpoint on the images of a split (all of them, or the fixed subset ``bound_subset``), with
    its standard error and 95% interval and each image's value, cached as ``run``'s ``result_path``: the one
    evaluation that ``concretelab evaluate`` and ``reproduce`` both run. The computation is saved batch by batch
    and resumed after an interruption (``resumable_bound_per_image``: batch b's samples are seeded with
    ``seed`` and b). With ``reuse``, a result of the same checkpoint step and settings already on disk is returned
    as it is. ``model`` may be a function that builds it (called only when the bound is computed). Progress is a
    bar (``progress``), or with ``label`` a log line about every 10% (for runs whose output goes to a log file)."""
    check_int("k", k)
    check_int("batch_size", batch_size)
    subset = bound_subset(images.shape[0], num_images, split)
    path = result_path(run, split, k, checkpoint, num_images=num_images, seed=seed, batch_size=batch_size)
    settings = {"split": split, "k": k, "seed": seed, "num_images_requested": num_images, "batch_size": batch_size}
    if reuse and (stored := _stored_result(path, saved.step, settings)) is not None:
        logger.info("reusing %s", path.name)
        return {**stored, "path": str(path)}
    chosen = images if subset is None else images[subset]
    net = model() if callable(model) and not isinstance(model, torch.nn.Module) else model
    state = path.with_name(path.stem + ".partial.json")
    logger.info("evaluating -L_%d on %d %s images (%s checkpoint, step %d)", k, chosen.shape[0], split, checkpoint,
                saved.step)
    identity = {"checkpoint": checkpoint, "checkpoint_step": saved.step}
    with _progress(label, k, split, chosen.shape[0], progress) as (advance, resumed):
        bounds, seconds = resumable_bound_per_image(net, chosen, k, state=state, seed=seed, batch_size=batch_size,
                                                    chunk_size=chunk_size, progress=advance, resumed=resumed,
                                                    identity=identity)
    result = {
        "run": str(run),
        **(extra or {}),
        **settings,
        "checkpoint": checkpoint,
        "checkpoint_step": saved.step,
        **({"subset_seed": SUBSET_SEED, "subset_rule": SUBSET_RULE} if num_images is not None else {}),
        "chunk_size": chunk_size,
        **_bound_summary(-bounds, seconds),
        "device": str(device),
    }
    _keep_previous(path, saved.step)
    atomic_write_json(path, result)
    state.unlink(missing_ok=True)
    return {**result, "path": str(path)}


def _bound_summary(nll: Tensor, seconds: float) -> dict[str, Any]:
    """The mean of the per-image −L_k with its standard error and 95% interval (None for one image), the speed, and
    each image's value in split order (for paired comparisons)."""
    n = int(nll.shape[0])
    mean, stderr = mean_and_stderr(nll)
    half = 1.96 * stderr if n > 1 else math.nan
    return {
        "nll": mean,
        "nll_stderr": stderr if n > 1 else None,
        "nll_ci95": [mean - half, mean + half] if n > 1 else None,
        "n_images": n,
        "seconds": seconds,
        "images_per_s": n / seconds if seconds > 0 else None,
        "per_image_nll": nll.tolist(),
    }


def evaluate_run(
    run: str | Path,
    *,
    k: int,
    split: str = "test",
    checkpoint: str = "best",
    seed: int = 0,
    num_images: int | None = None,
    chunk_size: int | None = None,
    batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
    device: str = "auto",
    progress: bool = True,
    seed_replica: int | None = None,
) -> dict[str, Any]:
    """Evaluate a run's checkpoint with L_k on ``split``; write and return the result dict (the mean, its
    standard error, and ``per_image_nll``, each image's -L_k, so that two evaluations of the same images can be
    compared image by image: ``paired_difference``, ``scripts/paired_difference.py``). The evaluation itself
    is ``evaluate_checkpoint``.

    Args:
        run: the run folder written by ``concretelab train``.
        k: samples of the importance-weighted bound (50,000 in the paper).
        split: ``test``, ``valid`` or ``train`` (the training images: their bound beside the validation one
            measures overfitting; a dynamically binarized training split has no fixed images and is refused).
        checkpoint: ``best`` (by validation bound) or ``last``.
        seed: seeds the proposal samples (with each batch's index, so an interrupted evaluation resumes from
            ``<result>.partial.json`` to the same numbers; see ``concretelab.train.resumable_bound``).
        num_images: evaluate a fixed random subset of N images of the split (None: all), the same N images for
            every run, checkpoint and seed (``bound_subset``).
        chunk_size: samples per chunk inside ``concretelab.objectives.discrete_bound``.
        batch_size: images per call of ``discrete_bound`` (with the seed, it decides each image's samples).
        seed_replica: the replica of a ``--seeds`` run to evaluate (its folder ``run/seed-{seed_replica}``, where
            the result is written); such a run needs it.
    """
    if seed_replica is not None:
        checkpoint_path(run, checkpoint, seed=seed_replica)  # FileNotFoundError naming the seeds the run holds
        run = replica_folder(run, seed_replica)
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
    config = config_from_dict(saved.config, source=f"checkpoint of {run}")
    check_bound_memory(config.model, config.categories, batch=batch_size, chunk_size=chunk_size,
                       device=torch_device, flag="--chunk-size")
    images = load_dataset(config.data).binary_split(split)  # refuses a training split binarized afresh each step
    return evaluate_checkpoint(run, saved, images, model=lambda: model_from_checkpoint(saved, device=torch_device),
                               checkpoint=checkpoint, split=split, k=k, num_images=num_images, seed=seed,
                               batch_size=batch_size, chunk_size=chunk_size, device=torch_device, progress=progress,
                               extra={"model": config.model, "data": config.data})
