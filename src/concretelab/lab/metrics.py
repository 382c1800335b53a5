"""Bias, variance, signal-to-noise ratio and cosine similarity of a gradient estimator, with intervals.

Given N independent estimates g_1..g_N of a gradient whose exact value g* is known (shape (N, D) after
flattening), with ḡ their mean and Σ̂ their sample covariance (divisor N − 1):

    bias vector          b̂ = ḡ − g*                      (per coordinate, normal-theory interval)
    bias norm            ‖ḡ − g*‖                        (noise floor: E‖ḡ − g*‖² = ‖b‖² + tr Σ / N)
    debiased bias norm   sqrt(max(0, ‖ḡ − g*‖² − tr Σ̂ / N))   (‖ḡ − g*‖² − tr Σ̂/N is unbiased for ‖b‖²)
    variance             tr Σ̂ = Σ_i Var̂(g_i)             (of one estimate, as the estimator returns it)
    SNR_i                |ḡ_i| / σ̂_i                      (Rainforth et al. 2018, per parameter)
    mean SNR             (1/D) Σ_i SNR_i                   (the per-parameter SNR averaged over parameters)
    DSNR                 mean_n |⟨g_n, û⟩| / ‖g_n − ⟨g_n, û⟩ û‖,  û = ḡ/‖ḡ‖  (Rainforth et al. 2018:
                         the directional SNR; undefined, NaN, for D = 1)
    cosine of the mean   cos(ḡ, g*)
    mean cosine          (1/N) Σ_n cos(g_n, g*)            (how well one estimate points the right way)
    MSE                  (1/N) Σ_n ‖g_n − g*‖²

Test of zero bias. With the eigen-decomposition Σ̂ = Σ_k λ_k u_k u_kᵀ (keeping the k with
λ_k > 1e-10 max λ), T = N Σ_k ⟨ḡ − g*, u_k⟩² / λ_k is Hotelling's T² statistic, approximately χ² with as
many degrees of freedom as kept eigenvalues when N is large (Hotelling 1931); ``bias_pvalue`` is its upper
tail. A component of ḡ − g* outside the span of the kept eigenvectors (where the estimator does not vary)
is a deterministic bias: p = 0. Prefer this test to asking whether the interval of the (non-negative)
bias norm contains 0: the percentile bootstrap is unreliable at that boundary.

Intervals. Scalar summaries get percentile-bootstrap intervals: the N estimates are resampled with
replacement ``bootstrap`` times with a seeded generator and every summary is recomputed on each resample
(Efron & Tibshirani 1993, ch. 13). The per-coordinate bias gets the normal-theory interval
b̂_i ± z σ̂_i / sqrt(N). Every interval is two-sided at level ``confidence``.

References
    [1] Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh, "Tighter Variational Bounds are Not Necessarily
        Better", ICML 2018 (SNR = |E Δ| / σ[Δ] per parameter, and the directional SNR; equation numbers
        not checked here).
    [2] Efron & Tibshirani, "An Introduction to the Bootstrap", 1993 (percentile intervals, ch. 13).
    [3] Hotelling, "The generalization of Student's ratio", Ann. Math. Statist. 1931 (the T² statistic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["SCALAR_METRICS", "GradientMetrics", "Interval", "bias_test", "gradient_metrics", "normal_quantile"]

# The scalar summaries, in table order; each gets a bootstrap interval.
SCALAR_METRICS: tuple[str, ...] = (
    "bias_norm",
    "bias_norm_debiased",
    "relative_bias",
    "variance",
    "noise_floor",
    "snr_mean",
    "dsnr",
    "cosine_of_mean",
    "mean_cosine",
    "mse",
)
# Metrics that compare with the exact gradient (NaN when it is unknown).
_NEEDS_REFERENCE = ("bias_norm", "bias_norm_debiased", "relative_bias", "cosine_of_mean", "mean_cosine", "mse")


def normal_quantile(confidence: float) -> float:
    """z with P(|Z| <= z) = ``confidence`` for a standard normal Z."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    return math.sqrt(2.0) * float(torch.special.erfinv(torch.tensor(confidence, dtype=torch.float64)))


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval [low, high]."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


