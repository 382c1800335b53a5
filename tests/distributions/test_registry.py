"""Generic tests over the example registry (``conftest.EXAMPLES``): every public class, every example."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch.distributions import Distribution

import concretelab.distributions as dists

from .conftest import ALL_EXAMPLES, EXAMPLES, Example, example_id, noise_for

examples = pytest.mark.parametrize("example", ALL_EXAMPLES, ids=example_id)


def test_registry_is_complete() -> None:
    public = {
        obj for name in dists.__all__ if inspect.isclass(obj := getattr(dists, name)) and issubclass(obj, Distribution)
    }
    assert public, "no public distribution classes found"
    missing = sorted(cls.__name__ for cls in public if not EXAMPLES.get(cls))
    assert not missing, f"public distributions without examples in tests/distributions/conftest.py: {missing}"
    # Every public class is re-exported under its own name.
    assert {cls.__name__ for cls in public} <= set(dists.__all__)


@examples
def test_has_rsample(example: Example) -> None:
    assert example.cls.has_rsample is True
    assert example.make().has_rsample is True


@examples
def test_shapes(example: Example) -> None:
    d = example.make()
    x = d.rsample((5, 2), generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 2, *d.batch_shape, *d.event_shape)
    assert x.dtype == d.logits.dtype
    lp = d.log_prob(x)
    assert lp.shape == (5, 2, *d.batch_shape)
    assert d.temperature.shape == d.batch_shape
    assert d.logits.shape == d.batch_shape + d.event_shape
    assert d.sample().shape == d.batch_shape + d.event_shape


@examples
def test_samples_in_support_and_scores_finite(example: Example) -> None:
    d = example.make()
    x = d.sample((200,), generator=torch.Generator().manual_seed(1))
    assert bool(d.support.check(x).all())
    assert bool(torch.isfinite(d.log_prob(x)).all())


@examples
def test_rsample_has_grad_and_sample_has_none(example: Example) -> None:
    d = example.make()
    x = d.rsample((3,), generator=torch.Generator().manual_seed(2))
    leaves = [p for p in (d.logits, d.temperature) if p.requires_grad]
    if leaves:
        # The sample depends on every parameter that requires grad (a weighted sum, so a gradient that only
        # looks right when summed over the simplex cannot hide), and the score function of a sample() (the
        # sample held fixed) is not zero either (issue 27: it was, through the identity at the own sample).
        assert x.requires_grad
        weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(12), dtype=x.dtype)
        for leaf, g in zip(leaves, torch.autograd.grad((weights * x).sum(), leaves), strict=True):
            assert bool(torch.isfinite(g).all()) and bool((g != 0).any()), f"d sample / d {tuple(leaf.shape)} is {g}"
        fixed = d.sample((3,), generator=torch.Generator().manual_seed(2))
        for leaf, g in zip(leaves, torch.autograd.grad(d.log_prob(fixed).sum(), leaves), strict=True):
            assert bool(torch.isfinite(g).all()) and bool((g != 0).any()), f"score / d {tuple(leaf.shape)} is {g}"
    assert not d.sample((3,), generator=torch.Generator().manual_seed(2)).requires_grad
    with torch.no_grad():
        assert torch.equal(x, d.sample((3,), generator=torch.Generator().manual_seed(2)))


@examples
def test_generator_and_noise_reproducibility(example: Example) -> None:
    d = example.make()
    a = d.rsample((4,), generator=torch.Generator().manual_seed(3))
    b = d.rsample((4,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    noise = noise_for(d, (4,), seed=5)
    assert torch.equal(d.rsample((4,), noise=noise), d.rsample((4,), noise=noise))


@examples
def test_sample_and_log_prob_consistent(example: Example) -> None:
    d = example.make()
    noise = noise_for(d, (6,), seed=4)
    x1, lp1 = d.sample_and_log_prob((6,), noise=noise)
    x2 = d.rsample((6,), noise=noise)
    assert torch.equal(x1, x2)
    torch.testing.assert_close(lp1, d.log_prob(x2))
    assert lp1.shape == (6, *d.batch_shape)


@examples
def test_expand(example: Example) -> None:
    d = example.make()
    new_batch = (3, *d.batch_shape)
    e = d.expand(new_batch)
    assert type(e) is type(d)
    assert e.batch_shape == new_batch and e.event_shape == d.event_shape
    assert e.temperature.shape == new_batch and e.logits.shape == new_batch + d.event_shape
    for key in ("lower", "upper"):
        assert getattr(e, key, None) == getattr(d, key, None)
    x = e.rsample((2,), generator=torch.Generator().manual_seed(6))
    assert x.shape == (2, *new_batch, *d.event_shape)
    torch.testing.assert_close(e.log_prob(x), d.log_prob(x))  # the same law, broadcast
    noise = noise_for(e, (2,), seed=7)
    torch.testing.assert_close(e.rsample((2,), noise=noise), d.rsample((2, 3), noise=noise))
    if d.batch_shape:
        for bad in ((*d.batch_shape[:-1], d.batch_shape[-1] + 1), (1,)):  # neither broadcasts from batch_shape
            with pytest.raises(ValueError, match=r"shapes do not broadcast \(expand\): batch_shape \("):
                d.expand(bad)


@examples
def test_half_precision_inputs_are_computed_in_float32(example: Example) -> None:
    for dtype in (torch.float16, torch.bfloat16):
        params = example.build()
        params = {k: v.detach().to(dtype) if isinstance(v, torch.Tensor) else v for k, v in params.items()}
        d = example.cls(**params)
        x, lp = d.sample_and_log_prob((50,), generator=torch.Generator().manual_seed(8))
        assert x.dtype == dtype and lp.dtype == torch.float32
        assert bool(torch.isfinite(lp).all()) and bool(torch.isfinite(d.log_prob(x)).all())
        assert d.log_prob(x).dtype == torch.float32


@examples
def test_validate_args_false_accepts_the_same_parameters(example: Example) -> None:
    d = example.make(validate_args=False)
    x = d.rsample((2,), generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(d.log_prob(x), example.make().log_prob(x))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda c: c.__name__)
def test_own_samples_finite_at_extreme_temperatures(cls: type[Distribution], dtype: torch.dtype) -> None:
    """log_prob of the distribution's own samples is finite for temperatures 1e-4 ... 1e4 in every dtype
    (half precision computes in float32), through sample_and_log_prob and through log_prob(rsample)."""
    example = EXAMPLES[cls][0]
    params = {k: v.detach().to(dtype) if isinstance(v, torch.Tensor) else v for k, v in example.build().items()}
    for t in (1e-4, 1e-2, 1.0, 1e2, 1e4):
        d = cls(**{**params, "temperature": t})
        x, lp = d.sample_and_log_prob((100,), generator=torch.Generator().manual_seed(10))
        assert bool(torch.isfinite(lp).all()) and bool(torch.isfinite(d.log_prob(x)).all()), t
        assert lp.dtype == (torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype)
