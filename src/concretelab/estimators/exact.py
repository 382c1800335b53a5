"""Exact gradients by enumeration: the reference every estimator is tested against.

    ∂/∂θ E_{b ~ p_θ}[f(b)] = Σ_b f(b) ∂p_θ(b)/∂θ,

summed over every joint state of the factorised Bernoulli or categorical p_θ, in chunks, with the
probabilities and their gradients in float64 (f is called on points in the dtype of the logits). For
VIMCO's multi-sample objective the sum runs over every joint set of ``num_samples`` draws:

    ∂/∂θ E_{b^1..b^S iid p_θ}[log (1/S) Σ_s exp f(b^s)].

Enumeration is limited to ``MAX_STATES`` = 2**20 states (20 binary variables, or e.g. 12 ternary
variables); beyond that a ValueError names the limit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from concretelab.checks import check_int as check_count
from concretelab.estimators._base import (
    FAMILIES,
    Objective,
    check_logits,
    evaluate,
)
from concretelab.functional import bernoulli_log_prob, categorical_log_prob

__all__ = ["MAX_STATES", "enumerate_states", "exact_expectation", "exact_gradient", "exact_multisample_gradient"]

MAX_STATES = 2**20


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def _num_states(logits: Tensor, family: str) -> tuple[int, int, int]:
    """(number of variables, categories per variable, number of joint states)."""
    if family == "bernoulli":
        n, k = logits.numel(), 2
    else:
        k = logits.shape[-1]
        n = logits.numel() // k
    return n, k, k**n


def _limit_error(logits: Tensor, family: str, states: int) -> ValueError:
    return ValueError(
        f"exact enumeration of logits of shape {tuple(logits.shape)} ({family}) needs {states} states; "
        f"the limit is MAX_STATES = {MAX_STATES} (2**20: 20 binary variables)"
    )


def enumerate_states(logits: Tensor, family: str, start: int, stop: int) -> Tensor:
    """Joint states ``start..stop-1`` in mixed-radix order, shape (stop − start, *logits.shape).

    Bernoulli: bit i of the index is variable i (row-major over ``logits``); categorical: digit i in base K
    is the category of variable i, returned one-hot.
    """
    n, k, _ = _num_states(logits, family)
    index = torch.arange(start, stop, device=logits.device, dtype=torch.int64)
    radix = k ** torch.arange(n, device=logits.device, dtype=torch.int64)
    digits = (index.unsqueeze(1) // radix) % k  # (M, n)
    if family == "bernoulli":
        return digits.to(logits.dtype).reshape(-1, *logits.shape)
    one_hot = torch.nn.functional.one_hot(digits, k).to(logits.dtype)  # (M, n, K)
    return one_hot.reshape(-1, *logits.shape)


def _log_prob(states: Tensor, logits: Tensor, family: str) -> Tensor:
    """log p_θ(state) summed over variables: (M,)."""
    if family == "bernoulli":
        return bernoulli_log_prob(logits, states).reshape(states.shape[0], -1).sum(dim=1)
    return categorical_log_prob(logits, states).reshape(states.shape[0], -1).sum(dim=1)


def _prepare(logits: Tensor, family: str, chunk_size: int) -> tuple[int, Tensor]:
    _check_family(family)
    check_logits(logits, family)
    check_count("chunk_size", chunk_size)
    _, _, states = _num_states(logits, family)
    if states > MAX_STATES:
        raise _limit_error(logits, family, states)
    return states, logits.detach().to(torch.float64)


def _summed(values: Tensor) -> Tensor:
    """f's values per row: summed over the examples of a per-example f."""
    return values.reshape(values.shape[0], -1).sum(1) if values.dim() > 1 else values


