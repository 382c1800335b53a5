"""The example registry of every public distribution (torch's ``EXAMPLES`` pattern) and shared helpers.

``EXAMPLES`` maps each public class of :mod:`concretelab.distributions` to parameter dicts; the
generic tests in ``test_registry.py`` run over all of them, and ``test_registry_is_complete`` fails
when a public class is missing here. Parameters that should carry gradients are created with
``requires_grad=True`` by :func:`make`, freshly on every call, so tests never share a graph.

Seeds: every random draw in this test tree comes from an explicitly seeded ``torch.Generator`` (or a
seeded NumPy generator); statistical tests state the failure rate of their threshold at a fresh seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.distributions import Distribution

from concretelab.distributions import (
    BinConcrete,
    Concrete,
    ExpConcrete,
    HardConcrete,
    LogitBinConcrete,
    StraightThroughBinConcrete,
    StraightThroughConcrete,
)


@dataclass(frozen=True)
class Example:
    """One parameter set of a class; ``build()`` returns fresh leaf tensors (float64 unless stated)."""

    cls: type[Distribution]
    build: Callable[[], dict[str, Any]]
    name: str

    def make(self, **overrides: Any) -> Distribution:
        params = self.build()
        params.update(overrides)
        return self.cls(**params)


def _leaf(values: Any, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype).requires_grad_()


_CAT = [
    ("scalar temperature", lambda: {"temperature": 0.5, "logits": _leaf([0.1, -1.3, 2.0])}),
    (
        "batched, tensor temperature",
        lambda: {"temperature": _leaf([0.3, 2.0]), "logits": _leaf([[0.0, 1.0, -2.0, 0.5], [3.0, 0.0, 0.0, -1.0]])},
    ),
    ("probs", lambda: {"temperature": 1.0, "probs": torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)}),
    (
        "(N, 1) temperature, float32",
        lambda: {
            "temperature": _leaf([[0.1], [1.0]], torch.float32),
            "logits": _leaf([[0.0, 1.0], [2.0, -3.0]], torch.float32),
        },
    ),
    (
        "-inf logit",
        lambda: {"temperature": 0.7, "logits": torch.tensor([0.5, float("-inf"), -0.5], dtype=torch.float64)},
    ),
]

_BIN = [
    ("scalar", lambda: {"temperature": 0.5, "logits": _leaf(0.3)}),
    (
        "batched, tensor temperature",
        lambda: {"temperature": _leaf([0.2, 1.0, 4.0]), "logits": _leaf([-2.0, 0.0, 40.0])},
    ),
    ("probs", lambda: {"temperature": 1.5, "probs": torch.tensor([0.1, 0.9], dtype=torch.float64)}),
    ("float32 matrix", lambda: {"temperature": 0.25, "logits": _leaf([[1.0, -1.0], [0.0, 5.0]], torch.float32)}),
]

_HARD = [
    ("defaults", lambda: {"temperature": 2 / 3, "logits": _leaf([0.0, 2.0, -2.0])}),
    (
        "wide stretch, tensor temperature",
        lambda: {"temperature": _leaf([0.5, 1.0]), "logits": _leaf([1.0, -0.5]), "lower": -0.5, "upper": 1.5},
    ),
]


def _examples(cls: type[Distribution], specs: list[tuple[str, Callable[[], dict[str, Any]]]]) -> list[Example]:
    return [Example(cls, build, f"{cls.__name__}[{name}]") for name, build in specs]


EXAMPLES: dict[type[Distribution], list[Example]] = {
    ExpConcrete: _examples(ExpConcrete, _CAT),
    Concrete: _examples(Concrete, _CAT),
    StraightThroughConcrete: _examples(StraightThroughConcrete, _CAT),
    BinConcrete: _examples(BinConcrete, _BIN),
    LogitBinConcrete: _examples(LogitBinConcrete, _BIN),
    StraightThroughBinConcrete: _examples(StraightThroughBinConcrete, _BIN),
    HardConcrete: _examples(HardConcrete, _HARD),
}

ALL_EXAMPLES: list[Example] = [example for examples in EXAMPLES.values() for example in examples]


def example_id(example: Example) -> str:
    return example.name


def noise_for(dist: Distribution, sample_shape: tuple[int, ...] = (), seed: int = 0) -> torch.Tensor:
    """Standard noise of the right kind (Gumbel for the categorical families, logistic for the binary
    ones) shaped like ``dist.rsample(sample_shape)``, in the dtype the distribution computes in."""
    from concretelab.distributions._base import CategoricalConcreteParams
    from concretelab.functional import compute_dtype, sample_gumbel, sample_logistic

    shape = dist._extended_shape(torch.Size(sample_shape))
    dtype = compute_dtype(dist.logits.dtype)
    draw = sample_gumbel if isinstance(dist, CategoricalConcreteParams) else sample_logistic
    return draw(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