@dataclass(frozen=True)
class GradientMetrics:
    """Summaries of N estimates against the exact gradient (see the module docstring for definitions)."""

    num_estimates: int
    confidence: float
    scalars: dict[str, Interval]
    bias: list[Interval]  # per coordinate (flattened), normal-theory interval
    snr: list[float]  # per coordinate
    mean: list[float]  # ḡ per coordinate
    exact: list[float]  # g* per coordinate
    std: list[float] = field(default_factory=list)  # σ̂ per coordinate
    bias_chi2: float = math.nan  # Hotelling's T² of ḡ − g* (see the module docstring)
    bias_dof: int = 0  # its degrees of freedom (rank of Σ̂ kept)
    bias_pvalue: float = math.nan  # P(χ²_dof >= T²): small values mean a detectable bias

    def __getitem__(self, name: str) -> Interval:
        return self.scalars[name]


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    """cos(a, b) along the last axis; 0 where either vector is zero."""
    na = torch.linalg.vector_norm(a, dim=-1)
    nb = torch.linalg.vector_norm(b, dim=-1)
    dot = (a * b).sum(dim=-1)
    return torch.where((na > 0) & (nb > 0), dot / (na * nb).clamp_min(torch.finfo(a.dtype).tiny), 0.0)


def _summaries(g: Tensor, weights: Tensor, exact: Tensor) -> dict[str, Tensor]:
    """Every scalar summary of R reweightings of the estimates -> {name: (R,)}.

    ``g`` (N, D) holds the estimates and ``weights`` (R, N) how often each is counted in each of the R
    (re)samples (rows sum to N: all ones for the sample itself, multinomial counts for a bootstrap
    resample), so every summary is a matrix product instead of an (R, N, D) gather.
    """
    n, d = g.shape
    centre = g.mean(dim=0)
    gc = g - centre  # centred first, so the weighted second moment does not cancel
    mean_c = weights @ gc / n  # (R, D)
    mean = mean_c + centre
    var = ((weights @ gc**2) / n - mean_c**2).clamp_min(0.0) * (n / (n - 1))  # (R, D)
    trace = var.sum(dim=1)  # (R,)
    diff_sq = ((mean - exact) ** 2).sum(dim=1)  # (R,)
    exact_norm = torch.linalg.vector_norm(exact)
    std = var.sqrt()
    snr = torch.where(std > 0, mean.abs() / std, torch.where(mean != 0, math.inf, math.nan))  # (R, D)
    if d > 1:
        direction = mean / torch.linalg.vector_norm(mean, dim=1, keepdim=True)  # (R, D)
        parallel = direction @ g.T  # (R, N)
        perpendicular = ((g**2).sum(dim=1) - parallel**2).clamp_min(0.0).sqrt()  # (R, N)
        dsnr = (weights * (parallel.abs() / perpendicular)).sum(dim=1) / n
    else:
        dsnr = torch.full_like(trace, math.nan)
    out = {
        "bias_norm": diff_sq.sqrt(),
        "bias_norm_debiased": (diff_sq - trace / n).clamp_min(0.0).sqrt(),
        "relative_bias": diff_sq.sqrt() / exact_norm if exact_norm > 0 else torch.full_like(trace, math.nan),
        "variance": trace,
        "noise_floor": (trace / n).sqrt(),
        "snr_mean": snr.mean(dim=1),
        "dsnr": dsnr,
        "cosine_of_mean": _cosine(mean, exact),
        "mean_cosine": weights @ _cosine(g, exact) / n,
        "mse": weights @ ((g - exact) ** 2).sum(dim=1) / n,
    }
    if not bool(torch.isfinite(exact).all()):  # no reference: only the reference-free metrics are defined
        for key in _NEEDS_REFERENCE:
            out[key] = torch.full_like(trace, math.nan)
    elif exact_norm == 0:  # a zero gradient has no direction
        for key in ("cosine_of_mean", "mean_cosine"):
            out[key] = torch.full_like(trace, math.nan)
    return out


def bias_test(g: Tensor, exact: Tensor) -> tuple[float, int, float]:
    """(T², degrees of freedom, p-value) of H0: E g = exact, for estimates g (N, D) and exact (D,)."""
    n = g.shape[0]
    diff = g.mean(dim=0) - exact  # (D,)
    if not bool(torch.isfinite(diff).all()):
        return math.nan, 0, math.nan
    centred = g - g.mean(dim=0)
    cov = centred.T @ centred / (n - 1)  # (D, D)
    evals, evecs = torch.linalg.eigh(cov)
    top = float(evals.max()) if evals.numel() else 0.0
    keep = evals > max(top, 0.0) * 1e-10 if top > 0 else torch.zeros_like(evals, dtype=torch.bool)
    proj = evecs[:, keep].T @ diff  # (k,)
    residual = diff - evecs[:, keep] @ proj
    scale = float(torch.linalg.vector_norm(exact)) + math.sqrt(max(float(evals.clamp_min(0).sum()), 0.0))
    if float(torch.linalg.vector_norm(residual)) > 1e-9 * max(scale, torch.finfo(g.dtype).tiny):
        return math.inf, int(keep.sum()), 0.0  # bias where the estimator does not vary at all
    dof = int(keep.sum())
    if dof == 0:
        return 0.0, 0, 1.0
    stat = float(n * (proj**2 / evals[keep]).sum())
    pvalue = float(torch.special.gammaincc(torch.tensor(dof / 2.0, dtype=torch.float64),
                                           torch.tensor(stat / 2.0, dtype=torch.float64)))
    return stat, dof, pvalue


