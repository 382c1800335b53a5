"""Tests of concretelab.functional: finite noise, the relaxed samplers, Gumbel-max/top-k, the kernels.

Statistical tests use fixed seeds; each threshold is a p-value of 1e-3, so at a fresh seed a correct
implementation fails it with probability 0.1%.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from concretelab import functional as F
from concretelab.distributions import BinConcrete, ExpConcrete, LogitBinConcrete

DTYPES = (torch.float32, torch.float64)
P_MIN = 1e-3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# Noise: finite by construction, checked on the end points of torch.rand's grid.


@pytest.mark.parametrize("dtype", DTYPES)
def test_noise_maps_are_finite_on_the_grid_end_points(dtype: torch.dtype) -> None:
    eps = torch.finfo(dtype).eps
    grid = torch.tensor([0.0, eps / 2, 0.5, 1 - eps / 2], dtype=dtype)  # rand's smallest, next, largest points
    u = F.open_uniform(grid)
    assert bool((u > 0).all() and (u < 1).all())
    assert u[0].item() == eps / 4 and torch.equal(u[1:], grid[1:])  # only the point 0 moves
    gumbel, logistic = F.gumbel_from_uniform(u), F.logistic_from_uniform(u)
    assert bool(torch.isfinite(gumbel).all() and torch.isfinite(logistic).all())
    # The documented ranges (module docstring): exact end points of the noise.
    lo_g, hi_g, lo_l, hi_l = (-2.86, 16.64, -17.33, 16.64) if dtype == torch.float32 else (-3.63, 36.74, -37.43, 36.74)
    assert gumbel.min().item() == pytest.approx(lo_g, abs=0.01) and gumbel.max().item() == pytest.approx(hi_g, abs=0.01)
    assert logistic.min().item() == pytest.approx(lo_l, abs=0.01)
    assert logistic.max().item() == pytest.approx(hi_l, abs=0.01)
    # The un-moved point 0 is exactly what would have produced -inf.
    assert F.gumbel_from_uniform(torch.zeros(1, dtype=dtype)).item() == -math.inf
    assert F.logistic_from_uniform(torch.zeros(1, dtype=dtype)).item() == -math.inf


@pytest.mark.parametrize("dtype", [*DTYPES, torch.float16, torch.bfloat16])
def test_sampled_noise_is_finite_with_the_requested_dtype(dtype: torch.dtype) -> None:
    g = F.sample_gumbel((200_000,), generator=_gen(0), dtype=dtype)
    lg = F.sample_logistic((200_000,), generator=_gen(1), dtype=dtype)
    u = F.sample_uniform_open((200_000,), generator=_gen(2), dtype=dtype)
    assert g.dtype == lg.dtype == dtype
    assert u.dtype == F.compute_dtype(dtype)  # half requests are drawn in float32
    assert bool(torch.isfinite(g).all() and torch.isfinite(lg).all())
    assert bool((u > 0).all() and (u < 1).all())


def test_noise_laws_kolmogorov_smirnov() -> None:
    g = F.sample_gumbel(20_000, generator=_gen(3), dtype=torch.float64).numpy()
    lg = F.sample_logistic(20_000, generator=_gen(4), dtype=torch.float64).numpy()
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > P_MIN
    assert stats.kstest(lg, stats.logistic.cdf).pvalue > P_MIN


def test_generator_reproducibility() -> None:
    logits = torch.randn(5, 7, generator=_gen(0))
    a = F.gumbel_softmax(logits, 0.5, generator=_gen(11))
    b = F.gumbel_softmax(logits, 0.5, generator=_gen(11))
    c = F.gumbel_softmax(logits, 0.5, generator=_gen(12))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(F.gumbel_max(logits, generator=_gen(5)), F.gumbel_max(logits, generator=_gen(5)))
    assert torch.equal(F.sample_logistic(9, generator=_gen(6)), F.sample_logistic(9, generator=_gen(6)))


# ----------------------------------------------------------------------------------------------
# gumbel_softmax / log_gumbel_softmax.


def _torch_gumbels(logits: torch.Tensor, seed: int) -> torch.Tensor:
    """The noise torch.nn.functional.gumbel_softmax draws after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return -torch.empty_like(logits, memory_format=torch.legacy_contiguous_format).exponential_().log()


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dim", [-1, 0])
def test_gumbel_softmax_matches_torch_given_the_same_noise(hard: bool, dim: int) -> None:
    logits = torch.randn(6, 5, generator=_gen(0), dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        noise = _torch_gumbels(logits, 123)
        torch.manual_seed(123)
        expected = torch.nn.functional.gumbel_softmax(logits, tau=0.7, hard=hard, dim=dim)
    got = F.gumbel_softmax(logits, 0.7, hard=hard, dim=dim, noise=noise)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)


