"""Straight-through Concrete / BinConcrete: exact hard values, the soft gradient, the soft density of the
sample's own soft point (remembered for the tensor rsample returned, through expand and Independent), and a
clear error for any tensor that has no soft point."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent

from concretelab.distributions import (
    BinConcrete,
    Concrete,
    StraightThroughBinConcrete,
    StraightThroughConcrete,
)
from concretelab.functional import sample_gumbel, sample_logistic

from .test_routes import ref_bin, ref_categorical_sample, ref_concrete

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
    assert type(hard) is torch.Tensor
    assert bool(((hard == 0) | (hard == 1)).all())
    if binary:
        assert torch.equal(hard, (x > 0.5).to(F64))
    else:
        assert bool((hard.sum(-1) == 1).all()) and torch.equal(hard.argmax(-1), x.argmax(-1))
    w = torch.randn(hard.shape, generator=_gen(1), dtype=F64)
    g_hard = torch.autograd.grad((w * hard).sum(), (logits, t))
    g_soft = torch.autograd.grad((w * x).sum(), (logits, t))
    for a, b in zip(g_hard, g_soft, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # the density of the soft point, from the independent float64 formula (not the family's own identity)
    a, temp = logits.detach(), t.detach()
    if binary:
        expected = ref_bin(torch.sigmoid((a + noise) / temp), a, temp)
    else:
        expected = ref_concrete(ref_categorical_sample(a, temp.expand(a.shape[:-1]), noise), a, temp)
    torch.testing.assert_close(st.log_prob(hard), expected, rtol=1e-9, atol=1e-9)
    _, lp = st.sample_and_log_prob((64,), noise=noise)
    torch.testing.assert_close(lp, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("binary", [False, True], ids=["concrete", "binconcrete"])
def test_soft_point_of_the_drawn_tensor_through_expand_and_independent(binary: bool) -> None:
    st_cls, soft_cls, logits, t, _ = _pair(binary)
    st, soft = st_cls(t, logits=logits), soft_cls(t, logits=logits)
    event = () if binary else (4,)
    e = st.expand((2, 3))
    generator = _gen(2)
    he = e.rsample((5,), generator=generator)
    assert he.shape == (5, 2, 3, *event) and bool(((he == 0) | (he == 1)).all())
    # the same noise through the soft family gives the soft point; its density, from a copy of its values (no
    # record), is the reference
    x = soft.expand((2, 3)).rsample((5,), generator=_gen(2))
    reference = soft.expand((2, 3)).log_prob(x.detach().clone())
    torch.testing.assert_close(e.log_prob(he), reference, rtol=1e-9, atol=1e-9)
    # another instance with the same parameters scores it too (the soft point belongs to the sample)
    torch.testing.assert_close(st_cls(t, logits=logits).expand((2, 3)).log_prob(he), reference, rtol=1e-9, atol=1e-9)
    ind = Independent(st, 1)
    hi = ind.rsample((7,))
    assert ind.has_rsample
    torch.testing.assert_close(ind.log_prob(hi), st.log_prob(hi).sum(-1))


@pytest.mark.parametrize("binary", [False, True], ids=["concrete", "binconcrete"])
def test_copies_reshapes_and_changed_samples_have_no_soft_point(binary: bool) -> None:
    st_cls, _, logits, t, noise = _pair(binary)
    st = st_cls(t, logits=logits)
    hard = st.rsample((64,), noise=noise)
    st.log_prob(hard)  # the drawn tensor itself: fine
    event = () if binary else (4,)
    others = (hard.clone(), hard.detach(), hard.float(), hard.reshape(8, 8, 3, *event), hard[5], hard * 1)
    for other in others:
        with pytest.raises(ValueError, match=r"a copy, reshape or detach of\s+it, a plain tensor, or a sample changed"):
            st.log_prob(other)
    changed = st.sample((3,), generator=_gen(5))
    with torch.no_grad():
        # in place: the remembered soft point no longer describes these values
        changed[0] = 1 - changed[0] if binary else changed[0].roll(1, -1)
    with pytest.raises(ValueError, match=r"needs the soft \(relaxed\) point"):
        st.log_prob(changed)


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
