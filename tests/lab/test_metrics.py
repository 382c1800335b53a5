"""Metrics on a synthetic estimator with known bias and covariance: g = g* + offset + L ε, ε ~ N(0, I).

Seeds: each test uses a fixed seed. Intervals are at level 0.999, so with the 6-9 intervals a test checks
a fresh seed would fail with probability below 1%; the fixed seed makes the run deterministic.
"""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.lab.metrics import SCALAR_METRICS, bias_test, gradient_metrics, normal_quantile

D = 5
EXACT = torch.tensor([0.5, -1.0, 0.2, 0.0, 2.0], dtype=torch.float64)
OFFSET = torch.tensor([0.3, 0.0, -0.2, 0.1, 0.0], dtype=torch.float64)
CHOL = torch.tensor(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0],
        [0.5, 0.8, 0.0, 0.0, 0.0],
        [0.0, 0.3, 0.6, 0.0, 0.0],
        [0.2, 0.0, 0.1, 0.4, 0.0],
        [0.0, 0.0, 0.0, 0.5, 1.5],
    ],
    dtype=torch.float64,
)
COV = CHOL @ CHOL.T


def synthetic(n: int, seed: int, offset: torch.Tensor = OFFSET) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, D, generator=gen, dtype=torch.float64)
    return EXACT + offset + eps @ CHOL.T


def monte_carlo_reference(offset: torch.Tensor) -> dict[str, float]:
    """Population values of the per-estimate averages (mean cosine, DSNR) from 400k synthetic draws."""
    g = synthetic(400_000, seed=123, offset=offset)
    mean = EXACT + offset
    u = mean / mean.norm()
    par = g @ u
    perp = (g - par[:, None] * u).norm(dim=1)
    cos = (g @ EXACT) / (g.norm(dim=1) * EXACT.norm())
    return {"dsnr": float((par.abs() / perp).mean()), "mean_cosine": float(cos.mean())}


def test_recovers_known_bias_variance_snr_cosine() -> None:
    n = 4000
    m = gradient_metrics(synthetic(n, seed=0), EXACT, confidence=0.999, bootstrap=400,
                         generator=torch.Generator().manual_seed(1))
    mean = EXACT + OFFSET
    std = COV.diagonal().sqrt()
    truth = {
        "bias_norm_debiased": float(OFFSET.norm()),
        "variance": float(COV.trace()),
        "snr_mean": float((mean.abs() / std).mean()),
        "cosine_of_mean": float(mean @ EXACT / (mean.norm() * EXACT.norm())),
        "mse": float(OFFSET.norm() ** 2 + COV.trace()),
        "noise_floor": math.sqrt(float(COV.trace()) / n),
        **monte_carlo_reference(OFFSET),
    }
    for name, value in truth.items():
        interval = m[name]
        assert interval.contains(value), f"{name}: {value} outside [{interval.low}, {interval.high}]"
        assert interval.low <= interval.value <= interval.high, name
    for i in range(D):
        assert m.bias[i].contains(float(OFFSET[i])), f"bias[{i}]: {OFFSET[i]} outside {m.bias[i]}"
        snr = float(mean[i].abs() / std[i])  # standard error of its estimate: sqrt((1 + snr²/2) / N)
        assert abs(m.snr[i] - snr) < 4 * math.sqrt((1 + snr**2 / 2) / n), f"snr[{i}]"
    # The per-coordinate interval is normal theory: half-width z σ_i / sqrt(N).
    z = normal_quantile(0.999)
    assert m.bias[0].high - m.bias[0].value == pytest.approx(z * float(std[0]) / math.sqrt(n), rel=0.1)


@pytest.mark.parametrize("offset", [OFFSET, torch.zeros(D, dtype=torch.float64)])
def test_point_values_are_the_textbook_estimates(offset) -> None:
    # exact identities on 40 draws, where N − 1 and N differ by 2.5% (the intervals above cannot see that): the
    # variance is the trace of the unbiased sample covariance, and the debiased bias removes its share tr Σ / N
    # from the squared distance of the mean, since E‖ḡ − g*‖² = ‖bias‖² + tr Σ / N
    n = 40
    g = synthetic(n, seed=8, offset=offset)
    m = gradient_metrics(g, EXACT, generator=torch.Generator().manual_seed(9))
    variance = float(g.var(dim=0, correction=1).sum())
    distance_sq = float(((g.mean(dim=0) - EXACT) ** 2).sum())
    assert m["variance"].value == pytest.approx(variance, rel=1e-12)
    assert m["noise_floor"].value == pytest.approx(math.sqrt(variance / n), rel=1e-12)
    assert m["bias_norm"].value == pytest.approx(math.sqrt(distance_sq), rel=1e-12)
    assert m["bias_norm_debiased"].value == pytest.approx(math.sqrt(max(0.0, distance_sq - variance / n)), abs=1e-12)
    assert m["mse"].value == pytest.approx(float(((g - EXACT) ** 2).sum(dim=1).mean()), rel=1e-12)
    assert m["bias_norm_debiased"].value < m["bias_norm"].value  # tr Σ / N > 0 is taken out


