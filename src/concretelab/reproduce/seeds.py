"""A Table 1 cell trained with several seeds (``reproduce table1 --seeds 0-3``): one result from its replicas.

Each replica is evaluated as the run of its seed (the same test images, k and evaluation seed), so the seeds
differ only in what training made of them: initialisation, data order and sampling noise. The cell's number is
the mean over the R seeds of their -L_k,

    mean = (1/R) Σ_s NLL_s,   sd = sqrt(Σ_s (NLL_s − mean)² / (R − 1)),   se = sd / sqrt(R),

with the 95% interval mean ± t_{R−1, 0.975} · se (Student's t with R − 1 degrees of freedom): the spread a new
set of R seeds would show, which is what decides whether two cells differ. Each seed's own result (its image-level
interval, large-k evaluation and curves) is kept under ``replicas``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from concretelab.train import TrainConfig

__all__ = ["combine_seeds", "seed_interval", "seed_label", "student_t_975", "welch_interval"]

# Student's t 0.975 quantiles for 1..30 degrees of freedom, to 3 decimals (Abramowitz & Stegun, Table 26.10);
# beyond 30 the expansion of A&S 26.7.5 in 1/ν, whose first three terms are within 1e-4 of the quantile there.
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
          2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)

# what differs between the replicas' results (kept per seed); everything else is the cell's
_PER_SEED = ("test_nll", "test_nll_stderr", "test_nll_ci95", "test_images", "test_subset_seed", "large_k",
             "k_tightening", "checkpoint", "checkpoint_step", "best_valid_nll", "curves", "train_devices")


_Z_975 = 1.959963984540054  # the normal 0.975 quantile


def student_t_975(degrees: int) -> float:
    """The 0.975 quantile of Student's t with ``degrees`` >= 1 degrees of freedom: the table to 30, then
    z + (z³ + z) / 4ν + (5z⁵ + 16z³ + 3z) / 96ν² (Abramowitz & Stegun 26.7.5)."""
    if degrees < 1:
        raise ValueError(f"degrees must be >= 1, got {degrees}")
    if degrees <= len(_T_975):
        return _T_975[degrees - 1]
    z, nu = _Z_975, float(degrees)
    return z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)


def seed_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, sd, half-width of the 95% interval t_{R-1, 0.975} sd / sqrt(R)) of R >= 2 per-seed values."""
    if len(values) < 2:
        raise ValueError(f"seed_interval needs at least 2 values, got {len(values)}")
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, sd, student_t_975(len(values) - 1) * sd / math.sqrt(len(values))


def _t_975_between(degrees: float) -> float:
    """The 0.975 quantile of Student's t at real ``degrees`` >= 1: exact at whole numbers (``student_t_975``),
    linear in 1/ν between them. The quantile is convex in 1/ν, so this errs wide, by under 2% from ν = 2 on."""
    if degrees < 1:
        raise ValueError(f"degrees must be >= 1, got {degrees}")
    low, high = math.floor(degrees), math.ceil(degrees)
    if low == high:
        return student_t_975(low)
    weight = (1 / degrees - 1 / high) / (1 / low - 1 / high)
    return weight * student_t_975(low) + (1 - weight) * student_t_975(high)


def welch_interval(first: Sequence[float], second: Sequence[float]) -> tuple[float, float, float]:
    """The difference of two groups' means over independent seeds, mean(second) − mean(first), with the half-width
    of its Welch 95% interval and the Welch–Satterthwaite degrees of freedom:

        se² = s₁²/n₁ + s₂²/n₂,   ν = se⁴ / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1)),   half = t_{ν, 0.975} · se

    (Welch 1947). Each group needs at least 2 values. Where both groups have no spread, the half-width is 0 and
    ν is n₁ + n₂ − 2."""
    if len(first) < 2 or len(second) < 2:
        raise ValueError(f"welch_interval needs at least 2 values per group, got {len(first)} and {len(second)}")
    mean_1, sd_1, _ = seed_interval(first)
    mean_2, sd_2, _ = seed_interval(second)
    v_1, v_2 = sd_1**2 / len(first), sd_2**2 / len(second)
    if v_1 + v_2 == 0:
        return mean_2 - mean_1, 0.0, float(len(first) + len(second) - 2)
    degrees = (v_1 + v_2) ** 2 / (v_1**2 / (len(first) - 1) + v_2**2 / (len(second) - 1))
    return mean_2 - mean_1, _t_975_between(degrees) * math.sqrt(v_1 + v_2), degrees


def seed_label(seeds: Sequence[int]) -> str:
    """A folder-name label of a seed list: runs of consecutive seeds as ranges, ``0-3``, ``0-2_5``."""
    parts: list[str] = []
    start = previous = seeds[0]
    for seed in [*seeds[1:], None]:
        if seed is not None and seed == previous + 1:
            previous = seed
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if seed is not None:
            start = previous = seed
    return "_".join(parts)


def combine_seeds(per_seed: Sequence[dict[str, Any]], request: dict[str, Any], config: TrainConfig) -> dict[str, Any]:
    """The cell's result from its replicas' results (one per seed, in ``config.seed_list`` order)."""
    seeds = list(config.seed_list)
    if len(per_seed) != len(seeds) or len(seeds) < 2:
        raise ValueError(f"combine_seeds needs one result per seed of {seeds}, got {len(per_seed)}")
    values = [float(result["test_nll"]) for result in per_seed]
    mean, sd, half = seed_interval(values)
    se = sd / math.sqrt(len(values))
    first = per_seed[0]
    combined = {key: value for key, value in first.items() if key not in _PER_SEED}
    valid = [result.get("best_valid_nll") for result in per_seed]
    large = [result["large_k"]["nll"] for result in per_seed if result.get("large_k")]
    combined.update({
        "seeds": seeds,
        "test_nll": mean,
        "test_nll_stderr": se,
        "test_nll_ci95": [mean - half, mean + half],
        "seed_sd": sd,
        "spread": "seeds",  # test_nll_stderr and test_nll_ci95 are over seeds (each seed's over images: replicas)
        "test_images": first["test_images"],
        "test_subset_seed": first.get("test_subset_seed"),
        "best_valid_nll": sum(valid) / len(valid) if all(v is not None for v in valid) else None,
        "large_k_mean_nll": sum(large) / len(large) if len(large) == len(per_seed) else None,
        "request": request,
        "config": {**first["config"], "seeds": config.seeds},
        "replicas": [{"seed": seed, **{key: result.get(key) for key in _PER_SEED}}
                     for seed, result in zip(seeds, per_seed, strict=True)],
        "curves": first["curves"],  # seed 0's (or the first seed's) curves, as a single run shows them
        "large_k": None,
        "k_tightening": None,
    })
    combined.pop("seed", None)
    return combined
