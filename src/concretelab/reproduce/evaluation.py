"""What a Table 1 result records of a test-set evaluation (computed by
``concretelab.train.evaluate.evaluate_checkpoint``, the one evaluation of the package): the importance-weighted
bound L_k of the discrete model on all test images or on a fixed random subset, with a 95% confidence interval for
the test-set mean, and the paired tightening from the main k to a larger one.

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from concretelab.data import SUBSET_RULE
from concretelab.train import load_checkpoint
from concretelab.train.evaluate import paired_difference
from concretelab.train.load import model_from_checkpoint

__all__ = ["Evaluation", "k_tightening", "load_trained_model"]

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

    @staticmethod
    def from_result(result: dict[str, Any]) -> Evaluation:
        """The evaluation in a result of ``concretelab.train.evaluate.evaluate_checkpoint``."""
        return Evaluation(result["split"], result["k"], result["n_images"], result.get("subset_seed"),
                          result["checkpoint"], result["checkpoint_step"], result["nll"], result["nll_stderr"],
                          tuple(result["nll_ci95"]), result["seed"], result["seconds"])

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