def test_intervals_shrink_and_separate_biased_from_unbiased() -> None:
    unbiased = gradient_metrics(synthetic(4000, seed=2, offset=torch.zeros(D, dtype=torch.float64)), EXACT,
                                confidence=0.999, generator=torch.Generator().manual_seed(3))
    biased = gradient_metrics(synthetic(4000, seed=2), EXACT, confidence=0.999,
                              generator=torch.Generator().manual_seed(3))
    assert all(b.contains(0.0) for b in unbiased.bias)
    assert not biased.bias[0].contains(0.0)  # offset 0.3 against a standard error of 1/sqrt(4000)
    assert biased["bias_norm_debiased"].low > unbiased["bias_norm_debiased"].high
    small = gradient_metrics(synthetic(250, seed=4), EXACT, generator=torch.Generator().manual_seed(5))
    large = gradient_metrics(synthetic(4000, seed=4), EXACT, generator=torch.Generator().manual_seed(5))
    width = {k: large[k].high - large[k].low for k in ("variance", "bias_norm", "snr_mean")}
    for k, w in width.items():
        assert w < small[k].high - small[k].low, k


def test_same_seed_same_intervals_and_unknown_reference() -> None:
    g = synthetic(300, seed=6)
    a = gradient_metrics(g, EXACT, generator=torch.Generator().manual_seed(7))
    b = gradient_metrics(g, EXACT, generator=torch.Generator().manual_seed(7))
    assert a.scalars == b.scalars
    unknown = gradient_metrics(g, torch.full((D,), math.nan, dtype=torch.float64))
    assert math.isnan(unknown["bias_norm"].value) and math.isnan(unknown["cosine_of_mean"].value)
    assert unknown["variance"].value == pytest.approx(a["variance"].value)
    assert set(a.scalars) == set(SCALAR_METRICS)


def test_one_dimension_has_no_direction() -> None:
    g = torch.randn(100, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 1.0
    m = gradient_metrics(g, torch.ones(1, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    assert math.isnan(m["dsnr"].value)
    assert math.isfinite(m["snr_mean"].value) and math.isfinite(m["variance"].value)


@pytest.mark.parametrize(
    ("estimates", "exact", "kwargs", "match"),
    [
        (torch.zeros(1, 3), torch.zeros(3), {}, "N >= 2"),
        (torch.zeros(5, 3), torch.zeros(4), {}, "agree in shape"),
        (torch.zeros(5, 3), torch.zeros(3), {"bootstrap": 3}, "bootstrap"),
        (torch.zeros(5, 3), torch.zeros(3), {"confidence": 1.0}, "confidence"),
        (torch.tensor([[0.0], [math.inf]]), torch.zeros(1), {}, "finite"),
    ],
)
def test_bad_arguments(estimates: torch.Tensor, exact: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gradient_metrics(estimates, exact, **kwargs)


def test_bias_test_detects_offset_and_handles_degenerate_covariance() -> None:
    zero = torch.zeros(D, dtype=torch.float64)
    biased = gradient_metrics(synthetic(4000, seed=8), EXACT, generator=torch.Generator().manual_seed(9))
    unbiased = gradient_metrics(synthetic(4000, seed=8, offset=zero), EXACT, generator=torch.Generator().manual_seed(9))
    assert biased.bias_pvalue < 1e-10 and biased.bias_dof == D
    assert unbiased.bias_pvalue > 0.001  # fails with probability 0.1% for a fresh seed
    # Estimates that sum to zero along the last axis (like score-function estimates of softmax logits):
    # the covariance is singular; the test uses its range and flags a bias outside it.
    g = synthetic(2000, seed=10, offset=zero) - EXACT
    g = g - g.mean(dim=1, keepdim=True)
    _, dof, p = bias_test(g, zero)
    assert dof == D - 1 and p > 0.001
    assert bias_test(g, torch.full((D,), 0.1, dtype=torch.float64))[2] == 0.0
    constant = torch.full((10, 1), 0.005, dtype=torch.float64)
    assert bias_test(constant, torch.tensor([0.005], dtype=torch.float64)) == (0.0, 0, 1.0)