def _bootstrap_scalars(g: Tensor, target: Tensor, *, confidence: float, bootstrap: int,
                       generator: torch.Generator | None, chunk: int) -> dict[str, Interval]:
    """Each scalar summary of the estimates ``g`` (N, d) with its percentile-bootstrap interval: ``bootstrap``
    resamples of the N estimates, as counts (a resample's summary is a weighted one), ``chunk`` at a time."""
    n = g.shape[0]
    ones = torch.ones(1, n, dtype=torch.float64)
    point = {k: float(v[0]) for k, v in _summaries(g, ones, target).items()}
    resampled: dict[str, list[Tensor]] = {k: [] for k in point}
    done = 0
    chunk = max(1, min(chunk, 10_000_000 // n))  # bound the (chunk, N) count matrix to ~80 MB
    while done < bootstrap:
        r = min(chunk, bootstrap - done)
        index = torch.randint(0, n, (r, n), generator=generator)
        counts = torch.zeros(r, n, dtype=torch.float64).scatter_add_(1, index, ones.expand(r, n))
        for k, v in _summaries(g, counts, target).items():
            resampled[k].append(v)
        done += r
    alpha = (1.0 - confidence) / 2.0
    scalars: dict[str, Interval] = {}
    for k in SCALAR_METRICS:
        values = torch.cat(resampled[k])
        finite = values[torch.isfinite(values)]
        if finite.numel() < values.numel() or finite.numel() == 0:
            low = high = math.nan
        else:
            low = float(torch.quantile(finite, alpha))
            high = float(torch.quantile(finite, 1.0 - alpha))
        scalars[k] = Interval(point[k], low, high)
    return scalars


def gradient_metrics(
    estimates: Tensor,
    exact: Tensor,
    *,
    confidence: float = 0.95,
    bootstrap: int = 400,
    generator: torch.Generator | None = None,
    chunk: int = 100,
) -> GradientMetrics:
    """Summaries of ``estimates`` (N, *shape) against ``exact`` (*shape), computed in float64.

    Args:
        estimates: N >= 2 independent estimates of the gradient, all finite (or all NaN: every metric NaN).
        exact: the exact gradient, same trailing shape; all-NaN when unknown (only the variance, noise floor,
            SNR and DSNR are then reported, the rest is NaN).
        confidence: two-sided level of every interval.
        bootstrap: number of bootstrap resamples (>= 10) for the scalar summaries.
        generator: seeds the resampling (results are reproducible given its state).
        chunk: resamples processed at once (bounds memory at a few chunk × N values).
    """
    if estimates.dim() < 1 or estimates.shape[0] < 2:
        raise ValueError(f"estimates must have shape (N, *shape) with N >= 2, got {tuple(estimates.shape)}")
    if estimates.shape[1:] != exact.shape:
        raise ValueError(
            f"estimates (N, *shape) and exact (*shape) must agree in shape, got {tuple(estimates.shape)} "
            f"and {tuple(exact.shape)}"
        )
    if bootstrap < 10:
        raise ValueError(f"bootstrap must be an integer >= 10, got {bootstrap!r}")
    z = normal_quantile(confidence)
    n = estimates.shape[0]
    g = estimates.detach().reshape(n, -1).to(torch.float64).cpu()
    target = exact.detach().reshape(-1).to(torch.float64).cpu()
    if not bool(torch.isfinite(g).all()) and not bool(torch.isnan(g).all()):
        raise ValueError(f"estimates must be finite, got {int((~torch.isfinite(g)).sum())} non-finite values")

    scalars = _bootstrap_scalars(g, target, confidence=confidence, bootstrap=bootstrap, generator=generator,
                                 chunk=chunk)
    mean = g.mean(dim=0)
    std = g.std(dim=0, correction=1)
    half = z * std / math.sqrt(n)
    bias = [
        Interval(float(m - t), float(m - t - h), float(m - t + h))
        for m, t, h in zip(mean, target, half, strict=True)
    ]
    snr = [float(abs(m) / s) if s > 0 else (math.inf if m != 0 else math.nan) for m, s in zip(mean, std, strict=True)]
    chi2, dof, pvalue = bias_test(g, target) if bool(torch.isfinite(g).all()) else (math.nan, 0, math.nan)
    return GradientMetrics(
        bias_chi2=chi2,
        bias_dof=dof,
        bias_pvalue=pvalue,
        num_estimates=n,
        confidence=confidence,
        scalars=scalars,
        bias=bias,
        snr=snr,
        mean=mean.tolist(),
        exact=target.tolist(),
        std=std.tolist(),
    )
