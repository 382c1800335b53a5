"""Test-set evaluation of a trained cell: the importance-weighted bound L_k of the discrete model on all
test images or on a fixed random subset, with a 95% confidence interval for the test-set mean.

    L_k(x) = log (1/k) sum_{i=1..k} p(x, h_i) / q(h_i | x)   (Burda et al. 2016, eq. 8),

reported as the NLL estimate -mean_x L_k(x) in nats; Maddison et al. (2017, Sec. 5) use k = 50,000.
-L_k over-estimates the NLL (L_k is a lower bound of log p(x) that tightens as k grows).

The interval is mean ± 1.96 s / sqrt(n) over the n per-image values (s their sample standard deviation):
it covers both the choice of a random subset of the test set and the Monte Carlo noise of each L_k.

References
    [1] Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
    [2] C. J. Maddison, A. Mnih, Y. W. Teh, "The Concrete Distribution", ICLR 2017.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from concretelab.data import SUBSET_RULE
from concretelab.train import load_checkpoint
from concretelab.train.evaluate import mean_and_stderr, paired_difference
from concretelab.train.load import model_from_checkpoint
from concretelab.train.resumable_bound import resumable_bound_per_image

__all__ = ["Evaluation", "evaluate_images", "k_tightening", "load_trained_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """-L_k on ``images`` test images (``subset_seed`` None: the whole split, in order)."""

    split: str
    k: int
    images: int
    subset_seed: int | None
    checkpoint: str
    checkpoint_step: int
    nll: float  # -mean L_k, nats
    stderr: float  # s / sqrt(n)
    ci95: tuple[float, float]  # nll ± 1.96 stderr
    seed: int  # seeds the generator of the posterior samples
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["ci95"] = list(self.ci95)
        if self.subset_seed is not None:
            values["subset_rule"] = SUBSET_RULE
        return values


def load_trained_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, int]:
    """The model of a checkpoint file (rebuilt from its ``model_args``) in eval mode on ``device``, and its step."""
    checkpoint = load_checkpoint(path)
    return model_from_checkpoint(checkpoint, device=device), checkpoint.step


@torch.no_grad()
def evaluate_images(
    model: nn.Module,
    images: Tensor,
    *,
    k: int,
    state: Path,
    identity: dict[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 100,
    label: str = "",
) -> tuple[Tensor, float]:
    """Per-image -L_k (nats, shape (N,)) of ``images`` (uint8 or float 0/1, (N, D)), and the seconds it took (over
    every call, when resumed).

    Saved batch by batch to ``state`` and resumed from it (:mod:`concretelab.train.resumable_bound`: batch b's
    posterior samples are seeded with ``seed`` and b, so an interrupted evaluation gives the same numbers);
    ``identity`` must match for a saved state to be reused. Progress is logged about every 10%."""
    if images.dim() != 2 or images.shape[0] < 1:
        raise ValueError(f"images must have shape (N, D) with N >= 1, got {tuple(images.shape)}")
    start, progress = time.perf_counter(), {"done": 0, "resumed": 0, "next_log": 0.1}

    def log_resumed(images_done: int) -> None:
        progress["done"] = progress["resumed"] = images_done
        progress["next_log"] = images_done / images.shape[0] + 0.1

    def log_progress(images_done: int) -> None:  # about every 10%
        progress["done"] += images_done
        done = progress["done"] / images.shape[0]
        if progress["next_log"] <= done < 1:
            elapsed = time.perf_counter() - start
            rate = (progress["done"] - progress["resumed"]) / elapsed  # images/s of this call
            logger.info("%s L_%d: %d%% of %d images, %.0f s, about %.0f s left", label, k, int(100 * done),
                        images.shape[0], elapsed, (images.shape[0] - progress["done"]) / rate)
            progress["next_log"] = done + 0.1

    bounds, seconds = resumable_bound_per_image(model, images, k, state=state, seed=seed, batch_size=batch_size,
                                                identity=identity, progress=log_progress, resumed=log_resumed)
    return -bounds, seconds


def summarize(
    nll: Tensor, *, split: str, k: int, subset_seed: int | None, checkpoint: str, checkpoint_step: int,
    seed: int, seconds: float,
) -> Evaluation:
    """The mean and a normal-approximation 95% interval of per-image NLLs."""
    mean, stderr = mean_and_stderr(nll)
    return Evaluation(split, k, nll.shape[0], subset_seed, checkpoint, checkpoint_step, mean, stderr,
                      (mean - 1.96 * stderr, mean + 1.96 * stderr), seed, seconds)


def k_tightening(main: Evaluation, main_nll: torch.Tensor | None, large: Evaluation, large_nll: torch.Tensor | None,
                 subset: torch.Tensor | None) -> dict[str, Any] | None:
    """How much -L_k falls from the main k to the large k on the same images: the main evaluation's per-image
    values on the large-k subset against the large-k ones, image by image (a paired difference, so the subset's
    own mean cancels). Only when the main evaluation covers the whole test set and both kept their values."""
    if main_nll is None or large_nll is None or main.subset_seed is not None:
        return None
    on_subset = main_nll if subset is None else main_nll[subset]
    if on_subset.shape != large_nll.shape:
        return None
    mean, half = paired_difference(large_nll, on_subset)
    return {"k": main.k, "large_k": large.k, "images": int(on_subset.shape[0]), "nll_at_k": float(on_subset.mean()),
            "nll_at_large_k": float(large_nll.mean()), "difference": mean,
            "difference_ci95": [mean - half, mean + half]}
