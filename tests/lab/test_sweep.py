"""The sweep on the toy problem: equal-cost sample counts, counted evaluations, and unbiased estimators
whose per-coordinate interval covers the exact gradient (level 0.999 per coordinate, fixed seed)."""

from __future__ import annotations

import pytest

from concretelab.lab.problems import toy_problem
from concretelab.lab.sweep import SweepConfig, derive_seed, run_sweep, takes_temperature


def test_equal_cost_and_unbiased_coverage() -> None:
    problem = toy_problem(0.49, logits=[0.0, 1.0])
    config = SweepConfig(estimators=("reinforce_loo", "arm", "rebar", "concrete"), temperatures=(0.5,),
                         draws=2000, bootstrap=20, timing_repeats=1, confidence=0.999)
    rows, metadata = run_sweep([problem], config, show_progress=False)
    by_name = {r["estimator"]: r for r in rows}
    assert {n: r["samples"] for n, r in by_name.items()} == {"reinforce_loo": 6, "arm": 3, "rebar": 2, "concrete": 6}
    for row in rows:
        assert row["evaluations_counted"] == row["evaluations_per_estimate"] == 6
        assert row["temperature"] == (0.5 if row["estimator"] in ("rebar", "concrete") else None)
    for name in ("reinforce_loo", "arm", "rebar"):
        row = by_name[name]
        assert row["unbiased"]
        for low, high in zip(row["bias_per_coordinate_low"], row["bias_per_coordinate_high"], strict=True):
            assert low <= 0.0 <= high, name
    # the Concrete estimator at λ = 0.5 is biased by much more than its noise on coordinate θ = 1
    concrete = by_name["concrete"]
    assert not (concrete["bias_per_coordinate_low"][1] <= 0.0 <= concrete["bias_per_coordinate_high"][1])
    assert metadata["problems"][0]["key"] == "toy-t0.49-theta0_1"


def test_config_checks_and_helpers() -> None:
    assert takes_temperature("concrete") and takes_temperature("rebar") and not takes_temperature("arm")
    assert derive_seed(0, "a", 1.0) == derive_seed(0, "a", 1.0) != derive_seed(1, "a", 1.0)
    with pytest.raises(ValueError, match="unknown estimator"):
        SweepConfig(estimators=("concrete", "magic"))
    with pytest.raises(ValueError, match="temperatures"):
        SweepConfig(estimators=("concrete",), temperatures=(1.0, -1.0))
    with pytest.raises(ValueError, match="draws"):
        SweepConfig(estimators=("concrete",), draws=1)
