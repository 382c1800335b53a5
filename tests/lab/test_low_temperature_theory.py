"""scripts/lab_low_temperature.py's theory step: the mean and variance of the one-sample Concrete and ST-Gumbel
estimators on the toy problem f(b) = (b − t)², which docs/low-temperature.md plots beside the lab's measurements.

Two independent references. At θ = 0 and λ = 1, z = σ(L) is uniform on (0, 1) and every moment is a Beta integral:
    Concrete: E g = 1/6 − t/3,   E g² = 4 (1/105 − t/30 + t²/30);
    ST-Gumbel: E g = (1 − 2t)/6,  E g² = ((1 − t)² + t²)/15.
Elsewhere, a Monte Carlo average of the estimator drawn from logistic noise, with a 6-standard-error tolerance.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "lab_low_temperature.py"
_spec = importlib.util.spec_from_file_location("lab_low_temperature", SCRIPT)
theory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(theory)


@pytest.mark.parametrize("t", [0.49, 0.499, 0.2])
def test_moments_at_a_uniform_relaxation_are_beta_integrals(t) -> None:
    mean, variance = theory.toy_moments(0.0, t, 1.0, "concrete")
    assert mean == pytest.approx(1 / 6 - t / 3, abs=1e-12)
    assert variance == pytest.approx(4 * (1 / 105 - t / 30 + t**2 / 30) - (1 / 6 - t / 3) ** 2, abs=1e-12)
    mean, variance = theory.toy_moments(0.0, t, 1.0, "st_gumbel")
    assert mean == pytest.approx((1 - 2 * t) / 6, abs=1e-12)
    assert variance == pytest.approx(((1 - t) ** 2 + t**2) / 15 - ((1 - 2 * t) / 6) ** 2, abs=1e-12)


@pytest.mark.parametrize("estimator", ["concrete", "st_gumbel"])
@pytest.mark.parametrize(("theta", "temperature"), [(2.0, 0.3), (-0.5, 2.0)])
def test_moments_match_the_estimator_drawn_from_logistic_noise(estimator, theta, temperature) -> None:
    t, n = 0.49, 2_000_000
    u = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(11)).clamp(1e-300, 1 - 1e-16)
    v = (theta + torch.log(u) - torch.log1p(-u)) / temperature  # (θ + L)/λ
    z = torch.sigmoid(v)
    point = z if estimator == "concrete" else (v > 0).double()
    g = 2 * (point - t) * z * (1 - z) / temperature  # f'(x) ∂z/∂θ
    mean, variance = theory.toy_moments(theta, t, temperature, estimator)
    se_mean = math.sqrt(float(g.var()) / n)
    se_var = math.sqrt(float(((g - g.mean()) ** 2).var()) / n)
    assert abs(float(g.mean()) - mean) < 6 * se_mean
    assert abs(float(g.var()) - variance) < 6 * se_var
