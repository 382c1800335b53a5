"""A remembered log-space point is never used for a tensor whose values changed after sampling (issue 10.1).

Every route of an in-place change is tried: the tensor itself, a change under ``no_grad``, a view, an
inference-mode tensor (which has no version counter: its record compares a snapshot), ``.data`` (which has its
own version counter) and a NumPy alias. After the change, ``log_prob`` must equal the density of the new values
computed from scratch (a clone, which no record knows); that path is checked against 50-digit mpmath in
test_reference_accuracy.py. The default guard (a stamp: version counter, data pointer, storage offset, shape,
stride) sees every route PyTorch's version counter sees, and a sample's storage is shared copy-on-write with the
record, so that a write by any route (``.data`` and NumPy writes bypass the version counter) copies it, which an O(1)
query sees. Writes through ``.data`` or NumPy into the *parameters* or the caller's *noise* are seen under the
``"values"`` guard (:func:`concretelab.distributions.record_guard`); docs/api.md explains the choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from concretelab.distributions import (
    BinConcrete,
    Concrete,
    ExpConcrete,
    HardConcrete,
    LogitBinConcrete,
    StraightThroughBinConcrete,
    StraightThroughConcrete,
    record_guard,
)

FAMILIES: dict[str, tuple[Callable[[torch.Tensor], object], float]] = {
    # name: (constructor from logits, a valid value to write into the sample)
    "Concrete": (lambda a: Concrete(0.5, logits=a), 1 / 3),
    "ExpConcrete": (lambda a: ExpConcrete(0.5, logits=a), -math.log(3)),
    "BinConcrete": (lambda a: BinConcrete(0.5, logits=a), 0.5),
    "LogitBinConcrete": (lambda a: LogitBinConcrete(0.5, logits=a), 0.0),
    "HardConcrete": (lambda a: HardConcrete(0.5, logits=a), 0.5),
}


def _logits(name: str) -> torch.Tensor:
    return torch.tensor([[0.3, -1.2, 2.0]]) if "Bin" not in name and "Hard" not in name else torch.tensor([0.3, -1.2])


def _change(route: str, x: torch.Tensor, value: float) -> torch.Tensor:
    """Overwrite every element of x with ``value`` through ``route``; returns the tensor to score."""
    if route == "in place":
        x.fill_(value)
    elif route == ".data":
        x.data.copy_(torch.full_like(x, value))
    elif route == "no_grad":
        with torch.no_grad():
            x.copy_(torch.full_like(x, value))
    elif route == "view":
        x.view(-1)[:] = value
    elif route == "numpy":
        x.detach().numpy()[...] = value
    return x


ROUTES = ["in place", "no_grad", "view", ".data", "numpy"]  # the last two bypass the version counter


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize(("route", "guard"), [(route, guard) for route in ROUTES for guard in ("stamp", "values")])
def test_changed_sample_is_scored_from_its_values(family: str, route: str, guard: str) -> None:
    make, value = FAMILIES[family]
    with record_guard(guard):  # type: ignore[arg-type]
        dist = make(_logits(family))
        x = dist.rsample((2,), generator=torch.Generator().manual_seed(0))
        assert not x.requires_grad  # constant logits: the sample can be written in place
        scored = dist.log_prob(_change(route, x, value))
        fresh = dist.log_prob(x.detach().clone())
    torch.testing.assert_close(scored, fresh, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("route", ["in place", "no_grad", "view"])
def test_without_copy_on_write_the_stamp_still_sees_a_changed_sample(family: str, route: str, monkeypatch) -> None:
    # where torch lacks copy-on-write (or a CUDA graph is being captured) the sample is proven by its stamp alone,
    # with its data pointer (docs/api.md): every route of the version counter is seen, .data and NumPy are not
    import concretelab.distributions._record as record

    monkeypatch.setattr(record, "_COPY_ON_WRITE", False)
    make, value = FAMILIES[family]
    dist = make(_logits(family))
    x = dist.rsample((2,), generator=torch.Generator().manual_seed(0))
    assert not torch._C._is_cow_tensor(x)  # the fallback is what runs
    torch.testing.assert_close(dist.log_prob(x), dist.log_prob(x.detach().clone()), rtol=1e-6, atol=1e-6)
    scored = dist.log_prob(_change(route, x, value))
    torch.testing.assert_close(scored, dist.log_prob(x.detach().clone()), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_guard_off_scores_every_sample_from_its_values(family: str) -> None:
    """With the record off, log_prob of a sample is the general formula on its value (a clone gives the same)."""
    make, _ = FAMILIES[family]
    with record_guard("off"):
        dist = make(_logits(family))
        x = dist.rsample((3,), generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(dist.log_prob(x), dist.log_prob(x.clone()), rtol=0, atol=0)


def test_reading_a_sample_never_invalidates_its_record() -> None:
    """The copy-on-write proof is broken by writes only: a sample that was read by many operations (and its
    gradient taken through) is still scored from its remembered point, which alone is finite where it underflowed."""
    logits = torch.tensor([[0.0, -5.0, -9.0]], requires_grad=True)
    dist = Concrete(1e-3, logits=logits)
    x = dist.rsample((4,), generator=torch.Generator().manual_seed(3))
    assert (x == 0).any()
    weights = torch.randn(3, 2, generator=torch.Generator().manual_seed(4))
    read = (x @ weights).sum() + x.exp().sum() + x.max() + torch.log_softmax(x, -1).sum() + x.clone().sum()
    read.backward(retain_graph=True)
    _ = (x.tolist(), repr(x), x.argmax(-1), torch.equal(x, x), x.double(), x.contiguous())
    assert dist.log_prob(x).isfinite().all()


def test_a_record_taken_under_the_stamp_guard_is_not_trusted_under_the_values_guard() -> None:
    """A sample remembered without a snapshot cannot be proven unchanged by values: it is scored from them."""
    dist = Concrete(1e-3, logits=torch.tensor([[0.0, -5.0, -9.0]]))
    x = dist.rsample((4,), generator=torch.Generator().manual_seed(3))
    assert (x == 0).any() and dist.log_prob(x).isfinite().all()  # the record works under the stamp guard
    with record_guard("values"), pytest.raises(ValueError, match="boundary of the simplex"):
        dist.log_prob(x)  # no snapshot: scored from the value, which underflowed


@pytest.mark.parametrize("family", list(FAMILIES))
def test_inference_mode_sample_changed_in_place(family: str) -> None:
    make, value = FAMILIES[family]
    with torch.inference_mode():
        dist = make(_logits(family))
        x = dist.rsample((2,), generator=torch.Generator().manual_seed(1))
        x.fill_(value)
        torch.testing.assert_close(dist.log_prob(x), dist.log_prob(x.clone()), rtol=1e-6, atol=1e-6)


def test_the_issue_numbers() -> None:
    with torch.inference_mode():
        b = BinConcrete(0.5, logits=torch.zeros(2))
        x = b.rsample()
        x.fill_(0.5)
        torch.testing.assert_close(b.log_prob(x), torch.full((2,), -math.log(2)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["Concrete", "ExpConcrete"])
@pytest.mark.parametrize(("route", "guard"), [("in place", "stamp"), (".data", "values")])
def test_parameters_changed_after_sampling_are_noticed(family: str, route: str, guard: str) -> None:
    """The own-sample identity ignores the logits' values; a change of them after sampling must switch it off."""
    make, _ = FAMILIES[family]
    with record_guard(guard):  # type: ignore[arg-type]
        logits = torch.tensor([[0.3, -1.2, 2.0]], requires_grad=True)
        dist = make(logits)
        x = dist.rsample(generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            (logits.data if route == ".data" else logits).add_(torch.tensor([[1.0, 0.0, -3.0]]))
        torch.testing.assert_close(dist.log_prob(x), dist.log_prob(x.detach().clone()), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", ["Concrete", "ExpConcrete"])
@pytest.mark.parametrize("route", ["in place", ".data", "numpy"])
def test_caller_noise_reused_after_sampling_is_noticed(family: str, route: str) -> None:
    """Issue 27, Why 2: ``rsample(noise=g)`` then the caller overwrites ``g`` (by any route): log_prob must score
    the sample, not the new noise (the distribution keeps its own copy of the noise)."""
    make, _ = FAMILIES[family]
    dist = make(torch.tensor([[0.3, -1.2, 2.0], [1.0, 0.0, -1.0]]))
    gen = torch.Generator().manual_seed(6)
    g = -torch.log(-torch.log(torch.rand(2, 3, generator=gen)))
    x = dist.rsample(noise=g)
    before = dist.log_prob(x.clone())
    new = -torch.log(-torch.log(torch.rand(2, 3, generator=gen)))
    if route == "in place":
        g.copy_(new)
    elif route == ".data":
        g.data.copy_(new)
    else:
        g.numpy()[...] = new.numpy()
    torch.testing.assert_close(dist.log_prob(x), before, rtol=1e-6, atol=1e-6)


def test_gradients_still_reach_caller_noise() -> None:
    """The copy of the caller's noise is differentiable: d sample / d noise reaches the caller's tensor."""
    g = torch.zeros(2, 3, requires_grad=True)
    x = Concrete(0.5, logits=torch.tensor([[0.3, -1.2, 2.0], [1.0, 0.0, -1.0]])).rsample(noise=g)
    (grad,) = torch.autograd.grad((x * torch.arange(6.0).view(2, 3)).sum(), g)
    assert bool((grad != 0).any())


def test_unchanged_samples_still_use_the_remembered_point() -> None:
    """At temperature 1e-3 X underflows; only the remembered point gives the finite density (the cache works)."""
    dist = Concrete(1e-3, logits=torch.tensor([[0.0, -5.0, -9.0]]))
    x = dist.rsample((4,), generator=torch.Generator().manual_seed(3))
    assert (x == 0).any()
    assert dist.log_prob(x).isfinite().all()


@pytest.mark.parametrize(
    ("make", "logits", "changed"),
    [
        (lambda a: StraightThroughConcrete(0.5, logits=a), torch.tensor([[0.3, -1.2, 2.0]]), torch.tensor([1.0, 0, 0])),
        (lambda a: StraightThroughBinConcrete(0.5, logits=a), torch.tensor([0.3, -1.2]), None),
    ],
)
def test_straight_through_sample_changed_in_place_is_refused(make, logits, changed) -> None:
    dist = make(logits)
    x = dist.rsample((64,), generator=torch.Generator().manual_seed(4))
    assert dist.log_prob(x).isfinite().all()  # unchanged: scored from its soft point
    with torch.no_grad():
        if changed is None:
            x.copy_(1 - x)  # flip every bit
        else:
            x.copy_(changed.expand_as(x))  # every row to category 0 (most rows were another one)
    with pytest.raises(ValueError, match="changed after sampling"):
        dist.log_prob(x)


def test_under_torch_compile_samples_are_scored_from_their_values() -> None:
    """Under torch.compile nothing is remembered: a record keyed by object identity would need a guard on each new
    sample's identity (a recompilation per call) or a graph break. So the function below must compile as one graph
    (fullgraph=True) and be reused for fresh samples without recompiling, and log_prob of a sample there is the
    formula on its value: a sample drawn outside the compiled function, changed in a way no stamp sees (through
    ``.data``), is scored from its new values."""
    import torch._dynamo

    def score(logits: torch.Tensor, noise: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        x = Concrete(0.7, logits=logits, validate_args=False).rsample(noise=noise)
        b = BinConcrete(0.7, logits=logits[..., 0], validate_args=False).rsample(noise=bits)
        return Concrete(0.7, logits=logits, validate_args=False).log_prob(x) + BinConcrete(
            0.7, logits=logits[..., 0], validate_args=False).log_prob(b)

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=g, dtype=torch.float64)
    compiled = torch.compile(score, backend="eager", fullgraph=True)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):  # fresh samples each call: no recompilation
            noise, bits = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, generator=g,
                                                                                             dtype=torch.float64)
            torch.testing.assert_close(compiled(logits, noise, bits), score(logits, noise, bits), rtol=1e-9, atol=1e-9)

    dist = Concrete(0.7, logits=logits)
    x = dist.rsample(generator=g)
    x.data.copy_(torch.full_like(x, 0.25))  # invisible to the stamp; the record is not consulted when compiled
    scored = torch.compile(lambda v: dist.log_prob(v), backend="eager", fullgraph=True)(x)
    torch.testing.assert_close(scored, dist.log_prob(x.clone()), rtol=1e-9, atol=1e-9)
