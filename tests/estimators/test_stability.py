"""Extreme inputs: logits up to ±50, temperatures 1e-3 ... 1e3, float32 and float64, every estimator.

"No NaN" alone is not enough there (an estimator returning zeros passes it), so each case checks:

1. every gradient estimate is finite and in the logits' dtype, and the estimates still carry information: in the
   coordinates whose distribution is not saturated (a logit of 0.3 next to ±50) they take more than one value;
2. every number the estimator holds stays finite: float and tensor attributes, the parameters and buffers of its
   modules (NVIL's baseline network and running moments, RELAX's network) and its optimizer's moments;
3. for the stateful estimators, the state in ``ADAPTED`` (REINFORCE's baseline, NVIL's network and running mean
   and variance, REBAR's and RELAX's η, log λ and network) changes from call to call and is used: the adapted
   estimator's estimates differ from a fresh one's on the same noise.

Draws: 3 calls of 64 draws each. With 8 draws a call, REBAR and RELAX at λ = 1e-3 in float32 saw no sample
whose relaxation was not saturated, returned exact zeros and never adapted (σ'(z/λ)/λ underflows unless
|z| ≲ 0.09, about 1 sample in 25); with 64 a call every case below adapts and has non-constant estimates.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from concretelab.estimators import ESTIMATORS, estimator_options, exact_gradient, get_estimator

TEMPERATURES = (1e-3, 1e-1, 1.0, 1e3)
CALLS = 3  # stateful estimators adapt in between
DRAWS = 64  # per call; see the module docstring for why not fewer

# the state each stateful estimator adapts, as named by _state; every entry must change between calls 1 and 3
ADAPTED = {
    "reinforce": ("baseline",),
    "nvil": ("net.weight", "net.bias", "moments.mean", "moments.var", "moments.count"),
    "rebar": ("eta_param", "log_temperature"),
    "relax": ("eta_param", "log_temperature", "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"),
    "double_cv": ("alpha_param",),
    "rodeo": ("alpha_param", "beta_param"),
}


# Estimators that sum over each variable's values exactly given the others (IndeCateR): with a single unsaturated
# variable their estimate of its gradient is exact, hence constant, instead of carrying the sample's noise.
RAO_BLACKWELLISED = ("indecater",)


def _objective(dtype: torch.dtype, size: int):
    w = torch.randn(size, size, dtype=dtype, generator=torch.Generator().manual_seed(0))

    def f(b: torch.Tensor) -> torch.Tensor:
        x = b.reshape(b.shape[0], -1)
        return (x @ w * x).sum(-1) + torch.exp(x).sum(-1)

    return f


def _logits(family: str, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Logits at ±50 with one unsaturated part, and the mask of the coordinates whose probability is in (0.01, 0.99)
    (Bernoulli: the 0.3; categorical: the 0.3 and 0.0 of the last row, whose middle category has probability e^-50)."""
    if family == "bernoulli":
        logits = torch.tensor([[50.0, -50.0, 0.3], [-50.0, 50.0, 50.0]], dtype=dtype)
        probs = torch.sigmoid(logits)
    else:
        logits = torch.tensor([[50.0, -50.0, 0.0], [-50.0, -50.0, 50.0], [0.3, -50.0, 0.0]], dtype=dtype)
        probs = torch.softmax(logits, dim=-1)
    return logits, (probs > 0.01) & (probs < 0.99)


def _state(est) -> dict[str, Tensor]:
    """Every number the estimator holds, detached and copied: float and tensor attributes, its modules' parameters
    and buffers (``"net.weight"``, ``"moments.var"``) and its optimizer's moments (``"optimizer.0.exp_avg"``)."""
    state: dict[str, Tensor] = {}
    for key, value in vars(est).items():
        if isinstance(value, float | Tensor):
            state[key] = torch.as_tensor(value).detach().clone()
        elif isinstance(value, nn.Module):
            for name, tensor in [*value.named_parameters(), *value.named_buffers()]:
                state[f"{key}.{name}"] = tensor.detach().clone()
        elif isinstance(value, torch.optim.Optimizer):
            for index, moments in value.state_dict()["state"].items():
                for name, tensor in moments.items():
                    state[f"{key}.{index}.{name}"] = torch.as_tensor(tensor).detach().clone()
    return state


