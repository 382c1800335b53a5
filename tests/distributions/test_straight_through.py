"""Straight-through Concrete / BinConcrete: exact hard values, the soft gradient, the soft density, and
the soft point carried through copies, reshapes, expand and Independent."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch.distributions import Independent

from concretelab.distributions import (
    BinConcrete,
    Concrete,
    StraightThroughBinConcrete,
    StraightThroughConcrete,
    StraightThroughSample,
)
from concretelab.functional import sample_gumbel, sample_logistic

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pair(binary: bool, dtype: torch.dtype = F64):  # type: ignore[no-untyped-def]
    if binary:
        logits = torch.tensor([-1.0, 0.5, 2.0], dtype=dtype, requires_grad=True)
        t = torch.tensor(0.4, dtype=dtype, requires_grad=True)
        noise = sample_logistic((64, 3), generator=_gen(0), dtype=torch.float32 if dtype != F64 else F64)
        return StraightThroughBinConcrete, BinConcrete, logits, t, noise
    logits = torch.tensor([[0.0, 1.0, -1.0, 0.3]] * 3, dtype=dtype, requires_grad=True)
    t = torch.tensor([0.2, 1.0, 5.0], dtype=dtype, requires_grad=True)
    noise = sample_gumbel((64, 3, 4), generator=_gen(0), dtype=torch.float32 if dtype != F64 else F64)
    return StraightThroughConcrete, Concrete, logits, t, noise


@pytest.mark.parametrize("binary", [False, True], ids=["concrete", "binconcrete"])
def test_forward_exactly_hard_backward_soft_gradient_density_soft(binary: bool) -> None:
    st_cls, soft_cls, logits, t, noise = _pair(binary)
    st, soft = st_cls(t, logits=logits), soft_cls(t, logits=logits)
    hard, x = st.rsample((64,), noise=noise), soft.rsample((64,), noise=noise)
    assert isinstance(hard, StraightThroughSample)
    assert bool(((hard == 0) | (hard == 1)).all())
    if binary:
        assert torch.equal(hard.as_subclass(torch.Tensor), (x > 0.5).to(F64))
    else:
        assert bool((hard.sum(-1) == 1).all()) and torch.equal(hard.argmax(-1), x.argmax(-1))
    w = torch.randn(hard.shape, generator=_gen(1), dtype=F64)
    g_hard = torch.autograd.grad((w * hard).sum(), (logits, t))
    g_soft = torch.autograd.grad((w * x).sum(), (logits, t))
    for a, b in zip(g_hard, g_soft, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(st.log_prob(hard), soft.log_prob(x))
    _, lp = st.sample_and_log_prob((64,), noise=noise)
    torch.testing.assert_close(lp, soft.log_prob(x))


@pytest.mark.parametrize("binary", [False, True], ids=["concrete", "binconcrete"])
def test_soft_point_survives_copies_reshapes_expand_and_independent(binary: bool) -> None:
    st_cls, soft_cls, logits, t, noise = _pair(binary)
    st, soft = st_cls(t, logits=logits), soft_cls(t, logits=logits)
    hard, x = st.rsample((64,), noise=noise), soft.rsample((64,), noise=noise)
    expected = soft.log_prob(x)
    copies = (hard.clone(), hard.detach(), hard.to(F64), hard.double(), hard.contiguous(), copy.deepcopy(hard.detach()))
    for copy_ in copies:
        assert isinstance(copy_, StraightThroughSample)
        torch.testing.assert_close(st.log_prob(copy_), expected)
    torch.testing.assert_close(st.log_prob(pickle.loads(pickle.dumps(hard.detach()))), expected)
    low = hard.float()  # a lower-precision copy keeps the float64 soft point
    assert isinstance(low, StraightThroughSample) and low.dtype == torch.float32 and low.soft_log.dtype == F64
    torch.testing.assert_close(st.log_prob(low), expected)
    event = () if binary else (4,)
    reshaped = hard.reshape(8, 8, 3, *event)
    torch.testing.assert_close(st.log_prob(reshaped), expected.reshape(8, 8, 3))
    torch.testing.assert_close(st.log_prob(hard[5]), expected[5])
    torch.testing.assert_close(st.log_prob(hard.unsqueeze(0)), expected.unsqueeze(0))
    # dist.expand
    e = st.expand((2, 3))
    he = e.rsample((5,), generator=_gen(2))
    assert isinstance(he, StraightThroughSample) and he.shape == (5, 2, 3, *event)
    assert bool(((he == 0) | (he == 1)).all())
    torch.testing.assert_close(
        e.log_prob(he),
        soft.log_prob(he.soft_log.exp() if not binary else torch.sigmoid(he.soft_log)),
        rtol=1e-9,
        atol=1e-9,
    )
    # Independent(dist, 1)
    ind = Independent(st, 1)
    hi = ind.rsample((7,))
    assert isinstance(hi, StraightThroughSample) and ind.has_rsample
    torch.testing.assert_close(ind.log_prob(hi), st.log_prob(hi).sum(-1))
    # a plain tensor op drops the soft point: the result is an ordinary tensor
    assert not isinstance(hard * 2, StraightThroughSample) and not isinstance(hard.sum(), StraightThroughSample)


@pytest.mark.parametrize("binary", [False, True], ids=["concrete", "binconcrete"])
def test_plain_hard_tensor_raises_with_an_explanation(binary: bool) -> None:
    st_cls, _, logits, t, noise = _pair(binary)
    st = st_cls(t, logits=logits)
    hard = st.sample((2,), noise=noise[:2])
    assert isinstance(hard, StraightThroughSample) and not hard.requires_grad  # sample() keeps the soft point
    with pytest.raises(ValueError, match=r"needs the soft \(relaxed\) point .* a hard value has no\s+density"):
        st.log_prob(hard.as_subclass(torch.Tensor))
    with pytest.raises(ValueError, match="a plain tensor carries no soft point"):
        plain = torch.zeros_like(hard.as_subclass(torch.Tensor))
        if not binary:
            plain[..., 0] = 1.0  # a valid one-hot point of the support, but with no soft point
        st.log_prob(plain)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype: torch.dtype) -> None:
    for binary in (False, True):
        st_cls, soft_cls, logits, t, noise = _pair(binary, dtype)
        st = st_cls(t, logits=logits)
        hard = st.rsample((64,), noise=noise)
        assert hard.dtype == dtype and bool(((hard == 0) | (hard == 1)).all())
        lp = st.log_prob(hard)
        assert lp.dtype == torch.float32 and bool(torch.isfinite(lp).all())
        ref = soft_cls(t.detach().float(), logits=logits.detach().float())
        torch.testing.assert_close(lp, ref.log_prob(ref.rsample((64,), noise=noise)), rtol=1e-5, atol=1e-4)


def test_extreme_temperatures_exact_one_hot_and_finite() -> None:
    logits = torch.randn(5, 1000, generator=_gen(3), requires_grad=True)
    for t in (1e-4, 1.0, 1e4):
        st = StraightThroughConcrete(t, logits=logits)
        hard, lp = st.sample_and_log_prob((4,), generator=_gen(4))
        assert bool((hard.sum(-1) == 1).all()) and bool(((hard == 0) | (hard == 1)).all())
        assert bool(torch.isfinite(lp).all())
        (g,) = torch.autograd.grad(lp.sum() + hard[..., 0].sum(), logits)
        assert bool(torch.isfinite(g).all())
