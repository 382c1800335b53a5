"""The shared interface: registry, shapes, reduce=False, per_draw, f-evaluation counts, generators, errors."""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.estimators import (
    ESTIMATORS,
    GradientEstimator,
    estimator_options,
    exact_gradient,
    get_estimator,
)

# one set of example options per estimator (a new estimator must be added here)
EXAMPLES = {
    "reinforce": {"decay": 0.5},
    "reinforce_loo": {},
    "nvil": {"hidden": 4},
    "vimco": {},
    "straight_through": {},
    "st_gumbel": {"temperature": 0.5},
    "gumbel_rao": {"temperature": 0.5, "inner_samples": 3},
    "reinmax": {"temperature": 2.0},
    "concrete": {"temperature": 0.5},
    "rebar": {"temperature": 0.3, "eta": 0.5},
    "relax": {"hidden": 8, "seed": 3},
    "arm": {},
    "disarm": {},
    "arms": {},
    "indecater": {},
    "double_cv": {"alpha": 0.5, "lr": 1e-3},
    "rodeo": {"alpha": 0.5, "beta": 0.2},
}

NAMES = (
    "reinforce reinforce_loo nvil vimco straight_through st_gumbel gumbel_rao reinmax concrete rebar relax arm disarm "
    "arms indecater double_cv rodeo"
).split()


def test_registry_has_every_estimator_and_examples():
    assert set(ESTIMATORS) == set(NAMES)
    assert set(EXAMPLES) == set(NAMES)
    for name, cls in ESTIMATORS.items():
        assert issubclass(cls, GradientEstimator)
        assert cls.name == name
        assert cls.__doc__ and cls.__module__
        doc = __import__(cls.__module__, fromlist=["_"]).__doc__
        for part in ("Approximates", "With", "Requires", "References"):
            assert part in doc, f"{name}: module docstring lacks {part}"
        assert isinstance(cls.unbiased, bool)
        # a fixed count, or None where it grows with the problem (IndeCateR: see evaluations(logits))
        assert cls.evaluations_per_sample in ((None,) if name == "indecater" else (1, 2, 3))
        assert set(cls.families) <= {"bernoulli", "categorical"}
        assert set(EXAMPLES[name]) <= set(estimator_options(name))
        assert cls.objective == ("multisample" if name == "vimco" else "expectation")


def test_categorical_support_is_as_documented():
    binary_only = sorted(n for n, cls in ESTIMATORS.items() if "categorical" not in cls.families)
    assert binary_only == ["arm", "arms", "disarm", "double_cv", "rodeo"]


class CountingObjective:
    """A quadratic objective that records how many rows it was called with."""

    def __init__(self, size: int) -> None:
        self.w = torch.linspace(-1.0, 1.0, size, dtype=torch.float64)
        self.rows = 0

    def __call__(self, b: torch.Tensor) -> torch.Tensor:
        self.rows += b.shape[0]
        x = b.reshape(b.shape[0], -1)
        return (x * self.w).sum(-1) ** 2


def _logits(family: str) -> torch.Tensor:
    """The same (2, 3) tensor serves both families: six Bernoulli units, or two categorical variables of K = 3."""
    assert family in ("bernoulli", "categorical")
    return torch.tensor([[0.3, -1.0, 2.0], [0.0, 1.0, -0.5]], dtype=torch.float64)


CASES = [(n, fam) for n in NAMES for fam in ESTIMATORS[n].families]


@pytest.mark.parametrize(("name", "family"), CASES)
def test_shapes_and_evaluation_counts(name, family):
    logits = _logits(family)
    f = CountingObjective(logits.numel())
    est = get_estimator(name, family, **EXAMPLES[name])
    k = 4
    grad = est.estimate(f, logits, k, generator=torch.Generator().manual_seed(0))
    assert grad.shape == logits.shape and grad.dtype == logits.dtype and not grad.requires_grad
    assert f.rows == est.evaluations(logits) * k
    if est.evaluations_per_sample is not None:
        assert est.evaluations(logits) == est.evaluations_per_sample
    draws = est.estimate(f, logits, k, generator=torch.Generator().manual_seed(0), reduce=False)
    expected_rows = 1 if est.multi_sample else k
    assert draws.shape == (expected_rows, *logits.shape)
    if not est.stateful:  # same seed, same samples: the mean of the draws is the estimate
        torch.testing.assert_close(draws.mean(0), grad)
    per_draw = est.per_draw(f, logits, k, 5, generator=torch.Generator().manual_seed(1))
    assert per_draw.shape == (5, *logits.shape)


@pytest.mark.parametrize(("name", "family"), CASES)
def test_same_generator_seed_gives_the_same_estimate(name, family):
    logits = _logits(family)
    f = CountingObjective(logits.numel())
    results = []
    for _ in range(2):
        est = get_estimator(name, family, **EXAMPLES[name])
        g = torch.Generator().manual_seed(7)
        results.append([est.estimate(f, logits, 3, generator=g) for _ in range(3)])
        if est.stateful:
            est.reset()
            g = torch.Generator().manual_seed(7)
            again = [est.estimate(f, logits, 3, generator=g) for _ in range(3)]
            for a, b in zip(results[-1], again, strict=True):
                torch.testing.assert_close(a, b)  # reset() restores the initial state
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)


def test_per_draw_is_a_mean_over_num_samples():
    # the variance of a K-sample estimate is the one-sample variance over K (single-sample estimators)
    logits = _logits("bernoulli")
    f = CountingObjective(logits.numel())
    est = get_estimator("disarm")
    one = est.per_draw(f, logits, 1, 20_000, generator=torch.Generator().manual_seed(0))
    four = est.per_draw(f, logits, 4, 20_000, generator=torch.Generator().manual_seed(1))
    ratio = (one.var(0).sum() / four.var(0).sum()).item()
    assert 3.6 < ratio < 4.4
    exact = exact_gradient(f, logits)
    assert ((four.mean(0) - exact).abs() <= 5 * four.std(0) / math.sqrt(20_000) + 1e-9).all()


def test_works_on_float32_and_leaves_the_input_alone():
    logits = torch.tensor([0.5, -0.5], requires_grad=True)
    f = lambda b: (b * b).sum(-1)  # noqa: E731
    for name in NAMES:
        grad = get_estimator(name).estimate(f, logits, 2, generator=torch.Generator().manual_seed(0))
        assert grad.dtype == torch.float32 and not grad.requires_grad
    assert logits.grad is None


@pytest.mark.parametrize(("name", "family"), CASES)
def test_a_given_generator_leaves_the_global_rng_alone(name, family):
    logits = _logits(family)
    f = CountingObjective(logits.numel())
    state = torch.random.get_rng_state()
    est = get_estimator(name, family, **EXAMPLES[name])
    est.per_draw(f, logits, est.min_samples, 3, generator=torch.Generator().manual_seed(0))
    est.reset()
    assert torch.equal(torch.random.get_rng_state(), state)
