"""Small fixed test problems with exact gradients: Bernoulli (d = 4) and categorical (3 variables, K = 3).

Each objective maps a batch (M, *logits.shape) to (M,), row by row, in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Objective = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Problem:
    name: str
    family: str
    logits: Tensor
    f: Objective


def _symmetric(n: int, seed: int) -> Tensor:
    w = torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return (w + w.T) / 2


_W4 = _symmetric(4, 3)
_C4 = torch.tensor([0.2, 0.7, -0.3, 0.5], dtype=torch.float64)
_W9 = _symmetric(9, 5)
_C9 = torch.linspace(-0.5, 0.5, 9, dtype=torch.float64)


def bernoulli_quadratic(b: Tensor) -> Tensor:
    """(b − c)ᵀ W (b − c) + c·b: quadratic."""
    x = b - _C4
    return (x @ _W4 * x).sum(-1) + (b * _C4).sum(-1)


def bernoulli_nonlinear(b: Tensor) -> Tensor:
    """exp(3 c·b) + sin(3 b_0): far from quadratic, so straight-through-type estimators are biased."""
    return torch.exp(3 * (b * _C4).sum(-1)) + torch.sin(3 * b[:, 0])


def categorical_quadratic(b: Tensor) -> Tensor:
    x = b.reshape(b.shape[0], 9) - 0.25
    return (x @ _W9 * x).sum(-1)


def categorical_nonlinear(b: Tensor) -> Tensor:
    x = b.reshape(b.shape[0], 9)
    return torch.exp(1.5 * (x * _C9).sum(-1)) + torch.cos(2 * x[:, 0])


BERNOULLI_LOGITS = torch.tensor([0.5, -1.0, 1.5, 0.2], dtype=torch.float64)
CATEGORICAL_LOGITS = torch.tensor([[0.3, -0.8, 0.5], [1.2, 0.0, -0.4], [-0.6, 0.9, 0.1]], dtype=torch.float64)

PROBLEMS = {
    "bernoulli_quadratic": Problem("bernoulli_quadratic", "bernoulli", BERNOULLI_LOGITS, bernoulli_quadratic),
    "bernoulli_nonlinear": Problem("bernoulli_nonlinear", "bernoulli", BERNOULLI_LOGITS, bernoulli_nonlinear),
    "categorical_quadratic": Problem("categorical_quadratic", "categorical", CATEGORICAL_LOGITS, categorical_quadratic),
    "categorical_nonlinear": Problem("categorical_nonlinear", "categorical", CATEGORICAL_LOGITS, categorical_nonlinear),
}


def z_scores(draws: Tensor, exact: Tensor) -> Tensor:
    """(mean − exact) / standard error, per coordinate."""
    se = draws.std(dim=0) / draws.shape[0] ** 0.5
    return (draws.mean(dim=0) - exact) / se


def within_confidence(draws: Tensor, exact: Tensor, z: float = 5.0, slack: float = 1e-6) -> bool:
    """|mean − exact| <= z · SE + slack for every coordinate."""
    se = draws.std(dim=0) / draws.shape[0] ** 0.5
    return bool(((draws.mean(dim=0) - exact).abs() <= z * se + slack).all())
