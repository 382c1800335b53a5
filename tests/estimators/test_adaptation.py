"""Stateful estimators adapt as they are called, from past draws, and the adaptation helps.

The toy problem is Tucker et al. (2017) / Grathwohl et al. (2018)'s E[(b − 0.499)²] with p = σ(θ) = 1/2,
where the gradient (0.0005) is tiny next to the spread of a one-sample estimate.
"""

from __future__ import annotations

import torch

from concretelab.estimators import exact_gradient, get_estimator


def toy(b: torch.Tensor) -> torch.Tensor:
    return ((b - 0.499) ** 2).sum(-1)


THETA = torch.zeros(1, dtype=torch.float64)


def _variance(est, seed=5, draws=20_000):
    est.adapt = False
    return float(est.per_draw(toy, THETA, 1, draws, generator=torch.Generator().manual_seed(seed)).var(0).sum())


def _adapt(est, calls=300, samples=16):
    gen = torch.Generator().manual_seed(0)
    for _ in range(calls):
        est.estimate(toy, THETA, samples, generator=gen)


def test_rebar_adaptation_reduces_variance_on_the_toy_problem():
    before = _variance(get_estimator("rebar"))
    est = get_estimator("rebar")
    _adapt(est)
    after = _variance(est)
    assert after < 0.85 * before, (before, after)
    assert est.eta != 1.0 and est.temperature != 0.5
    assert all(map(torch.isfinite, (torch.tensor(est.eta), torch.tensor(est.temperature))))
    est.reset()
    assert est.eta == 1.0 and abs(est.temperature - 0.5) < 1e-12


def test_relax_adaptation_reduces_variance_by_orders_of_magnitude():
    before = _variance(get_estimator("relax"))
    est = get_estimator("relax")
    _adapt(est)
    after = _variance(est)
    assert after < 0.01 * before, (before, after)
    # still unbiased after adapting
    draws = est.per_draw(toy, THETA, 1, 20_000, generator=torch.Generator().manual_seed(9))
    se = draws.std(0) / 20_000**0.5
    assert ((draws.mean(0) - exact_gradient(toy, THETA)).abs() <= 5 * se + 1e-9).all()


def test_frozen_control_variates_do_not_move():
    for name in ("rebar", "relax"):
        est = get_estimator(name, adapt=False)
        _adapt(est, calls=5)
        assert est.eta == 1.0 and abs(est.temperature - 0.5) < 1e-12


def test_reinforce_baseline_uses_only_past_calls_and_tracks_the_mean():
    logits = torch.tensor([0.3, -0.2], dtype=torch.float64)
    f = lambda b: 10.0 + (b * torch.tensor([1.0, 2.0], dtype=b.dtype)).sum(-1)  # noqa: E731
    est = get_estimator("reinforce", decay=0.5)
    plain = get_estimator("reinforce", use_baseline=False)
    first = est.estimate(f, logits, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(first, plain.estimate(f, logits, 8, generator=torch.Generator().manual_seed(0)))
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        est.estimate(f, logits, 64, generator=gen)
    mean_f = 10.0 + float((torch.sigmoid(logits) * torch.tensor([1.0, 2.0], dtype=torch.float64)).sum())
    assert abs(est.baseline - mean_f) < 0.3
    # a baseline near E[f] cuts the variance of the signal's large constant part
    v_plain = plain.per_draw(f, logits, 1, 5_000, generator=torch.Generator().manual_seed(2)).var(0).sum()
    v_base = est.per_draw(f, logits, 1, 5_000, generator=torch.Generator().manual_seed(2)).var(0).sum()
    assert v_base < 0.1 * v_plain


def test_nvil_learns_its_baseline():
    logits = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64)
    f = lambda b: 20.0 + (b * torch.tensor([1.0, -2.0, 0.5], dtype=b.dtype)).sum(-1)  # noqa: E731
    est = get_estimator("nvil", lr=0.05)
    v_before = est.per_draw(f, logits, 1, 5_000, generator=torch.Generator().manual_seed(2)).var(0).sum()
    est.reset()
    gen = torch.Generator().manual_seed(1)
    for _ in range(300):
        est.estimate(f, logits, 32, generator=gen)
    v_after = est.per_draw(f, logits, 1, 5_000, generator=torch.Generator().manual_seed(2)).var(0).sum()
    assert v_after < 0.1 * v_before, (v_before, v_after)
    # the training-time signal: centred by c_ψ(x) + c̄, divided by max(1, running std) (Mnih & Gregor 2014,
    # Sec. 3.3), checked on hand-set moments: std 4 divides by 4, std 0.5 divides by 1 (not by 0.5)
    values = torch.tensor([20.0, 22.0], dtype=torch.float64)
    baseline = est.baseline(logits)
    for var, divisor in ((16.0, 4.0), (0.25, 1.0)):
        est.moments.mean.fill_(3.0)
        est.moments.var.fill_(var)
        want = (values - baseline - 3.0) / divisor
        torch.testing.assert_close(est.learning_signal(values, logits, normalise=True), want)
        torch.testing.assert_close(est.learning_signal(values, logits, normalise=False), values - baseline - 3.0)


