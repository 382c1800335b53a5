"""L_k of every image, saved batch by batch, so that an interrupted evaluation resumes where it stopped.

L_k(x) = log (1/k) sum_i p(x, h_i) / q(h_i | x), h_i ~ q(. | x) (Burda et al. 2016, eq. 8). At the paper's
k = 50,000 an evaluation takes tens of minutes to hours on a CPU, so a run cut off near its end would otherwise
start over. Batch b (images [b B, (b + 1) B)) draws its posterior samples from a generator seeded with
``derive_seed(seed, "eval-batch", b)``: a batch's value does not depend on the batches before it, and the result is
the same whether the evaluation ran in one go or was interrupted and resumed any number of times.

The state file holds the per-image values done so far, their seconds, and a fingerprint of what is evaluated (k,
seed, batch and chunk size, device type, a digest of the images, and whatever the caller adds, such as the
checkpoint's step); a state whose fingerprint differs is not reused. Each batch rewrites it atomically, so an
interruption loses at most the batch in progress.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from concretelab.checks import check_int
from concretelab.objectives import DiscreteModel, discrete_bound_per_image, model_placement
from concretelab.seeding import derive_seed
from concretelab.train.denormals import flush_denormals
from concretelab.train.io import atomic_write_json

__all__ = ["images_digest", "resumable_bound_per_image"]

logger = logging.getLogger(__name__)


def images_digest(images: Tensor) -> str:
    """SHA-256 of the images as 0/1 bytes (uint8 and float 0/1 give the same digest), first 16 hex digits."""
    data = images.detach().to("cpu", torch.uint8).contiguous().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16] + f"-{tuple(images.shape)}"


def _load_done(state: Path, fingerprint: Mapping[str, Any], batch_size: int, total: int) -> tuple[list[float], float]:
    """The per-image values a matching state holds (whole batches only) and their seconds, or ([], 0) to start
    over."""
    if not state.is_file():
        return [], 0.0
    try:
        stored = json.loads(state.read_text(encoding="utf-8"))
        done, seconds = [float(v) for v in stored["bounds"]], float(stored["seconds"])
        same = stored["fingerprint"] == json.loads(json.dumps(dict(fingerprint)))
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("ignoring unreadable evaluation state %s (%s): starting over", state, error)
        return [], 0.0
    if not same:
        logger.warning("evaluation state %s is of another evaluation (%s, not %s): starting over", state,
                       stored["fingerprint"], dict(fingerprint))
        return [], 0.0
    if len(done) > total or (len(done) % batch_size and len(done) != total):
        logger.warning("evaluation state %s holds %d values, not whole batches of %d: starting over", state,
                       len(done), batch_size)
        return [], 0.0
    return done, seconds


def resumable_bound_per_image(
    model: DiscreteModel,
    images: Tensor,
    k: int,
    *,
    state: str | Path | None,
    seed: int = 0,
    batch_size: int = 100,
    chunk_size: int | None = None,
    identity: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    resumed: Callable[[int], None] | None = None,
) -> tuple[Tensor, float]:
    """L_k of every image (float64, CPU, shape (N,)), resumed from and saved to ``state`` after every batch, and
    the seconds spent on it over every call that contributed (the state keeps the count).

    Args:
        model: a discrete model (see ``concretelab.objectives.discrete_bound``).
        images: (N, D), uint8 or float 0/1.
        k: samples per image.
        state: the JSON file of the partial evaluation; the caller removes it once the final result is written.
            None: nothing is saved (validation during training, which a signal abandons and the resumed run redoes).
        seed: with the batch's index, seeds the batch's posterior samples.
        batch_size: images per batch (part of the fingerprint: it decides which samples each image gets).
        chunk_size: samples per chunk inside ``discrete_bound`` (part of the fingerprint, as is the device type).
        identity: JSON-serialisable facts that must match for a saved state to be reused (e.g. the checkpoint step).
        progress: called with the number of images of each batch computed.
        resumed: called once, before any batch, with the number of images a saved state already held (if any).
    """
    if not isinstance(images, Tensor) or images.dim() != 2 or images.shape[0] < 1:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be an (N, D) tensor with N >= 1, got {shape}")
    check_int("k", k)
    check_int("batch_size", batch_size)
    state = None if state is None else Path(state)
    total = int(images.shape[0])
    device, _ = model_placement(model, images)
    fingerprint = {"k": k, "seed": seed, "batch_size": batch_size, "chunk_size": chunk_size, "device": device.type,
                   "images": images_digest(images), **dict(identity or {})}
    done, seconds = ([], 0.0) if state is None else _load_done(state, fingerprint, batch_size, total)
    if done:
        logger.info("resuming the evaluation in %s: %d of %d images done", state.name, len(done), total)
        if resumed is not None:
            resumed(len(done))
    with flush_denormals():  # subnormal log-weights and probabilities made no difference but time
        for start in range(len(done), total, batch_size):
            began = time.perf_counter()
            generator = torch.Generator(device=device).manual_seed(derive_seed(seed, "eval-batch", start // batch_size))
            values = discrete_bound_per_image(model, images[start : start + batch_size], k, batch_size=batch_size,
                                              chunk_size=chunk_size, generator=generator)
            done.extend(values.tolist())
            seconds += time.perf_counter() - began
            if state is not None:
                atomic_write_json(state, {"fingerprint": fingerprint, "seconds": seconds, "bounds": done})
            if progress is not None:
                progress(values.shape[0])
    return torch.tensor(done, dtype=torch.float64), seconds
