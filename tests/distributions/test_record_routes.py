"""Routes of a remembered sample that test_routes.py's table does not reach, each against the independent float64
reference of test_routes.py on fresh copies of the values. Each test here was written after a mutation of the record
(docs: the module docstring of concretelab.distributions._record) passed the whole suite: the mutation is named in
the test's comment.

- A sample scored by *another* distribution that reads values differently (another stretch, another family, a
  category excluded at sampling and included when scored): the record's point must not be used. This was a bug.
- A parameter changed in place after sampling (an annealed buffer; an optimizer's step scored under no_grad).
- One input requiring grad at a time (logits, temperature or the sample): partial derivatives of the formula.
- rsample, then ``detach_()`` in place; the gradient with respect to caller noise; the second derivative with
  respect to a leaf sample; the own-sample identity at extreme temperatures; the "off" guard on older records.
"""

from __future__ import annotations

import re

import pytest
import torch

import concretelab.distributions as D

from .test_routes import ref_bin, ref_concrete, ref_exp_concrete, ref_hard

F64 = torch.float64
LOGITS = [[0.3, -1.2, 2.0, 0.5], [1.0, 0.0, -1.0, 0.2]]
CATEGORICAL = [D.Concrete, D.ExpConcrete]
TOL = {"rtol": 1e-9, "atol": 1e-9}


def _gumbel(shape: tuple[int, ...], seed: int = 11) -> torch.Tensor:
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return -torch.log(-torch.log(u))