def test_gumbel_softmax_soft_and_hard_semantics() -> None:
    logits = torch.randn(50, 6, generator=_gen(1), dtype=torch.float64, requires_grad=True)
    noise = F.sample_gumbel(logits.shape, generator=_gen(2), dtype=torch.float64)
    soft = F.gumbel_softmax(logits, 0.3, noise=noise)
    hard = F.gumbel_softmax(logits, 0.3, hard=True, noise=noise)
    torch.testing.assert_close(soft.sum(-1), torch.ones(50, dtype=torch.float64))
    assert bool((soft > 0).all())
    assert bool(((hard == 0) | (hard == 1)).all()) and bool((hard.sum(-1) == 1).all())  # exactly one-hot
    assert torch.equal(hard.argmax(-1), soft.argmax(-1))
    weights = torch.randn(50, 6, generator=_gen(3), dtype=torch.float64)
    (g_soft,) = torch.autograd.grad((weights * soft).sum(), logits)
    (g_hard,) = torch.autograd.grad((weights * hard).sum(), logits)
    torch.testing.assert_close(g_hard, g_soft, rtol=0, atol=1e-14)  # straight-through: the soft gradient


def test_given_noise_and_log_form() -> None:
    logits = torch.tensor([[0.5, -1.0, 2.0], [40.0, -40.0, 0.0]], dtype=torch.float64)
    noise = F.sample_gumbel(logits.shape, generator=_gen(4), dtype=torch.float64)
    y = F.log_gumbel_softmax(logits, 0.25, noise=noise)
    # s - logsumexp(s) (faster than torch.log_softmax on CPU): equal to rounding
    torch.testing.assert_close(y, torch.log_softmax((logits + noise) / 0.25, -1), rtol=0, atol=1e-12)
    torch.testing.assert_close(F.gumbel_softmax(logits, 0.25, noise=noise), y.exp())


def test_tensor_temperature_broadcasts_per_row_and_is_learnable() -> None:
    logits = torch.randn(4, 5, generator=_gen(5), dtype=torch.float64)
    noise = F.sample_gumbel(logits.shape, generator=_gen(6), dtype=torch.float64)
    temps = torch.tensor([0.1, 0.5, 1.0, 3.0], dtype=torch.float64)
    rows = torch.stack([F.gumbel_softmax(logits[i], float(temps[i]), noise=noise[i]) for i in range(4)])
    torch.testing.assert_close(F.gumbel_softmax(logits, temps, noise=noise), rows)  # shape (N,)
    torch.testing.assert_close(F.gumbel_softmax(logits, temps[:, None], noise=noise), rows)  # shape (N, 1)
    columns = F.gumbel_softmax(logits.T, temps, dim=0, noise=noise.T)  # categories along dim 0
    torch.testing.assert_close(columns, rows.T)
    # A sample dimension in front: temperature (N,) right-aligns with logits (S, N, K) minus the category dim.
    noise3 = F.sample_gumbel((3, 4, 5), generator=_gen(7), dtype=torch.float64)
    batched = F.gumbel_softmax(logits.expand(3, 4, 5), temps, noise=noise3)
    for s in range(3):
        torch.testing.assert_close(batched[s], F.gumbel_softmax(logits, temps, noise=noise3[s]))
    t = temps.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t_: F.log_gumbel_softmax(logits, t_, noise=noise), (t,))


