"""Several seeds of one cell (concretelab.reproduce.seeds): the interval over seeds and the overview point."""

from __future__ import annotations

import statistics

import pytest
from scipy import stats

from concretelab.reproduce.render import overview_point
from concretelab.reproduce.seeds import seed_interval, seed_label, student_t_975, welch_interval


@pytest.mark.parametrize("degrees", [1, 2, 3, 5, 10, 29, 30, 31, 40, 100, 1000])
def test_student_t_quantiles_match_scipy(degrees) -> None:
    """The table's 3 decimals (up to 30 degrees of freedom), then the expansion in 1/ν within 1e-4."""
    assert student_t_975(degrees) == pytest.approx(stats.t.ppf(0.975, degrees), abs=6e-4 if degrees <= 30 else 1e-4)


def test_student_t_refuses_zero_degrees() -> None:
    with pytest.raises(ValueError, match="degrees"):
        student_t_975(0)


def test_seed_interval_is_the_t_interval_of_the_mean() -> None:
    values = [98.1, 97.4, 99.0, 98.6]
    mean, sd, half = seed_interval(values)
    assert mean == pytest.approx(statistics.fmean(values)) and sd == pytest.approx(statistics.stdev(values))
    low, high = stats.t.interval(0.95, 3, loc=mean, scale=stats.sem(values))
    assert half == pytest.approx((high - low) / 2, rel=3e-4)  # the table's 3 decimals
    with pytest.raises(ValueError, match="at least 2"):
        seed_interval([1.0])


@pytest.mark.parametrize(("first", "second"), [
    ([101.1, 100.9, 101.3], [99.2, 99.5, 99.1]),  # 3 seeds each, as the temperature study
    ([106.0, 107.9, 105.1], [101.0, 101.1, 100.95]),  # unequal spreads: ν near 2
    ([98.0, 98.4], [97.0, 97.9, 96.8, 97.5, 97.2]),  # unequal sizes
])
def test_welch_interval_matches_scipy(first, second) -> None:
    """Against scipy's Welch test (its interval uses the exact t quantile at real ν; ours interpolates in 1/ν
    between whole ν, which can only widen it, by under 2% from ν = 2 on)."""
    difference, half, degrees = welch_interval(first, second)
    reference = stats.ttest_ind(second, first, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert difference == pytest.approx(statistics.fmean(second) - statistics.fmean(first))
    assert degrees == pytest.approx(reference.df) and degrees >= 2
    exact = (interval.high - interval.low) / 2
    assert exact * (1 - 6e-4) <= half <= exact * 1.02


def test_welch_interval_without_spread_and_with_one_value() -> None:
    assert welch_interval([1.0, 1.0], [3.0, 3.0, 3.0]) == (2.0, 0.0, 3.0)
    with pytest.raises(ValueError, match="at least 2 values per group"):
        welch_interval([1.0], [2.0, 3.0])


@pytest.mark.parametrize(("seeds", "label"), [
    ((0, 1, 2, 3), "0-3"), ((0, 1, 2, 5), "0-2_5"), ((4,), "4"), ((3, 5, 6), "3_5-6"), ((7, 2), "7_2"),
])
def test_seed_label_writes_runs_of_seeds_as_ranges(seeds, label) -> None:
    assert seed_label(seeds) == label


def test_the_overview_point_of_seeds_is_the_mean_of_their_large_k_estimates() -> None:
    def replica(seed: int, nll: float, tightening: float) -> dict:
        return {"seed": seed, "test_nll": nll, "test_nll_ci95": [nll - 0.5, nll + 0.5], "test_subset_seed": None,
                "k_tightening": {"difference": tightening, "difference_ci95": [tightening - 0.1, tightening + 0.1]}}

    replicas = [replica(0, 100.0, 0.8), replica(1, 101.0, 0.7), replica(2, 99.5, 0.9)]
    result = {"status": "done", "sampler": "exact", "test_nll": 100.1667, "replicas": replicas}
    value, half, estimated = overview_point(result)
    estimates = [99.2, 100.3, 98.6]
    assert estimated and value == pytest.approx(statistics.fmean(estimates))
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * stats.sem(estimates), rel=1e-3)