def _value(cls: type, a: torch.Tensor, t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The sample of ``cls`` from noise g, computed afresh: y = log_softmax((a + g)/t), or x = exp(y)."""
    y = torch.log_softmax((a + g) / t.unsqueeze(-1), -1)
    return y if cls is D.ExpConcrete else y.exp()


_REFERENCES = {D.ExpConcrete: ref_exp_concrete, D.Concrete: ref_concrete, D.BinConcrete: ref_bin,
               D.HardConcrete: ref_hard}


def _reference(cls: type, v: torch.Tensor, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """test_routes' independent float64 log-density of ``cls`` at the value v."""
    return _REFERENCES[cls](v, a, t)


# ----- a sample scored by a distribution that reads values differently (a bug until this test) ------------------


def test_a_hard_concrete_sample_scored_with_another_stretch_is_read_from_its_value() -> None:
    a = torch.tensor([0.3, -1.2, 2.0, 0.1, 0.0, -0.5], dtype=F64)
    x = D.HardConcrete(0.5, logits=a).sample((2,), generator=torch.Generator().manual_seed(0))
    other = D.HardConcrete(0.5, logits=a, lower=-0.5, upper=1.5)
    torch.testing.assert_close(other.log_prob(x), other.log_prob(x.clone()), **TOL)


@pytest.mark.parametrize("scorer", [D.LogitBinConcrete, D.HardConcrete])
def test_a_binconcrete_sample_scored_by_another_family_is_read_from_its_value(scorer) -> None:
    a = torch.tensor([0.3, -1.2, 2.0], dtype=F64)
    x = D.BinConcrete(0.5, logits=a).sample((4,), generator=torch.Generator().manual_seed(0))
    other = scorer(0.5, logits=a)
    torch.testing.assert_close(other.log_prob(x), other.log_prob(x.clone()), **TOL)


@pytest.mark.parametrize(("drawn_by", "scorer"), [(D.Concrete, D.ExpConcrete), (D.ExpConcrete, D.Concrete),
                                                  (D.StraightThroughConcrete, D.Concrete)])
def test_a_categorical_sample_scored_by_another_family_is_read_from_its_value(drawn_by, scorer) -> None:
    a = torch.tensor(LOGITS, dtype=F64)
    x = drawn_by(0.5, logits=a).sample((3,), generator=torch.Generator().manual_seed(0))
    other = scorer(0.5, logits=a, validate_args=False)
    try:
        want = other.log_prob(x.clone())
    except ValueError as error:  # the straight-through one-hot is on the simplex's boundary: the same error
        with pytest.raises(ValueError, match=re.escape(str(error))):
            other.log_prob(x)
        return
    torch.testing.assert_close(other.log_prob(x), want, **TOL)


def test_a_sample_with_an_excluded_category_scored_where_it_is_included_is_on_the_boundary() -> None:
    inf = float("-inf")
    x = D.Concrete(0.5, logits=torch.tensor([0.0, inf, 1.0], dtype=F64)).sample((2,))
    other = D.Concrete(0.5, logits=torch.tensor([0.0, 0.5, 1.0], dtype=F64))
    with pytest.raises(ValueError, match="boundary"):  # what the general formula says of x (x_1 = 0)
        other.log_prob(x)
    elsewhere = D.Concrete(0.5, logits=torch.tensor([inf, 0.5, 1.0], dtype=F64))  # excludes another category
    with pytest.raises(ValueError, match="boundary"):
        elsewhere.log_prob(x)
    same = D.Concrete(0.5, logits=torch.tensor([0.0, inf, 2.0], dtype=F64))  # the same exclusion: the record is read
    torch.testing.assert_close(same.log_prob(x), same.log_prob(x.clone()), **TOL)


# ----- parameters changed in place after sampling (mutation: the temperature's proof dropped) --------------------


@pytest.mark.parametrize("cls", CATEGORICAL)
@pytest.mark.parametrize("param", ["temperature", "logits"])
@pytest.mark.parametrize("learnable", [False, True], ids=["annealed buffer", "optimizer step, scored under no_grad"])
def test_a_parameter_changed_in_place_after_sampling_is_seen(cls, param, learnable) -> None:
    a = torch.tensor(LOGITS, dtype=F64, requires_grad=learnable)
    t = torch.tensor([0.5, 0.8], dtype=F64, requires_grad=learnable)
    g = _gumbel((3, 2, 4))
    d = cls(t, logits=a)
    x = d.rsample((3,), noise=g)
    v = _value(cls, a.detach(), t.detach(), g)
    with torch.no_grad():
        (t if param == "temperature" else a).mul_(3.0)
        got = d.log_prob(x)
    torch.testing.assert_close(got, _reference(cls, v, a.detach(), t.detach()), **TOL)


# ----- one input requiring grad (mutations: the temperature, the logits or the sample left out of needs_grad) ----


@pytest.mark.parametrize("cls", CATEGORICAL)
@pytest.mark.parametrize("which", ["logits", "temperature", "sample"])
def test_the_partial_derivative_when_one_input_requires_grad(cls, which) -> None:
    a0, t0 = torch.tensor(LOGITS, dtype=F64), torch.tensor([0.5, 0.8], dtype=F64)
    a, t = a0.clone().requires_grad_(which == "logits"), t0.clone().requires_grad_(which == "temperature")
    g = _gumbel((3, 2, 4))
    d = cls(t, logits=a)
    x = d.sample((3,), noise=g)
    if which == "sample":
        x.requires_grad_()
    got = d.log_prob(x)
    a2, t2 = a0.clone().requires_grad_(which == "logits"), t0.clone().requires_grad_(which == "temperature")
    v = _value(cls, a0, t0, g).requires_grad_(which == "sample")
    want = _reference(cls, v, a2, t2)
    torch.testing.assert_close(got, want, **TOL)
    ours, theirs = {"logits": (a, a2), "temperature": (t, t2), "sample": (x, v)}[which]
    torch.testing.assert_close(torch.autograd.grad(got.sum(), ours)[0], torch.autograd.grad(want.sum(), theirs)[0],
                               **TOL)


# ----- rsample, then detach_() in place (mutation: the point keeps its sampling path) ----------------------------


@pytest.mark.parametrize("cls", [D.Concrete, D.BinConcrete, D.HardConcrete])
def test_an_rsample_detached_in_place_gets_partial_derivatives(cls) -> None:
    a = torch.tensor(LOGITS if cls is D.Concrete else LOGITS[0], dtype=F64, requires_grad=True)
    d = cls(0.5, logits=a)
    x = d.rsample((3,), generator=torch.Generator().manual_seed(1))
    x.detach_()
    got = d.log_prob(x)
    a2 = a.detach().clone().requires_grad_()
    want = _reference(cls, x.clone(), a2, torch.tensor(0.5, dtype=F64))
    torch.testing.assert_close(got, want, **TOL)
    torch.testing.assert_close(torch.autograd.grad(got.sum(), a)[0], torch.autograd.grad(want.sum(), a2)[0], **TOL)


# ----- the gradient with respect to caller noise (mutation: the identity's noise detached) -----------------------


@pytest.mark.parametrize("cls", CATEGORICAL)
def test_the_gradient_with_respect_to_caller_noise(cls) -> None:
    a, t = torch.tensor(LOGITS, dtype=F64), torch.tensor([0.5, 0.8], dtype=F64)
    g1, g2 = _gumbel((3, 2, 4)).requires_grad_(), _gumbel((3, 2, 4)).requires_grad_()
    d = cls(t, logits=a)
    got = d.log_prob(d.rsample((3,), noise=g1))
    want = _reference(cls, _value(cls, a, t, g2), a, t)
    torch.testing.assert_close(torch.autograd.grad(got.sum(), g1)[0], torch.autograd.grad(want.sum(), g2)[0], **TOL)


# ----- the second derivative with respect to a leaf sample (mutation: the point's slope detached) ----------------


@pytest.mark.parametrize("cls", [D.Concrete, D.BinConcrete, D.HardConcrete])
def test_the_second_derivative_with_respect_to_a_leaf_sample(cls) -> None:
    a = torch.tensor(LOGITS if cls is D.Concrete else LOGITS[0], dtype=F64)
    t = torch.tensor(0.5, dtype=F64)
    d = cls(t, logits=a)
    x = d.sample((3,), generator=torch.Generator().manual_seed(1)).requires_grad_()
    v = x.detach().clone().requires_grad_()
    second = []
    for log_p, leaf in ((d.log_prob(x), x), (_reference(cls, v, a, t), v)):
        (slope,) = torch.autograd.grad(log_p.sum(), leaf, create_graph=True)
        second.append(torch.autograd.grad((slope**2).sum(), leaf)[0])
    torch.testing.assert_close(second[0], second[1], rtol=1e-9, atol=0)


# ----- the own-sample identity at extreme temperatures (mutation: the temperature clamped in the identity) -------


@pytest.mark.parametrize("cls", CATEGORICAL)
@pytest.mark.parametrize("temperature", [1e-4, 1e-2, 1e2, 1e4])
def test_the_own_sample_identity_at_extreme_temperatures(cls, temperature) -> None:
    a = torch.tensor(LOGITS, dtype=F64)
    t = torch.full((2,), temperature, dtype=F64)
    g = _gumbel((5, 2, 4))
    d = cls(t, logits=a)
    y = torch.log_softmax((a + g) / t.unsqueeze(-1), -1)
    want = ref_exp_concrete(y, a, t) - (y.sum(-1) if cls is D.Concrete else 0)
    for got in (d.log_prob(d.rsample((5,), noise=g)), d.sample_and_log_prob((5,), noise=g)[1]):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-6)


# ----- the "off" guard on a record made before (mutation: the guard's check dropped from recall) -----------------


def test_the_off_guard_ignores_records_made_before_it() -> None:
    d = D.Concrete(1e-3, logits=torch.tensor([[0.0, -5.0, -9.0]], dtype=F64))
    x = d.rsample((4,), generator=torch.Generator().manual_seed(3))
    assert (x == 0).any() and d.log_prob(x).isfinite().all()  # underflowed, and scored from the record
    with D.record_guard("off"), pytest.raises(ValueError, match="boundary of the simplex"):
        d.log_prob(x)