def test_minus_inf_logits_give_exact_zeros() -> None:
    logits = torch.tensor([[0.0, float("-inf"), 1.0, float("-inf")]] * 1000, dtype=torch.float32)
    for hard in (False, True):
        for t in (1e-4, 1.0, 1e4):
            x = F.gumbel_softmax(logits, t, hard=hard, generator=_gen(7))
            assert bool((x[:, [1, 3]] == 0).all()) and bool(torch.isfinite(x).all())
    assert bool((F.log_gumbel_softmax(logits, 0.5, generator=_gen(8))[:, [1, 3]] == -math.inf).all())
    # A learnable temperature gets a finite gradient although (-inf) / t appears (was NaN: 0 * inf).
    t = torch.tensor(0.5, requires_grad=True)
    lg = logits.clone().requires_grad_()
    soft = F.gumbel_softmax(lg, t, generator=_gen(11))
    grads = torch.autograd.grad((soft * torch.arange(4.0)).sum(), (lg, t))
    assert all(bool(torch.isfinite(g).all()) for g in grads) and bool((grads[0][:, [1, 3]] == 0).all())
    assert not bool(torch.isin(F.gumbel_max(logits, generator=_gen(9)), torch.tensor([1, 3])).any())
    assert not bool(torch.isin(F.gumbel_topk(logits, 2, generator=_gen(10)), torch.tensor([1, 3])).any())


# ----------------------------------------------------------------------------------------------
# Gumbel-max and Gumbel-top-k.


def test_gumbel_max_frequencies_chi_square() -> None:
    probs = torch.tensor([0.05, 0.1, 0.15, 0.3, 0.4], dtype=torch.float64)
    draws = F.gumbel_max(probs.log().expand(40_000, 5), generator=_gen(20))
    counts = torch.bincount(draws, minlength=5).numpy()
    assert stats.chisquare(counts, 40_000 * probs.numpy()).pvalue > P_MIN


def test_gumbel_max_is_the_argmax_of_the_relaxed_sample_with_the_same_noise() -> None:
    logits = torch.randn(300, 7, generator=_gen(21), dtype=torch.float64) * 3
    noise = F.sample_gumbel(logits.shape, generator=_gen(22), dtype=torch.float64)
    index = F.gumbel_max(logits, noise=noise)
    for t in (1e-3, 0.5, 1.0, 100.0):
        assert torch.equal(F.gumbel_softmax(logits, t, noise=noise).argmax(-1), index)
    assert torch.equal(
        F.gumbel_max(logits, generator=_gen(23)),
        F.gumbel_max(logits, noise=F.sample_gumbel(logits.shape, generator=_gen(23), dtype=torch.float64)),
    )


def test_gumbel_topk_distinct_and_without_replacement_law() -> None:
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    logits = torch.tensor(np.log(probs)).expand(40_000, 4)
    top = F.gumbel_topk(logits, 2, generator=_gen(24))
    assert top.shape == (40_000, 2) and bool((top[:, 0] != top[:, 1]).all())
    pairs = list(itertools.permutations(range(4), 2))
    expected = np.array([probs[i] * probs[j] / (1 - probs[i]) for i, j in pairs])  # by enumeration
    assert expected.sum() == pytest.approx(1.0)
    code = (top[:, 0] * 4 + top[:, 1]).numpy()
    counts = np.array([(code == i * 4 + j).sum() for i, j in pairs])
    assert stats.chisquare(counts, 40_000 * expected).pvalue > P_MIN
    full = F.gumbel_topk(torch.randn(10, 6, generator=_gen(25)), 6, generator=_gen(26))
    assert bool((full.sort(-1).values == torch.arange(6)).all())  # a permutation


# ----------------------------------------------------------------------------------------------
# Kernels agree with the distributions; bad arguments.


def test_density_kernels_agree_with_distributions() -> None:
    logits = torch.randn(3, 4, generator=_gen(30), dtype=torch.float64)
    temperature = torch.tensor([0.2, 1.0, 5.0], dtype=torch.float64)
    noise = F.sample_gumbel((10, 3, 4), generator=_gen(31), dtype=torch.float64)
    y = F.log_gumbel_softmax(logits.expand(10, 3, 4), temperature, noise=noise)
    dist = ExpConcrete(temperature, logits=logits)
    torch.testing.assert_close(F.exp_concrete_log_density(y, logits, temperature), dist.log_prob(y))
    torch.testing.assert_close(F.exp_concrete_log_density_at_noise(noise, logits, temperature), dist.log_prob(y))
    z = torch.randn(10, 3, generator=_gen(32), dtype=torch.float64) * 5
    torch.testing.assert_close(
        F.logit_binconcrete_log_density(z, logits[:, 0], temperature),
        LogitBinConcrete(temperature, logits=logits[:, 0]).log_prob(z),
    )
    torch.testing.assert_close(
        F.binconcrete_log_density(z, logits[:, 0], temperature),
        BinConcrete(temperature, logits=logits[:, 0]).log_prob(torch.sigmoid(z)),
    )