def test_running_moments_track_a_stream_of_known_mean_and_spread():
    """After many batches of N(5, 3^2) the moments are about (5, 9) and the divisor about 3; a stream with
    standard deviation 0.5 leaves the divisor at exactly 1."""
    from concretelab.estimators.score import RunningMoments

    gen = torch.Generator().manual_seed(0)
    wide, narrow = RunningMoments(0.8), RunningMoments(0.8)
    for _ in range(60):
        wide.update(5.0 + 3.0 * torch.randn(20_000, dtype=torch.float64, generator=gen))
        narrow.update(-2.0 + 0.5 * torch.randn(20_000, dtype=torch.float64, generator=gen))
    # the batch mean of 20,000 draws has sd 3/141 = 0.02 and the moving average mixes ~9 batches: 0.1 is > 10 sd
    assert abs(float(wide.mean) - 5.0) < 0.1 and abs(float(wide.scale()) - 3.0) < 0.1
    assert abs(float(narrow.mean) + 2.0) < 0.1 and float(narrow.scale()) == 1.0


def test_nvil_per_example_baseline_for_a_trainer():
    # training-time use: signals (samples, batch), features (batch, F); the baseline must learn the part of
    # the signal that depends on the input, leaving the centred signal small.
    gen = torch.Generator().manual_seed(0)
    est = get_estimator("nvil", hidden=16, lr=0.02)
    w = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    for _ in range(400):
        x = torch.randn(32, 3, dtype=torch.float64, generator=gen)
        values = 5.0 + (x @ w) + 0.1 * torch.randn(4, 32, dtype=torch.float64, generator=gen)
        est.update(values, x)
    x = torch.randn(256, 3, dtype=torch.float64, generator=gen)
    values = 5.0 + (x @ w) + 0.1 * torch.randn(4, 256, dtype=torch.float64, generator=gen)
    centred = est.learning_signal(values, x, normalise=False)
    assert centred.shape == (4, 256)
    assert centred.pow(2).mean() < 0.05 * (values - values.mean()).pow(2).mean()


STATEFUL = sorted(name for name, cls in __import__("concretelab.estimators", fromlist=["ESTIMATORS"]).ESTIMATORS.items()
                  if cls.stateful)


def test_a_restored_state_continues_exactly_where_the_first_estimator_is() -> None:
    """After 5 calls, a new estimator loaded with the first's ``state_dict`` gives the same next estimates, and both
    adapt the same way (also RELAX's network and NVIL's baseline, which are built at the first call)."""
    from .test_per_example import BERNOULLI

    assert {"rebar", "relax", "double_cv", "rodeo", "reinforce", "nvil"} <= set(STATEFUL)
    for name in STATEFUL:
        first = get_estimator(name)
        k = max(2, first.min_samples)
        gen = torch.Generator().manual_seed(0)
        for _ in range(5):
            first.estimate(BERNOULLI.f, BERNOULLI.logits, k, generator=gen)
        second = get_estimator(name)
        second.load_state_dict(first.state_dict())
        for call in range(3):
            a = first.estimate(BERNOULLI.f, BERNOULLI.logits, k, generator=torch.Generator().manual_seed(call))
            b = second.estimate(BERNOULLI.f, BERNOULLI.logits, k, generator=torch.Generator().manual_seed(call))
            assert torch.equal(a, b), (name, call)
    assert get_estimator("disarm").state_dict() == {}
