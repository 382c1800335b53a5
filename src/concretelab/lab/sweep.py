"""The gradient-estimator sweep: every estimator × temperature on a problem, measured against the exact gradient.

For each configuration the lab draws ``draws`` independent estimates, each what
``estimator.estimate(f, logits, samples)`` returns (computed in batches with ``estimator.per_draw``), and
summarises them with ``concretelab.lab.metrics.gradient_metrics``. Cost is measured two ways: the number
of points at which f is evaluated (counted by wrapping f, and compared with the declared
``evaluations(logits) × samples``) and the wall time of separate ``estimate`` calls.

Equal cost. With ``samples=None`` every estimator gets the same budget of f-evaluations per estimate:
samples = max(min_samples, budget // evaluations per sample), the evaluations per sample being
``estimator.evaluations(logits)`` (``evaluations_per_sample``, except for IndeCateR, whose 1 + n (K − 1) grows
with the problem's n variables of K categories, so it may exceed the budget with one sample). The table also
reports the work-normalised variance tr Σ × evaluations per estimate (the variance one evaluation's worth of the
estimator would have, for estimators whose variance falls like 1/samples), so estimators can be compared at any
budget.

Stateful estimators (REINFORCE's moving-average baseline, NVIL's baseline network, REBAR's η and λ,
RELAX's control variate) are ``reset()`` before every batch of draws, so they are measured at their
initial state, not after adaptation; REBAR's and RELAX's temperature is their initial one.

Reference gradient: ∂/∂θ E[f(b)] by enumeration, except for VIMCO, whose estimand is the gradient of the
multi-sample objective E[log (1/S) Σ_s exp f(b^s)]; that one is enumerated when states**S is small enough,
otherwise its bias columns are left empty (NaN).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from concretelab.checks import check_int
from concretelab.estimators import ESTIMATORS, estimator_options, get_estimator
from concretelab.estimators.exact import exact_gradient, exact_multisample_gradient
from concretelab.lab.metrics import SCALAR_METRICS, gradient_metrics, normal_quantile
from concretelab.lab.problems import Problem
from concretelab.seeding import derive_seed

__all__ = [
    "SweepConfig",
    "check_estimator_names",
    "check_temperatures",
    "derive_seed",
    "multisample_estimators",
    "run_sweep",
    "takes_temperature",
]

log = logging.getLogger(__name__)

# Estimators whose estimand is VIMCO's multi-sample objective rather than E[f(b)].
_MULTISAMPLE_OBJECTIVE = ("vimco",)


def multisample_estimators() -> tuple[str, ...]:
    """Names whose reference is the exact gradient of the multi-sample objective (VIMCO)."""
    return tuple(n for n in _MULTISAMPLE_OBJECTIVE if n in _estimator_names())


@dataclass(frozen=True)
class SweepConfig:
    """What to measure; the defaults run every problem with every estimator in a few minutes on 2 cores."""

    estimators: tuple[str, ...]
    temperatures: tuple[float, ...] = (10.0, 1.0, 0.1, 0.01, 0.001)
    draws: int = 1000  # independent estimates per configuration
    samples: int | None = None  # samples per estimate; None: derived from `budget` (equal cost)
    budget: int = 6  # f-evaluations per estimate when samples is None (lcm of 1, 2 and 3 evaluations/sample)
    seed: int = 0  # every configuration derives its own generator seed from this one
    confidence: float = 0.95  # two-sided level of every interval
    bootstrap: int = 400  # bootstrap resamples for the scalar metrics' intervals
    timing_repeats: int = 20  # separate estimate() calls timed per configuration
    chunk_draws: int = 250  # draws per batched per_draw call (bounds memory)

    def __post_init__(self) -> None:
        check_estimator_names(self.estimators)
        check_temperatures(self.temperatures)
        for name in ("draws", "budget", "bootstrap", "chunk_draws"):
            check_int(name, getattr(self, name), 2 if name == "draws" else 1)
        if self.samples is not None:
            check_int("samples", self.samples)
        check_int("timing_repeats", self.timing_repeats, 0)


def _estimator_names() -> tuple[str, ...]:
    return tuple(ESTIMATORS)


def check_estimator_names(names: Sequence[str]) -> tuple[str, ...]:
    """The names, or a ValueError listing the unknown ones and the known ones."""
    known = _estimator_names()
    if not names:
        raise ValueError(f"estimators must name at least one of {', '.join(known)}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown estimator(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    return tuple(names)


def check_temperatures(temperatures: Iterable[float]) -> tuple[float, ...]:
    """Finite positive temperatures, or a ValueError naming the bad one."""
    values = tuple(float(t) for t in temperatures)
    if not values:
        raise ValueError("temperatures must hold at least one value")
    for t in values:
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperatures must be finite and > 0, got {t!r}")
    return values


def takes_temperature(name: str) -> bool:
    """Whether ``get_estimator(name, ..., temperature=...)`` accepts a temperature."""
    return "temperature" in estimator_options(name)


class _CountingObjective:
    """f with a counter of the points it has been evaluated at (rows of its input)."""

    def __init__(self, f: Callable[[Tensor], Tensor]) -> None:
        self.f = f
        self.count = 0

    def __call__(self, b: Tensor) -> Tensor:
        self.count += int(b.shape[0])
        return self.f(b)


def _samples_for(estimator: Any, config: SweepConfig, logits: Tensor) -> int:
    minimum = int(getattr(estimator, "min_samples", 1))
    if config.samples is not None:
        if config.samples < minimum:
            raise ValueError(f"estimator {estimator.name!r} needs samples >= {minimum}, got samples={config.samples}")
        return config.samples
    per_sample = estimator.evaluations(logits)
    samples = max(minimum, config.budget // per_sample)
    if samples * per_sample != config.budget:
        log.warning(
            "%s: budget %d is not a multiple of %d evaluations per sample; it uses %d samples (%d evaluations)",
            estimator.name, config.budget, per_sample, samples, samples * per_sample,
        )
    return samples


def _reference(problem: Problem, name: str, samples: int, cache: dict[Any, Tensor | None]) -> Tensor | None:
    """The exact gradient the estimator estimates, or None when it cannot be enumerated."""
    key: tuple[Any, ...] = ("multi", samples) if name in _MULTISAMPLE_OBJECTIVE else ("single",)
    if key not in cache:
        try:
            if key[0] == "multi":
                cache[key] = exact_multisample_gradient(problem.f, problem.logits, samples, problem.family)
            else:
                cache[key] = exact_gradient(problem.f, problem.logits, problem.family)
        except ValueError as error:
            log.warning("%s: no exact reference for %s with %d samples (%s)", problem.key, name, samples, error)
            cache[key] = None
    return cache[key]


def _configurations(problem: Problem, config: SweepConfig) -> list[tuple[str, float | None]]:
    """(estimator, temperature or None) pairs this problem's family supports."""
    pairs: list[tuple[str, float | None]] = []
    for name in config.estimators:
        try:
            get_estimator(name, family=problem.family)
        except ValueError as error:
            log.warning("%s: skipping %s (%s)", problem.key, name, error)
            continue
        if takes_temperature(name):
            pairs.extend((name, t) for t in config.temperatures)
        else:
            pairs.append((name, None))
    return pairs