def exact_gradient(f: Objective, logits: Tensor, family: str = "bernoulli", *, chunk_size: int = 65536) -> Tensor:
    """∂/∂θ E[f(b)] = Σ_b f(b) p_θ(b) ∇_θ log p_θ(b), by enumeration in chunks; shaped like ``logits``.

    Computed in float64 and returned in the dtype of ``logits``. A per-example f (values (M, *batch), see
    ``concretelab.estimators``) gives every example's ∂/∂θ_i E[f_i(b_i)]: the gradient of E[Σ_i f_i(b_i)], as θ_i
    moves only example i's term.
    """
    states, theta = _prepare(logits, family, chunk_size)
    theta = theta.requires_grad_(True)
    grad = torch.zeros_like(theta)
    for start in range(0, states, chunk_size):
        points = enumerate_states(logits.detach(), family, start, min(start + chunk_size, states))
        with torch.no_grad():
            values = _summed(evaluate(f, points)).detach().to(torch.float64)
        with torch.enable_grad():
            prob = _log_prob(points.to(torch.float64), theta, family).exp()
            (chunk_grad,) = torch.autograd.grad((prob * values).sum(), theta)
        grad += chunk_grad
    return grad.to(logits.dtype)


def exact_expectation(f: Objective, logits: Tensor, family: str = "bernoulli", *, chunk_size: int = 65536) -> Tensor:
    """E[f(b)] = Σ_b p_θ(b) f(b) by enumeration, a float64 scalar (for finite-difference checks); for a per-example f,
    E[Σ_i f_i(b_i)]."""
    states, theta = _prepare(logits, family, chunk_size)
    total = torch.zeros((), dtype=torch.float64, device=logits.device)
    for start in range(0, states, chunk_size):
        points = enumerate_states(logits.detach(), family, start, min(start + chunk_size, states))
        with torch.no_grad():
            values = _summed(evaluate(f, points)).to(torch.float64)
            total += (_log_prob(points.to(torch.float64), theta, family).exp() * values).sum()
    return total


def exact_multisample_gradient(
    f: Objective, logits: Tensor, num_samples: int, family: str = "bernoulli", *, chunk_size: int = 65536
) -> Tensor:
    """∂/∂θ E[log (1/S) Σ_s exp f(b^s)] over S = ``num_samples`` iid draws (VIMCO's objective), exactly.

    Enumerates the states once (f is called on each once), then every joint S-tuple of them: the number of
    tuples, states**S, must not exceed ``MAX_STATES``. Returned in the dtype of ``logits``.
    """
    check_count("num_samples", num_samples)
    _, theta = _prepare(logits, family, chunk_size)
    _, _, states = _num_states(logits, family)
    tuples = states**num_samples
    if tuples > MAX_STATES:
        raise ValueError(
            f"exact multi-sample enumeration needs states**num_samples = {states}**{num_samples} = {tuples} "
            f"joint draws; the limit is MAX_STATES = {MAX_STATES}"
        )
    points = enumerate_states(logits.detach(), family, 0, states)
    with torch.no_grad():
        values = evaluate(f, points).detach().to(torch.float64)  # (states,)
    if values.dim() > 1:
        raise ValueError(f"exact_multisample_gradient needs one value of f per row, shape ({states},); got a "
                         f"per-example f with values of shape {tuple(values.shape)}")
    theta = theta.requires_grad_(True)
    grad = torch.zeros_like(theta)
    radix = states ** torch.arange(num_samples, dtype=torch.int64, device=logits.device)
    log_s = math.log(num_samples)
    for start in range(0, tuples, chunk_size):
        index = torch.arange(start, min(start + chunk_size, tuples), dtype=torch.int64, device=logits.device)
        members = (index.unsqueeze(1) // radix) % states  # (M, S) state of each draw
        objective = torch.logsumexp(values[members], dim=1) - log_s  # (M,)
        with torch.enable_grad():
            log_p = _log_prob(points.to(torch.float64), theta, family)  # (states,)
            prob = log_p[members].sum(dim=1).exp()
            (chunk_grad,) = torch.autograd.grad((prob * objective).sum(), theta)
        grad += chunk_grad
    return grad.to(logits.dtype)