def test_softplus_exact_where_torch_default_threshold_is_not() -> None:
    x = torch.tensor([20.5, 30.0, 39.0], dtype=torch.float64)
    exact = torch.tensor([math.log1p(math.exp(v)) for v in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(F.softplus(x), exact, rtol=1e-16, atol=0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: F.gumbel_softmax(torch.zeros(2, 3), dim=2), r"dim=2 is out of range for logits of shape \(2, 3\)"),
        (lambda: F.log_gumbel_softmax(torch.zeros(3), dim=-2), r"dim=-2 is out of range"),
        (lambda: F.gumbel_max(torch.tensor(1.0)), r"logits must have at least one dimension"),
        (
            lambda: F.gumbel_softmax(torch.zeros(2, 3), noise=torch.zeros(3)),
            r"noise must have the shape of logits \(2, 3\)",
        ),
        (lambda: F.gumbel_max(torch.zeros(2, 3), noise=torch.zeros(2, 4)), r"noise must have the shape of logits"),
        (lambda: F.gumbel_softmax(torch.zeros(3), 0.0), r"temperature must be a finite positive number, got 0\.0"),
        (lambda: F.gumbel_softmax(torch.zeros(3), float("nan")), r"temperature must be a finite positive number"),
        (lambda: F.gumbel_softmax(torch.zeros(3), -1.0), r"temperature must be a finite positive number, got -1"),
        (
            lambda: F.gumbel_softmax(torch.zeros(2, 3), torch.tensor([1.0, -2.0])),
            r"temperature must be finite and positive",
        ),
        (lambda: F.gumbel_softmax(torch.zeros(3), torch.tensor(math.inf)), r"temperature must be finite and positive"),
        (
            lambda: F.gumbel_softmax(torch.zeros(2, 3), torch.ones(4)),
            r"temperature of shape \(4,\) does not broadcast against logits of shape \(2, 3\)",
        ),
        (lambda: F.gumbel_topk(torch.zeros(2, 3), 4), r"k must be an integer in \[1, 3\]"),
        (lambda: F.gumbel_topk(torch.tensor([0.0, -math.inf, 1.0]), 3), r"k=3 exceeds the number of categories"),
        (lambda: F.sample_gumbel(3, dtype=torch.int64), r"dtype must be a floating-point dtype"),
    ],
)
def test_bad_arguments_raise_value_error(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------------------------
# Transformations: vmap and torch.compile(fullgraph=True), given the noise.


@pytest.mark.filterwarnings("error")
def test_vmap_of_functional_forms() -> None:
    logits = torch.randn(5, 4, 3, generator=_gen(40), dtype=torch.float64)
    noise = F.sample_gumbel(logits.shape, generator=_gen(41), dtype=torch.float64)
    temps = torch.tensor([0.1, 0.5, 1.0, 2.0, 7.0], dtype=torch.float64)

    def per_example(lg: torch.Tensor, g: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        soft = F.gumbel_softmax(lg, t, noise=g)
        hard = F.gumbel_softmax(lg, t, hard=True, noise=g)
        y = F.log_gumbel_softmax(lg, t, noise=g)
        return soft, hard, F.exp_concrete_log_density(y, lg, t.expand(lg.shape[:-1]))

    soft, hard, lp = torch.func.vmap(per_example)(logits, noise, temps)
    for i in range(5):
        t = float(temps[i])
        torch.testing.assert_close(soft[i], F.gumbel_softmax(logits[i], t, noise=noise[i]))
        torch.testing.assert_close(hard[i], F.gumbel_softmax(logits[i], t, hard=True, noise=noise[i]))
        expected = ExpConcrete(t, logits=logits[i]).log_prob(F.log_gumbel_softmax(logits[i], t, noise=noise[i]))
        torch.testing.assert_close(lp[i], expected)
    # The binary kernels and the straight-through gradient under vmap(grad(...)).
    z = torch.randn(5, 4, generator=_gen(42), dtype=torch.float64)
    grads = torch.func.vmap(torch.func.grad(lambda zz, t: F.binconcrete_log_density(zz, zz * 0, t).sum()))(z, temps)
    assert grads.shape == (5, 4) and bool(torch.isfinite(grads).all())
    # vmap(grad(...)) with a batched, learnable temperature (the eager value check must not run on it).
    weights = torch.arange(3.0, dtype=torch.float64)

    def loss(lg: torch.Tensor, g: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (F.gumbel_softmax(lg, t, noise=g) * weights).sum()

    d_temp = torch.func.vmap(torch.func.grad(loss, argnums=2))(logits[:, 0], noise[:, 0], temps)
    for i in range(5):
        t = temps[i].clone().requires_grad_()
        (expected,) = torch.autograd.grad(loss(logits[i, 0], noise[i, 0], t), t)
        torch.testing.assert_close(d_temp[i], expected)


def test_torch_compile_fullgraph_given_noise() -> None:
    """Dynamo traces the functional forms without a graph break (fullgraph=True) and AOT autograd traces
    their backward; ``backend="aot_eager"`` keeps this fast (the inductor backend runs under -m slow)."""
    logits = torch.randn(3, 4, generator=_gen(43), dtype=torch.float64)
    noise = F.sample_gumbel(logits.shape, generator=_gen(44), dtype=torch.float64)
    temperature = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64)
    weights = torch.randn(3, 4, generator=_gen(48), dtype=torch.float64)

    def step(lg: torch.Tensor, g: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        hard = F.gumbel_softmax(lg, t, hard=True, noise=g)
        log_density = F.exp_concrete_log_density(F.log_gumbel_softmax(lg, t, noise=g), lg * 0.5, t)
        return (weights * hard).sum() + log_density.sum()

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    results = []
    for fn in (compiled, step):
        lg, t = logits.clone().requires_grad_(), temperature.clone().requires_grad_()
        value = fn(lg, noise, t)
        results.append((value, *torch.autograd.grad(value, (lg, t))))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want)


def test_gumbel_max_and_topk_under_vmap_and_compile_given_noise() -> None:
    """Issue 27: gumbel_topk read a value (``int(...)``) to check k, which fails under vmap and breaks a
    fullgraph compile; given the noise, both kernels are pure tensor functions and must work there."""
    logits = torch.randn(5, 6, generator=_gen(60), dtype=torch.float64)
    noise = F.sample_gumbel(logits.shape, generator=_gen(61), dtype=torch.float64)
    expected_top = torch.topk(logits + noise, 3, dim=-1).indices
    expected_max = (logits + noise).argmax(-1)
    torch.testing.assert_close(torch.func.vmap(lambda a, g: F.gumbel_topk(a, 3, noise=g))(logits, noise),
                               expected_top)
    torch.testing.assert_close(torch.func.vmap(lambda a, g: F.gumbel_max(a, noise=g))(logits, noise), expected_max)
    topk = torch.compile(lambda a, g: F.gumbel_topk(a, 3, noise=g), fullgraph=True, backend="eager")
    argmax = torch.compile(lambda a, g: F.gumbel_max(a, noise=g), fullgraph=True, backend="eager")
    torch.testing.assert_close(topk(logits, noise), expected_top)
    torch.testing.assert_close(argmax(logits, noise), expected_max)


def test_tensor_temperature_with_more_dims_than_the_batch_normalises_over_the_categories() -> None:
    """Issue 27: logits (4,) with temperatures (3,) give 3 samples of 4 categories, each on the simplex (the
    category dim was resolved before the temperature added a leading dim, and rows summed to 2.08, 0.54, 1.38)."""
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5], dtype=torch.float64)
    temperature = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    noise = F.sample_gumbel((4,), generator=_gen(62), dtype=torch.float64)
    soft = F.gumbel_softmax(logits, temperature, noise=noise)
    assert soft.shape == (3, 4)
    for i, t in enumerate(temperature):
        torch.testing.assert_close(soft[i], torch.softmax((logits + noise) / t, -1))
    hard = F.gumbel_softmax(logits, temperature, hard=True, noise=noise)
    assert torch.equal(hard, torch.nn.functional.one_hot((logits + noise).argmax(), 4).double().expand(3, 4))
    log_y = F.log_gumbel_softmax(logits, temperature, noise=noise)
    torch.testing.assert_close(log_y.exp(), soft)