def _draws(estimator: Any, f: Any, logits: Tensor, samples: int, config: SweepConfig, generator: torch.Generator,
           progress: Callable[[int], None]) -> tuple[Tensor, float]:
    """``config.draws`` independent estimates (draws, *logits.shape), taken in chunks of ``config.chunk_draws``
    (a stateful estimator is reset before each chunk, so every chunk starts from the same state), and the seconds
    the batched calls took."""
    chunks: list[Tensor] = []
    seconds = 0.0
    remaining = config.draws
    while remaining > 0:
        n = min(config.chunk_draws, remaining)
        if hasattr(estimator, "reset"):
            estimator.reset()
        start = time.perf_counter()
        chunks.append(estimator.per_draw(f, logits, samples, n, generator=generator).detach())
        seconds += time.perf_counter() - start
        remaining -= n
        progress(n)
    return torch.cat(chunks), seconds


def _call_times(estimator: Any, problem: Problem, samples: int, repeats: int, generator: torch.Generator
                ) -> list[float]:
    """Seconds of ``repeats`` calls of ``estimate`` (one estimate each), the estimator reset before each."""
    times = []
    for _ in range(repeats):
        if hasattr(estimator, "reset"):
            estimator.reset()
        start = time.perf_counter()
        estimator.estimate(problem.f, problem.logits, samples, generator=generator)
        times.append(time.perf_counter() - start)
    return times


def _mean_ms_interval(times: list[float], confidence: float) -> tuple[float, float, float]:
    """The mean time of the calls in ms with its normal-approximation interval at ``confidence`` (NaN without
    calls)."""
    if not times:
        return math.nan, math.nan, math.nan
    mean_t = sum(times) / len(times)
    sd_t = (sum((t - mean_t) ** 2 for t in times) / max(len(times) - 1, 1)) ** 0.5
    half = normal_quantile(confidence) * sd_t / math.sqrt(len(times))
    return 1e3 * mean_t, 1e3 * (mean_t - half), 1e3 * (mean_t + half)


