"""Per-example objectives: f returns one value per example, (M, *batch), and each example is scored against its own.

The reference for example i is the exact gradient of that example alone, computed through the one-value-per-row
interface (``exact_gradient`` of f_i on logits_i), so the per-example code path is checked against a path it does
not use. The z-test is the one of ``test_unbiased`` (5 standard errors, N = 20 000 draws, fixed seeds).
"""

from __future__ import annotations

import pytest
import torch

from concretelab.estimators import ESTIMATORS, exact_gradient, exact_multisample_gradient, get_estimator

from ._problems import PROBLEMS, within_confidence, z_scores

NUM_DRAWS = 20_000
EXAMPLE_SCALES = (1.0, -0.7, 2.0)  # f_i = scale_i · f + i: different values and signs per example

BERNOULLI = PROBLEMS["bernoulli_nonlinear"]
CATEGORICAL = PROBLEMS["categorical_nonlinear"]


def _batch(family: str) -> tuple[torch.Tensor, object, list]:
    """(logits of 3 examples, the per-example f, the one-example f_i of each)."""
    problem = BERNOULLI if family == "bernoulli" else CATEGORICAL
    shifts = torch.tensor([[0.0] * problem.logits.shape[-1], [0.4] * problem.logits.shape[-1],
                           [-0.8] * problem.logits.shape[-1]], dtype=torch.float64)
    logits = torch.stack([problem.logits + shift for shift in shifts])  # (3, *shape)
    singles = [lambda b, i=i: EXAMPLE_SCALES[i] * problem.f(b) + i for i in range(3)]

    def f(b: torch.Tensor) -> torch.Tensor:  # (M, 3, *shape) -> (M, 3)
        return torch.stack([single(b[:, i]) for i, single in enumerate(singles)], dim=1)

    return logits, f, singles


def _estimator(name: str, family: str):
    return get_estimator(name, family)


UNBIASED = [n for n, c in ESTIMATORS.items() if c.unbiased and n != "vimco"]
CASES = [(n, fam) for n in UNBIASED for fam in ESTIMATORS[n].families]


@pytest.mark.parametrize(("name", "family"), CASES)
def test_per_example_estimates_are_unbiased_for_each_example(name, family):
    logits, f, singles = _batch(family)
    est = _estimator(name, family)
    draws = est.per_draw(f, logits, est.min_samples, NUM_DRAWS, generator=torch.Generator().manual_seed(7))
    assert draws.shape == (NUM_DRAWS, *logits.shape)
    exact = torch.stack([exact_gradient(single, logits[i], family) for i, single in enumerate(singles)])
    assert within_confidence(draws, exact), f"z-scores {z_scores(draws, exact)}"


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_one_example_per_example_equals_one_value_per_row(name):
    """With one example, values (M, 1) and values (M,) are the same numbers: the estimates are bit for bit equal."""
    family = "bernoulli"
    logits = BERNOULLI.logits.unsqueeze(0)  # (1, 4)
    est_a, est_b = _estimator(name, family), _estimator(name, family)
    k = max(2, est_a.min_samples)
    a = est_a.per_draw(lambda b: BERNOULLI.f(b[:, 0]), logits, k, 64, generator=torch.Generator().manual_seed(3))
    b = est_b.per_draw(lambda b: BERNOULLI.f(b[:, 0]).unsqueeze(1), logits, k, 64,
                       generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_per_example_values_lower_the_variance_of_a_score_function_estimator():
    """Scored against the sum over 8 examples, example i's signal carries the other 7 examples' values as noise; scored
    against its own it does not. DisARM's variance must drop in every coordinate: at this seed by factors of 1.8 to
    215 (median 12.6), with 4000 draws per estimate, so a threshold of 1.5 holds by a margin in the worst one."""
    logits = BERNOULLI.logits.expand(8, 4) + torch.linspace(-1, 1, 8, dtype=torch.float64).unsqueeze(1)
    scales = torch.linspace(0.5, 2.0, 8, dtype=torch.float64)

    def per_example(b):  # (M, 8, 4) -> (M, 8)
        return scales * torch.stack([BERNOULLI.f(b[:, i]) for i in range(8)], dim=1)

    est = get_estimator("disarm")
    own = est.per_draw(per_example, logits, 1, 4000, generator=torch.Generator().manual_seed(1))
    summed = est.per_draw(lambda b: per_example(b).sum(1), logits, 1, 4000, generator=torch.Generator().manual_seed(1))
    ratio = summed.var(0) / own.var(0)
    assert bool((ratio > 1.5).all()), ratio.min()
    exact = torch.stack([exact_gradient(lambda b, i=i: scales[i] * BERNOULLI.f(b), logits[i]) for i in range(8)])
    assert within_confidence(own, exact) and within_confidence(summed, exact)  # one target, two variances


BIASED = [n for n, c in ESTIMATORS.items() if not c.unbiased]


@pytest.mark.parametrize("name", BIASED)
@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_biased_per_example_estimates_have_each_example_s_own_mean(name, family):
    """A biased estimator has no exact target, but example i's per-example estimate must have the mean of the estimator
    run on example i alone: a two-sample z-test, |mean_a − mean_b| <= 5 · sqrt(SE_a² + SE_b²) in every coordinate."""
    logits, f, singles = _batch(family)
    est = _estimator(name, family)
    together = est.per_draw(f, logits, 1, NUM_DRAWS, generator=torch.Generator().manual_seed(11))
    for i, single in enumerate(singles):
        alone = _estimator(name, family).per_draw(single, logits[i], 1, NUM_DRAWS,
                                                  generator=torch.Generator().manual_seed(20 + i))
        a = together[:, i]
        se = (a.var(0) / NUM_DRAWS + alone.var(0) / NUM_DRAWS).sqrt()
        assert bool(((a.mean(0) - alone.mean(0)).abs() <= 5 * se + 1e-9).all()), (i, (a.mean(0) - alone.mean(0)) / se)


def test_exact_gradient_of_a_per_example_f_is_each_example_s_gradient():
    for family in ("bernoulli", "categorical"):
        logits, f, singles = _batch(family)
        expected = torch.stack([exact_gradient(single, logits[i], family) for i, single in enumerate(singles)])
        torch.testing.assert_close(exact_gradient(f, logits, family), expected)


def test_per_example_shape_errors_name_the_shapes():
    logits, _, _ = _batch("bernoulli")
    est = get_estimator("disarm")
    with pytest.raises(ValueError, match=r"one value per example, of shape \(2, 3\).*got \(2, 4\)"):
        est.estimate(lambda b: torch.zeros(b.shape[0], 4, dtype=b.dtype), logits, 1)
    with pytest.raises(ValueError, match=r"got \(2, 3, 4\)"):  # no axis left: not a per-example value
        est.estimate(lambda b: b.sum(0, keepdim=True).expand_as(b), logits, 1)
    with pytest.raises(ValueError, match="exact_multisample_gradient needs one value of f per row"):
        exact_multisample_gradient(lambda b: b.sum(-1), logits[:2, :2], 2)
