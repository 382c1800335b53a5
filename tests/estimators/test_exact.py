"""exact_gradient / exact_multisample_gradient against float64 central finite differences."""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.estimators import MAX_STATES, exact_expectation, exact_gradient, exact_multisample_gradient
from concretelab.estimators.exact import enumerate_states

from ._problems import PROBLEMS


def _finite_difference(fn, logits: torch.Tensor, h: float = 1e-5) -> torch.Tensor:
    grad = torch.zeros_like(logits)
    flat = grad.view(-1)
    for i in range(logits.numel()):
        step = torch.zeros_like(logits).view(-1)
        step[i] = h
        step = step.view_as(logits)
        flat[i] = (fn(logits + step) - fn(logits - step)) / (2 * h)
    return grad


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_exact_gradient_matches_finite_differences(problem):
    p = PROBLEMS[problem]
    exact = exact_gradient(p.f, p.logits, p.family)
    fd = _finite_difference(lambda t: exact_expectation(p.f, t, p.family), p.logits)
    assert exact.shape == p.logits.shape
    torch.testing.assert_close(exact, fd, atol=1e-8, rtol=1e-6)


def test_exact_gradient_chunking_does_not_change_the_result():
    p = PROBLEMS["categorical_nonlinear"]
    whole = exact_gradient(p.f, p.logits, p.family)
    chunked = exact_gradient(p.f, p.logits, p.family, chunk_size=5)
    torch.testing.assert_close(whole, chunked, atol=1e-12, rtol=1e-12)


def test_exact_gradient_closed_form_for_linear_f():
    # E[w·b] = w·σ(θ): gradient w σ(θ)(1 − σ(θ)).
    logits = torch.tensor([[40.0, -3.0], [0.0, 2.5]], dtype=torch.float64)
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    grad = exact_gradient(lambda b: (b * w).sum(dim=(1, 2)), logits)
    s = torch.sigmoid(logits)
    torch.testing.assert_close(grad, w * s * (1 - s))


def test_enumerate_states_covers_every_state_once():
    logits = torch.zeros(2, 3)
    states = enumerate_states(logits, "categorical", 0, 9)
    assert states.shape == (9, 2, 3)
    assert torch.equal(states.sum(-1), torch.ones(9, 2))
    assert len({tuple(s.argmax(-1).tolist()) for s in states}) == 9


def test_exact_gradient_float32_logits_returns_float32():
    p = PROBLEMS["bernoulli_quadratic"]
    grad32 = exact_gradient(lambda b: p.f(b.double()).float(), p.logits.float())
    assert grad32.dtype == torch.float32
    torch.testing.assert_close(grad32.double(), exact_gradient(p.f, p.logits), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_twenty_binary_variables_are_enumerated():
    w = torch.linspace(-1, 1, 20, dtype=torch.float64)
    logits = torch.linspace(-2, 2, 20, dtype=torch.float64)
    grad = exact_gradient(lambda b: (b * w).sum(-1) ** 2, logits)  # 2**20 states, the limit
    s = torch.sigmoid(logits)
    mean = (w * s).sum()
    # E[(w·b)^2] = (w·s)^2 + Σ w_i^2 s_i (1 − s_i); its gradient in θ_i:
    expected = (2 * mean * w + w**2 * (1 - 2 * s)) * s * (1 - s)
    torch.testing.assert_close(grad, expected, atol=1e-10, rtol=1e-8)


def test_too_many_states_raises_naming_the_limit():
    f = lambda b: b.reshape(b.shape[0], -1).sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match="MAX_STATES"):
        exact_gradient(f, torch.zeros(21))
    with pytest.raises(ValueError, match=str(MAX_STATES)):
        exact_gradient(f, torch.zeros(13, 3), "categorical")  # 3**13 > 2**20
    with pytest.raises(ValueError, match="family"):
        exact_gradient(f, torch.zeros(3), "gaussian")


def _multisample_expectation(f, logits, k):
    # E[log mean exp f] over k iid draws, by brute force over all joint states
    states = enumerate_states(logits, "bernoulli", 0, 2 ** logits.numel())
    logp = (
        states * torch.nn.functional.logsigmoid(logits) + (1 - states) * torch.nn.functional.logsigmoid(-logits)
    ).sum(-1)
    values = f(states)
    total = torch.zeros((), dtype=torch.float64)
    n = states.shape[0]
    for index in range(n**k):
        members = [(index // n**j) % n for j in range(k)]
        total += logp[members].sum().exp() * (torch.logsumexp(values[members], 0) - math.log(k))
    return total


@pytest.mark.parametrize("k", [2, 3])
def test_exact_multisample_gradient_matches_finite_differences(k):
    logits = torch.tensor([0.4, -0.7], dtype=torch.float64)
    f = lambda b: 2.0 * b[:, 0] - 1.5 * b[:, 1] + b[:, 0] * b[:, 1]  # noqa: E731
    exact = exact_multisample_gradient(f, logits, k)
    fd = _finite_difference(lambda t: _multisample_expectation(f, t, k), logits)
    torch.testing.assert_close(exact, fd, atol=1e-8, rtol=1e-6)


def test_exact_multisample_with_one_sample_is_the_plain_gradient():
    p = PROBLEMS["categorical_quadratic"]
    logits = p.logits[:2]
    f = lambda b: p.f(torch.cat([b, torch.zeros(b.shape[0], 1, 3, dtype=b.dtype)], 1))  # noqa: E731
    torch.testing.assert_close(
        exact_multisample_gradient(f, logits, 1, "categorical"), exact_gradient(f, logits, "categorical")
    )


def test_exact_multisample_limit():
    f = lambda b: b.sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match="MAX_STATES"):
        exact_multisample_gradient(f, torch.zeros(7), 3)  # 128**3 > 2**20
    with pytest.raises(ValueError, match="num_samples"):
        exact_multisample_gradient(f, torch.zeros(2), 0)
