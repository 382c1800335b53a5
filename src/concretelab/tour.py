"""A tour of the Concrete family: checks the paper's properties numerically and draws its pictures.

``run_tour(out_dir)`` prints each property it checks with the measured value, and writes
``simplex-density.png`` (the density on the 2-simplex at several temperatures, as Figure 1 of
Maddison et al. 2017), ``simplex-samples.png`` (samples across temperatures) and ``tour.json``.
Everything runs on CPU in a few seconds with a fixed seed.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from concretelab.distributions import BinConcrete, Concrete, ExpConcrete, LogitBinConcrete
from concretelab.files import atomic_write_bytes, save_figure

__all__ = ["run_tour"]

log = logging.getLogger(__name__)

ALPHA = (2.0, 0.5, 1.0)  # the location of Figure 1 in Maddison et al. (2017)
TEMPERATURES = (2.0, 1.0, 0.5)  # Figure 1's temperatures
SEED = 0


def _chi_square_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> tuple[float, float]:
    expected = probs * counts.sum()
    stat = float(((counts - expected) ** 2 / expected).sum())
    dof = counts.numel() - 1
    pvalue = float(torch.special.gammaincc(torch.tensor(dof / 2.0), torch.tensor(stat / 2.0)))
    return stat, pvalue


def check_rounding(generator: torch.Generator, num: int = 200_000) -> list[dict[str, Any]]:
    """P(argmax X = k) = alpha_k / sum alpha at every temperature (Maddison et al. Prop. 1(b))."""
    logits = torch.tensor(ALPHA, dtype=torch.float64).log()
    probs = torch.softmax(logits, -1)
    rows = []
    for temperature in (10.0, 1.0, 0.1, 1e-3):
        x = Concrete(temperature, logits=logits).sample((num,), generator=generator)
        counts = torch.bincount(x.argmax(-1), minlength=3).double()
        stat, pvalue = _chi_square_pvalue(counts, probs)
        rows.append(
            {
                "temperature": temperature,
                "frequencies": (counts / num).tolist(),
                "probabilities": probs.tolist(),
                "chi2": stat,
                "p_value": pvalue,
            }
        )
    return rows


def check_zero_temperature(generator: torch.Generator, num: int = 20_000) -> list[dict[str, float]]:
    """As lambda -> 0 samples approach the vertices: E[max_k X_k] -> 1 (Prop. 1(c))."""
    logits = torch.tensor(ALPHA, dtype=torch.float64).log()
    rows = []
    for temperature in (1.0, 0.1, 0.01, 1e-3):
        x = Concrete(temperature, logits=logits).sample((num,), generator=generator)
        rows.append({"temperature": temperature, "mean_max_component": float(x.max(-1).values.mean())})
    return rows


def check_own_samples_finite(generator: torch.Generator) -> list[dict[str, Any]]:
    """log_prob of a distribution's own samples stays finite at low temperature, unlike torch's."""
    rows = []
    logits = torch.randn(256, 1000, generator=generator)
    for temperature in (1e-4, 1e-2, 1.0, 1e4):
        ours = Concrete(temperature, logits=logits)
        x = ours.sample(generator=generator)
        finite_ours = float(torch.isfinite(ours.log_prob(x)).double().mean())
        theirs = torch.distributions.RelaxedOneHotCategorical(
            torch.tensor(temperature), logits=logits, validate_args=False
        )
        with torch.no_grad():
            xt = theirs.rsample()
            finite_torch = float(torch.isfinite(theirs.log_prob(xt)).double().mean())
        rows.append(
            {
                "temperature": temperature,
                "categories": 1000,
                "finite_fraction_concretelab": finite_ours,
                "finite_fraction_torch": finite_torch,
            }
        )
    return rows


def _triangle_grid(resolution: int) -> torch.Tensor:
    """Centroids of a uniform triangulation of the 2-simplex (barycentric coordinates), for plotting."""
    h = 1.0 / resolution
    i, j = torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")
    pts = []
    for offset, bound in ((1 / 3, resolution), (2 / 3, resolution - 1)):
        keep = (i + j) < bound
        pts.append(torch.stack([(i[keep].double() + offset) * h, (j[keep].double() + offset) * h], -1))
    p = torch.cat(pts)
    return torch.cat([p, 1 - p.sum(-1, keepdim=True)], -1)


def check_normalisation(half_width: float = 80.0, step: float = 0.05) -> list[dict[str, float]]:
    """kappa integrates to 1 over the log-ratios (u1, u2) = (y1 - y3, y2 - y3) (midpoint rule on a grid).

    In log-ratio coordinates the density is smooth and decays exponentially, so the midpoint rule is
    accurate even where the simplex density is unbounded at the vertices (temperature <= 1/(n-1)).
    """
    logits = torch.tensor(ALPHA, dtype=torch.float64).log()
    axis = torch.arange(-half_width + step / 2, half_width, step, dtype=torch.float64)
    u1, u2 = torch.meshgrid(axis, axis, indexing="ij")
    y = torch.stack([u1.flatten(), u2.flatten(), torch.zeros(u1.numel(), dtype=torch.float64)], -1)
    rows = []
    for temperature in (2.0, 1.0, 0.5, 0.25):
        log_kappa = ExpConcrete(temperature, logits=logits, validate_args=False).log_prob(y)
        rows.append({"temperature": temperature, "integral": float(log_kappa.exp().sum() * step * step)})
    return rows


def check_binconcrete_cdf(generator: torch.Generator, num: int = 100_000) -> list[dict[str, float]]:
    """BinConcrete samples against the closed-form CDF sigmoid(lambda logit(x) - log alpha) (KS statistic)."""
    rows = []
    for temperature, logit in ((0.5, 1.0), (2 / 3, -2.0), (0.1, 0.3)):
        # At small temperature many samples round to exactly 0 or 1 (ties break the KS test), so the
        # low-temperature case is tested in logit coordinates, with LogitBinConcrete.
        family = BinConcrete if temperature > 0.2 else LogitBinConcrete
        dist = family(temperature, logits=torch.tensor(logit, dtype=torch.float64))
        x, _ = dist.sample((num,), generator=generator).sort()
        cdf = dist.cdf(x)
        grid = torch.arange(1, num + 1, dtype=torch.float64) / num
        ks = float(torch.maximum((grid - cdf).abs(), (cdf - (grid - 1 / num)).abs()).max())
        rows.append(
            {
                "family": family.__name__,
                "temperature": temperature,
                "logit": logit,
                "ks_statistic": ks,
                "ks_5pct_critical": 1.358 / math.sqrt(num),
            }
        )
    return rows


def check_sample_identity(generator: torch.Generator) -> dict[str, float]:
    """At a distribution's own sample, log kappa depends on the noise only: its logit gradient is 0."""
    logits = torch.randn(8, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    dist = ExpConcrete(0.3, logits=logits)
    y = dist.rsample(generator=generator)
    # A distinct but equal distribution scores y through the full formula (dist itself would use the
    # identity, whose gradient is 0 by construction).
    (grad,) = torch.autograd.grad(ExpConcrete(0.3, logits=logits).log_prob(y).sum(), logits)
    return {"max_abs_gradient_wrt_logits": float(grad.abs().max())}


def _to_plane(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Barycentric coordinates to the plane of an equilateral triangle."""
    corners = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]], dtype=x.dtype)
    p = x @ corners
    return p[..., 0], p[..., 1]


def _draw_simplex(ax: Any) -> None:
    """The triangle's edges and its vertices labelled by the category that is 1 there (x = e_k)."""
    ax.plot([0, 1, 0.5, 0], [0, 0, math.sqrt(3) / 2, 0], color="k", lw=0.8)
    for k, (x, y, ha, va) in enumerate(((0.0, 0.0, "right", "top"), (1.0, 0.0, "left", "top"),
                                        (0.5, math.sqrt(3) / 2, "center", "bottom"))):
        ax.annotate(f"$e_{k + 1}$", (x, y), xytext=(0, 0), textcoords="offset points", ha=ha, va=va, fontsize=10)
    ax.set_xlim(-0.15, 1.15)
    ax.set_ylim(-0.15, 1.0)
    ax.set_aspect("equal")
    ax.axis("off")


def plot_simplex_density(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    from matplotlib.tri import Triangulation

    logits = torch.tensor(ALPHA, dtype=torch.float64).log()
    x = _triangle_grid(120)
    px, py = _to_plane(x)
    triangulation = Triangulation(px.numpy(), py.numpy())
    fig, axes = plt.subplots(1, len(TEMPERATURES) + 1, figsize=(4 * (len(TEMPERATURES) + 1), 3.6))
    probs = torch.softmax(logits, -1)
    vx, vy = _to_plane(torch.eye(3, dtype=torch.float64))
    axes[0].scatter(vx, vy, s=4000 * probs.numpy(), color="C0")
    axes[0].set_title("discrete: probabilities " + ", ".join(f"{p:.2f}" for p in probs.tolist()))
    for ax, temperature in zip(axes[1:], TEMPERATURES, strict=True):
        log_density = Concrete(temperature, logits=logits, validate_args=False).log_prob(x)
        # level boundaries on round numbers, so that the colour bar's ticks are round too
        low, high = float(log_density.min()), float(log_density.max())
        levels = MaxNLocator(nbins=12, steps=[1, 2, 5, 10]).tick_values(low, high)
        round_ticks = MaxNLocator(nbins=5, steps=[1, 2, 5, 10]).tick_values(low, high)
        ticks = [t for t in round_ticks if levels[0] <= t <= levels[-1]]
        shown = ax.tricontourf(triangulation, log_density.numpy(), levels=levels, cmap="viridis")
        fig.colorbar(shown, ax=ax, label="log density", ticks=ticks)
        ax.set_title(f"Concrete, temperature {temperature:g}")
    for ax in axes:
        _draw_simplex(ax)
    fig.suptitle("Concrete(alpha = (2, 0.5, 1), temperature) on the 2-simplex (cf. Maddison et al. 2017, Fig. 1)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_simplex_samples(path: Path, generator: torch.Generator) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    logits = torch.tensor(ALPHA, dtype=torch.float64).log()
    temperatures = (10.0, 1.0, 0.5, 0.1, 0.01)
    fig, axes = plt.subplots(1, len(temperatures), figsize=(3.2 * len(temperatures), 3.2))
    for ax, temperature in zip(axes, temperatures, strict=True):
        x = Concrete(temperature, logits=logits).sample((2000,), generator=generator)
        px, py = _to_plane(x)
        ax.scatter(px, py, s=2, alpha=0.4, c=[f"C{k}" for k in x.argmax(-1).tolist()])
        _draw_simplex(ax)
        ax.set_title(f"temperature {temperature:g}")
    handles = [Line2D([], [], marker="o", ls="", color=f"C{k}", label=f"argmax = category {k + 1}") for k in range(3)]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=9)
    fig.suptitle("2,000 Concrete samples per temperature, coloured by argmax (alpha = (2, 0.5, 1))")
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # room for the legend below
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _log_rows(title: str, rows: list[dict[str, Any]], line: str, keys: tuple[str, ...]) -> None:
    """Log a check's title, then one ``line`` per row with the row's values of ``keys``."""
    log.info(title)
    for row in rows:
        log.info(line, *(row[key] for key in keys))


def run_tour(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Check the properties, write the figures and ``tour.json`` into ``out_dir``; return the results."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(SEED)
    results: dict[str, Any] = {}

    results["rounding"] = check_rounding(generator)
    log.info("Rounding: P(argmax X = k) = alpha_k / sum(alpha) at every temperature (chi-square test)")
    for row in results["rounding"]:
        freqs = ", ".join(f"{f:.4f}" for f in row["frequencies"])
        log.info("  temperature %-6g frequencies %s  (p-value %.3f)", row["temperature"], freqs, row["p_value"])
    expected = ", ".join(f"{p:.4f}" for p in results["rounding"][0]["probabilities"])
    log.info("  expected probabilities       %s", expected)

    results["zero_temperature"] = check_zero_temperature(generator)
    _log_rows("Zero-temperature limit: E[max_k X_k] -> 1", results["zero_temperature"],
              "  temperature %-6g E[max X] = %.6f", ("temperature", "mean_max_component"))
    results["own_samples"] = check_own_samples_finite(generator)
    _log_rows("log_prob of own samples, 1000 categories, fraction finite: concretelab vs torch "
              "RelaxedOneHotCategorical", results["own_samples"], "  temperature %-6g concretelab %.3f   torch %.3f",
              ("temperature", "finite_fraction_concretelab", "finite_fraction_torch"))
    results["normalisation"] = check_normalisation()
    _log_rows("ExpConcrete density integrates to 1 over the log-ratios (n = 3, midpoint rule)",
              results["normalisation"], "  temperature %-6g integral %.5f", ("temperature", "integral"))
    results["binconcrete_cdf"] = check_binconcrete_cdf(generator)
    _log_rows("Binary Concrete samples vs closed-form CDF (Kolmogorov-Smirnov, 100,000 samples)",
              results["binconcrete_cdf"], "  %-16s temperature %-6.4g logit %-5g KS %.5f (5%% critical value %.5f)",
              ("family", "temperature", "logit", "ks_statistic", "ks_5pct_critical"))

    results["sample_identity"] = check_sample_identity(generator)
    log.info(
        "Identity at own sample: max |d log kappa / d logits| = %.2e (exactly 0 in exact arithmetic)",
        results["sample_identity"]["max_abs_gradient_wrt_logits"],
    )

    plot_simplex_density(out / "simplex-density.png")
    plot_simplex_samples(out / "simplex-samples.png", generator)
    atomic_write_bytes(out / "tour.json", json.dumps(results, indent=2).encode())
    log.info("Wrote %s, %s and %s", out / "simplex-density.png", out / "simplex-samples.png", out / "tour.json")
    return results