def _cases(stateful_only: bool = False):
    for name, cls in ESTIMATORS.items():
        if stateful_only and not cls.stateful:
            continue
        for family in cls.families:
            temps = TEMPERATURES if "temperature" in estimator_options(name) else (None,)
            for t in temps:
                yield name, family, t


def _make(name: str, family: str, temperature: float | None):
    return get_estimator(name, family, **({} if temperature is None else {"temperature": temperature}))


def test_adapted_state_is_listed_for_every_stateful_estimator():
    """ADAPTED names the state of exactly the stateful estimators, so a new one cannot skip the checks below."""
    assert set(ADAPTED) == {name for name, cls in ESTIMATORS.items() if cls.stateful}


@pytest.mark.parametrize(("name", "family", "temperature"), list(_cases()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_and_informative_at_extreme_logits_and_temperatures(name, family, temperature, dtype):
    """Estimates finite, in the logits' dtype and not constant where p is not saturated; all held state finite."""
    logits, free = _logits(family, dtype)
    f = _objective(dtype, logits.numel())
    est = _make(name, family, temperature)
    gen = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(CALLS):
        d = est.per_draw(f, logits, est.min_samples, DRAWS, generator=gen)
        assert d.dtype == dtype
        assert torch.isfinite(d).all(), f"{name} {family} τ={temperature}: {d}"
        draws.append(d)
    values = torch.cat(draws)[:, free]
    if name in RAO_BLACKWELLISED:  # one free variable, the others saturated: every estimate is the exact gradient
        exact = exact_gradient(f, logits, family)[free]
        torch.testing.assert_close(values, exact.expand_as(values))
    else:
        assert values.unique().numel() > 1, f"{name} {family} τ={temperature}: constant estimates {values.unique()}"
    for key, value in _state(est).items():
        assert torch.isfinite(value).all(), f"{name} {family} τ={temperature}: {key} = {value}"


@pytest.mark.parametrize(("name", "family", "temperature"), list(_cases(stateful_only=True)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adapted_state_changes_and_is_used_at_extreme_inputs(name, family, temperature, dtype):
    """Each entry of ADAPTED changes between calls 1 and 3 and stays finite, and the adapted estimator's estimates
    differ from a fresh estimator's on the same noise, so the state is neither frozen nor ignored."""
    logits, free = _logits(family, dtype)
    f = _objective(dtype, logits.numel())
    est = _make(name, family, temperature)
    gen = torch.Generator().manual_seed(0)
    snapshots = []
    for _ in range(CALLS):
        est.per_draw(f, logits, est.min_samples, DRAWS, generator=gen)
        snapshots.append(_state(est))
    first, last = snapshots[0], snapshots[-1]
    for key in ADAPTED[name]:
        assert key in first and key in last, f"{name}: no state {key!r} among {sorted(last)}"
        assert torch.isfinite(last[key]).all(), f"{name} {family} τ={temperature}: {key} = {last[key]}"
        assert not torch.equal(first[key], last[key]), f"{name} {family} τ={temperature}: {key} did not adapt"
    adapted = est.per_draw(f, logits, est.min_samples, DRAWS, generator=torch.Generator().manual_seed(1))
    fresh = _make(name, family, temperature).per_draw(
        f, logits, est.min_samples, DRAWS, generator=torch.Generator().manual_seed(1)
    )
    assert not torch.equal(adapted[:, free], fresh[:, free]), f"{name} {family} τ={temperature}: state unused"


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_saturated_logits_give_zero_score_function_gradient(name):
    # at logits ±50 float64 the distribution is deterministic to 2e-22: every estimator is finite and tiny
    # for unbiased ones (straight-through-type ones see σ'(50) ≈ 2e-22 as well)
    logits = torch.tensor([50.0, -50.0], dtype=torch.float64)
    est = get_estimator(name)
    if "bernoulli" not in est.families:
        pytest.skip("no binary form")
    f = lambda b: (b * torch.tensor([3.0, -2.0], dtype=b.dtype)).sum(-1) + 1.0  # noqa: E731
    draws = est.per_draw(f, logits, est.min_samples, 64, generator=torch.Generator().manual_seed(0))
    if name == "concrete":  # the relaxed sample is not saturated by the noise: only finiteness holds
        assert torch.isfinite(draws).all()
    else:
        assert draws.abs().max() < 1e-15