@pytest.mark.parametrize(
    ("logits", "match"),
    [
        (torch.tensor([[0.0, float("nan"), 1.0]]), "must not contain NaN"),
        (torch.tensor([[0.0, 1.0], [float("-inf"), float("-inf")]]), "at least one finite"),
    ],
)
def test_gumbel_softmax_refuses_logits_that_give_nan(logits: torch.Tensor, match: str) -> None:
    """Issue 27: NaN logits, or a row whose every logit is -inf (softmax 0/0), returned NaN; the distributions
    refuse them, and so do the kernels."""
    for kernel in (F.gumbel_softmax, F.log_gumbel_softmax):
        with pytest.raises(ValueError, match=match):
            kernel(logits, 0.5)


@pytest.mark.slow
def test_torch_compile_inductor_fullgraph_given_noise() -> None:
    logits = torch.randn(3, 4, generator=_gen(45))
    noise = F.sample_gumbel(logits.shape, generator=_gen(46))
    z = torch.randn(3, generator=_gen(47))

    def step(lg: torch.Tensor, g: torch.Tensor, zz: torch.Tensor) -> torch.Tensor:
        soft = F.gumbel_softmax(lg, 0.5, noise=g)
        return soft.sum() + F.binconcrete_log_density(zz, lg[:, 0], torch.tensor(0.5)).sum()

    compiled = torch.compile(step, fullgraph=True)
    torch.testing.assert_close(compiled(logits, noise, z), step(logits, noise, z))


