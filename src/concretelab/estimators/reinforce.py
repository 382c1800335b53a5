"""REINFORCE with a moving-average baseline (Williams 1992).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)].
With
    ĝ = (f(b) − c) ∇_θ log p_θ(b),  ∇_θ log p_θ(b) = b − E[b]  (b − σ(θ), or b − softmax(θ) for one-hot b),
    where c is a constant baseline: an exponential moving average of f over the samples of *previous*
    calls (0 before the first call), so it is independent of the current samples and ĝ stays unbiased.
Requires
    f evaluated at exact samples only (no gradient of f). One f-evaluation per sample.

State: ``baseline`` (c) adapts after each call with ``c ← decay·c + (1 − decay)·mean f``; ``reset()``
sets it back to ``initial_baseline``.

References
    [1] Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
        learning", Machine Learning 8, 1992 (eq. 11, reinforcement baseline).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from concretelab.checks import check_fraction
from concretelab.estimators._base import (
    Objective,
    SingleSampleEstimator,
    evaluate,
    exact_sample,
    mean_param,
    per_element,
)

__all__ = ["Reinforce"]


class Reinforce(SingleSampleEstimator):
    """Score-function estimator with a moving-average constant baseline (unbiased; both families).

    Options: ``decay`` (moving-average factor in [0, 1), default 0.9; 0 uses the previous call's mean),
    ``initial_baseline`` (default 0.0), ``use_baseline`` (False gives plain REINFORCE, c = 0).
    """

    name = "reinforce"
    unbiased = True
    evaluations_per_sample = 1
    stateful = True

    def __init__(
        self,
        family: str = "bernoulli",
        *,
        decay: float = 0.9,
        initial_baseline: float = 0.0,
        use_baseline: bool = True,
    ) -> None:
        super().__init__(family)
        self.decay = check_fraction("decay", decay)
        self.initial_baseline = float(initial_baseline)
        self.use_baseline = bool(use_baseline)
        self.reset()

    def reset(self) -> None:
        self.baseline = self.initial_baseline

    def state_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.baseline = float(state["baseline"])

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        b = exact_sample(logits, num, self.family, generator)  # (num, *shape)
        with torch.no_grad():
            values = evaluate(f, b).detach().to(logits.dtype)  # (num,)
        c = self.baseline if self.use_baseline else 0.0
        score = b - mean_param(logits, self.family)  # (num, *shape)
        grads = per_element(values - c, 1 + logits.dim()) * score
        if self.use_baseline:
            self.baseline = self.decay * self.baseline + (1 - self.decay) * float(values.mean())
        return grads