def _measure(
    problem: Problem, name: str, temperature: float | None, config: SweepConfig, cache: dict[Any, Tensor | None],
    progress: Callable[[int], None],
) -> dict[str, Any]:
    options = {} if temperature is None else {"temperature": temperature}
    estimator = get_estimator(name, family=problem.family, **options)
    samples = _samples_for(estimator, config, problem.logits)
    per_sample = estimator.evaluations(problem.logits)
    reference = _reference(problem, name, samples, cache)
    counted = _CountingObjective(problem.f)
    generator = torch.Generator().manual_seed(derive_seed(config.seed, problem.key, name, temperature, "draws"))
    estimates, batched_seconds = _draws(estimator, counted, problem.logits, samples, config, generator, progress)
    evaluations_counted = counted.count / config.draws
    timing_gen = torch.Generator().manual_seed(derive_seed(config.seed, problem.key, name, temperature, "timing"))
    times = _call_times(estimator, problem, samples, config.timing_repeats, timing_gen)

    exact = reference if reference is not None else torch.full_like(problem.logits, math.nan)
    finite = torch.isfinite(estimates.reshape(estimates.shape[0], -1)).all(dim=1)
    nonfinite = int((~finite).sum())
    if nonfinite:
        # Dropping them would bias every summary; the row is kept with its metrics left empty.
        log.warning("%s %s τ=%s: %d of %d estimates are not finite; metrics left as NaN",
                    problem.key, name, temperature, nonfinite, config.draws)
        estimates = torch.full_like(estimates, math.nan)
    boot_gen = torch.Generator().manual_seed(derive_seed(config.seed, problem.key, name, temperature, "bootstrap"))
    metrics = gradient_metrics(
        estimates, exact, confidence=config.confidence, bootstrap=config.bootstrap, generator=boot_gen
    )
    evaluations = per_sample * samples
    row: dict[str, Any] = {
        "problem": problem.key,
        "family": problem.family,
        "estimator": name,
        "temperature": temperature,
        "unbiased": bool(estimator.unbiased),
        "reference": (f"multi-sample objective, S={samples}" if name in _MULTISAMPLE_OBJECTIVE else "E[f(b)]")
        if reference is not None
        else "none (not enumerable)",
        "samples": samples,
        "draws": config.draws,
        "evaluations_per_sample": per_sample,
        "evaluations_per_estimate": evaluations,
        "evaluations_counted": evaluations_counted,
        "dimension": int(problem.logits.numel()),
        "nonfinite_draws": nonfinite,
        "exact_norm": float(torch.linalg.vector_norm(exact.double())),
    }
    for key in SCALAR_METRICS:
        interval = metrics[key]
        row[key], row[f"{key}_low"], row[f"{key}_high"] = interval.value, interval.low, interval.high
    row["variance_x_evaluations"] = row["variance"] * evaluations
    row["variance_x_evaluations_low"] = row["variance_low"] * evaluations
    row["variance_x_evaluations_high"] = row["variance_high"] * evaluations
    row["time_ms"], row["time_ms_low"], row["time_ms_high"] = _mean_ms_interval(times, config.confidence)
    row["time_ms_batched"] = 1e3 * batched_seconds / config.draws
    row["bias_chi2"], row["bias_dof"], row["bias_pvalue"] = metrics.bias_chi2, metrics.bias_dof, metrics.bias_pvalue
    row["bias_per_coordinate"] = [b.value for b in metrics.bias]
    row["bias_per_coordinate_low"] = [b.low for b in metrics.bias]
    row["bias_per_coordinate_high"] = [b.high for b in metrics.bias]
    row["snr_per_coordinate"] = metrics.snr
    row["mean_per_coordinate"] = metrics.mean
    row["exact_per_coordinate"] = metrics.exact
    row["std_per_coordinate"] = metrics.std
    return row


def run_sweep(
    problems: Sequence[Problem], config: SweepConfig, *, show_progress: bool = True
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Measure every (problem, estimator, temperature); returns (rows, metadata) for the tables."""
    from tqdm import tqdm

    plan = [(p, name, t) for p in problems for name, t in _configurations(p, config)]
    bar = tqdm(total=len(plan) * config.draws, unit="draw", disable=not show_progress, desc="gradient lab")
    rows = []
    caches: dict[str, dict[Any, Tensor | None]] = {p.key: {} for p in problems}
    try:
        for problem, name, temperature in plan:
            bar.set_postfix_str(f"{problem.key} {name}" + ("" if temperature is None else f" τ={temperature:g}"))
            rows.append(_measure(problem, name, temperature, config, caches[problem.key], bar.update))
    finally:
        bar.close()
    metadata = {
        "config": asdict(config),
        "problems": [
            {"key": p.key, "name": p.name, "family": p.family, "description": p.description, **p.info}
            for p in problems
        ],
        "intervals": (
            f"{config.confidence:.0%} two-sided; scalar metrics: percentile bootstrap over the {config.draws} "
            f"independent estimates ({config.bootstrap} resamples); per-coordinate bias and time_ms: normal theory"
        ),
        "torch": torch.__version__,
    }
    return rows, metadata