# ----- the Bernoulli and categorical log-probability kernels, against 50-digit mpmath ------------------------


def test_bernoulli_log_prob_against_mpmath() -> None:
    import mpmath

    from concretelab.functional import bernoulli_log_prob

    mpmath.mp.dps = 50
    logits = torch.tensor([-800.0, -60.0, -30.0, -1.5, 0.0, 2.0, 30.0, 60.0, 800.0], dtype=torch.float64)
    for b in (0.0, 1.0):
        got = bernoulli_log_prob(logits, torch.full_like(logits, b))
        for a, value in zip(logits.tolist(), got.tolist(), strict=True):
            p1 = 1 / (1 + mpmath.exp(-mpmath.mpf(a)))  # sigmoid(a), exact
            want = mpmath.log(p1) if b else mpmath.log(1 - p1)
            assert abs(value - float(want)) <= 1e-12 * (1 + abs(float(want))), (a, b, value, want)


def test_bernoulli_log_prob_sum_against_scipy_under_broadcasting() -> None:
    """The summed kernel against scipy's log-sigmoid in float64, for each way logits broadcast to values:
    samples of a posterior (logits (batch, D), values (m, batch, D)), a likelihood (logits (m, batch, D),
    data (batch, D)) and one logit per row shared by all units (logits (batch, 1): the elementwise fallback)."""
    from scipy.special import log_expit

    from concretelab.functional import bernoulli_log_prob_sum

    generator = torch.Generator().manual_seed(0)
    cases = [((4, 50), (3, 4, 50)), ((3, 4, 50), (4, 50)), ((4, 1), (3, 4, 50)), ((50,), (50,))]
    for logit_shape, value_shape in cases:
        logits = 12 * torch.randn(logit_shape, generator=generator, dtype=torch.float64)
        values = (torch.rand(value_shape, generator=generator, dtype=torch.float64) < 0.4).double()
        got = bernoulli_log_prob_sum(logits, values)
        a, b = np.broadcast_arrays(logits.numpy(), values.numpy())
        want = np.where(b == 1, log_expit(a), log_expit(-a)).sum(-1)  # log sigmoid(+-a), scipy's own kernel
        assert got.shape == want.shape, (logit_shape, value_shape)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)


