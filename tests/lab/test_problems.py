"""The lab's problems: closed-form toy gradient, enumerable references, and f accepting relaxed points."""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.estimators import exact_gradient
from concretelab.lab.problems import categorical_problem, load_binarized_mnist_rows, sbn_problem, toy_problem


@pytest.mark.parametrize("target", [0.49, 0.499])
def test_toy_gradient_is_closed_form(target: float) -> None:
    problem = toy_problem(target, logits=[0.0, 1.5, -2.0])
    theta = problem.logits
    expected = torch.sigmoid(theta) * torch.sigmoid(-theta) * (1 - 2 * target)  # σ'(θ)((1 − t)² − t²)
    torch.testing.assert_close(exact_gradient(problem.f, theta), expected, rtol=1e-12, atol=0)
    assert problem.key == f"toy-t{target:g}-theta0_1.5_-2"
    assert toy_problem(target).key == f"toy-t{target:g}"


def test_categorical_f_is_nonlinear_and_accepts_simplex_points(generator) -> None:
    problem = categorical_problem(3, 4, seed=1)
    relaxed = torch.softmax(torch.randn(7, 3, 4, generator=generator(0), dtype=torch.float64), dim=-1)
    values = problem.f(relaxed)
    assert values.shape == (7,) and bool(torch.isfinite(values).all())
    one_hot = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2], [3, 3, 3]]), 4).double()
    mid = 0.5 * (one_hot[0] + one_hot[1])
    f0, f1, fm = problem.f(torch.stack([one_hot[0], one_hot[1], mid]))
    assert not math.isclose(float(fm), float(0.5 * (f0 + f1)))  # not affine
    grad = exact_gradient(problem.f, problem.logits, "categorical")
    assert grad.shape == (3, 4) and float(grad.abs().sum()) > 0
    torch.testing.assert_close(grad.sum(dim=-1), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_bad_problem_arguments() -> None:
    with pytest.raises(ValueError, match="target"):
        toy_problem(math.nan)
    with pytest.raises(ValueError, match="logits"):
        toy_problem(0.49, logits=[])
    with pytest.raises(ValueError, match="categories"):
        categorical_problem(3, 1)
    with pytest.raises(ValueError, match="latents"):
        sbn_problem(40)


def test_sbn_problem_small() -> None:
    images, source = load_binarized_mnist_rows(3)
    assert images.shape == (3, 784) and "embedded" in source and set(images.unique().tolist()) <= {0.0, 1.0}
    problem = sbn_problem(4, train_images=20, steps=5, seed=0)
    points = torch.tensor([[0.0, 1.0, 0.0, 1.0], [0.3, 0.9, 0.5, 0.1]], dtype=torch.float64)
    values = problem.f(points)
    assert values.shape == (2,) and bool(torch.isfinite(values).all()) and bool((values < 0).all())
    grad = exact_gradient(problem.f, problem.logits)
    assert grad.shape == (4,) and bool(torch.isfinite(grad).all())
    assert sbn_problem(4, train_images=20, steps=5, seed=0).logits.equal(problem.logits)  # seeded