def test_categorical_log_prob_against_mpmath_with_an_excluded_category() -> None:
    import mpmath

    from concretelab.functional import categorical_log_prob

    mpmath.mp.dps = 50
    logits = torch.tensor([3.0, -40.0, 0.5, -math.inf], dtype=torch.float64)
    total = mpmath.fsum(mpmath.exp(mpmath.mpf(a)) for a in logits.tolist()[:3])
    for k in range(3):
        value = torch.zeros(4, dtype=torch.float64)
        value[k] = 1.0
        want = float(mpmath.mpf(logits[k].item()) - mpmath.log(total))
        assert categorical_log_prob(logits, value).item() == pytest.approx(want, rel=1e-13)
    assert torch.isfinite(categorical_log_prob(logits, torch.tensor([1.0, 0, 0, 0], dtype=torch.float64)))


# ----- broadcasting and the binary density at the own noise ---------------------------------------------------


def test_broadcast_shapes_agrees_with_torch_and_raises_where_torch_does() -> None:
    rng = np.random.default_rng(0)
    sizes = (0, 1, 2, 3)
    for _ in range(2000):
        shapes = [tuple(int(s) for s in rng.choice(sizes, size=rng.integers(0, 4))) for _ in range(rng.integers(1, 4))]
        try:
            want = torch.broadcast_shapes(*shapes)
        except RuntimeError:
            with pytest.raises(RuntimeError, match="cannot be broadcast"):
                F.broadcast_shapes(*shapes)
            continue
        assert F.broadcast_shapes(*shapes) == want, shapes
    assert F.broadcast_shapes() == torch.Size([]) == torch.broadcast_shapes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_logistic_and_log_pdf_is_sample_logistic_with_its_density(dtype: torch.dtype) -> None:
    noise, log_pdf = F.sample_logistic_and_log_pdf((4000,), generator=_gen(3), dtype=dtype)
    assert torch.equal(noise, F.sample_logistic((4000,), generator=_gen(3), dtype=dtype))  # the same stream
    want = stats.logistic.logpdf(noise.double().numpy())  # scipy: an independent reference
    np.testing.assert_allclose(log_pdf.double().numpy(), want, rtol=1e-5 if dtype == torch.float32 else 1e-12,
                               atol=1e-5 if dtype == torch.float32 else 1e-12)


def test_logit_binconcrete_density_at_noise_against_mpmath_at_the_own_sample() -> None:
    """log q(z) at z = (log alpha + L)/lambda equals the kernel at L alone, for any alpha (50-digit reference of
    eq. 21 evaluated at z), including the logistic tails and temperatures from 1e-4 to 10."""
    import mpmath

    mpmath.mp.dps = 50
    noise = torch.tensor([-37.0, -17.3, -2.0, 0.0, 0.7, 16.6, 36.7], dtype=torch.float64)
    for lam in (1e-4, 0.5, 2.0 / 3.0, 10.0):
        for log_alpha in (-30.0, 0.0, 12.0):
            got = F.logit_binconcrete_log_density_at_noise(noise, torch.tensor(lam, dtype=torch.float64))
            for n, value in zip(noise.tolist(), got.tolist(), strict=True):
                z = (mpmath.mpf(log_alpha) + mpmath.mpf(n)) / lam
                t = lam * z - log_alpha
                want = mpmath.log(lam) - mpmath.log1p(mpmath.exp(-t)) - mpmath.log1p(mpmath.exp(t))
                assert abs(value - float(want)) <= 1e-12 * (1 + abs(float(want))), (lam, log_alpha, n)
    _, log_pdf = F.sample_logistic_and_log_pdf((1000,), generator=_gen(5), dtype=torch.float64)
    noise = F.sample_logistic((1000,), generator=_gen(5), dtype=torch.float64)
    lam = torch.tensor(0.3, dtype=torch.float64)
    torch.testing.assert_close(
        F.logit_binconcrete_log_density_at_noise(noise, lam, log_pdf=log_pdf),
        F.logit_binconcrete_log_density_at_noise(noise, lam), rtol=0, atol=1e-12,
    )
