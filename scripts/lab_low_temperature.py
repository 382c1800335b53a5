"""Measurements behind docs/low-temperature.md: the Concrete gradient from λ = 10 down to λ = 1e-3.

Run from the repository root (about 15-25 minutes on 2 busy CPU cores)::

    .venv/bin/python scripts/lab_low_temperature.py            # every step
    .venv/bin/python scripts/lab_low_temperature.py --only theory   # one step (see --help)
    .venv/bin/python scripts/lab_low_temperature.py --only plots    # redraw figures from the saved tables

Steps (each writes into docs/figures/low-temperature/<step>/):

* ``toy``, ``toy-theta2``, ``models``, ``models-concrete``: ``concretelab lab gradients`` runs; the exact
  argument lists are ``COMMANDS`` below and are printed before each run.
* ``theory``: for the one-dimensional toy problem f(b) = (b − t)², b ~ Bernoulli(σ(θ)), the mean and
  variance of the one-sample Concrete and straight-through Gumbel (ST-Gumbel) estimators by 1-D quadrature
  (scipy.integrate.quad, in the variable v = (θ + L)/λ, L standard logistic), next to the lab's measurements
  from the ``toy`` and ``toy-theta2`` steps; writes theory.json, theory.csv and toy-theory.png.

With z = σ(v), H = 1[v > 0] and p the logistic density, the one-sample estimators are
g_concrete = f'(z) z(1 − z)/λ and g_ST = f'(H) z(1 − z)/λ, so with f'(x) = 2(x − t)

    E[g] = ∫ 2(x(v) − t) σ'(v) p(λv − θ) dv,    E[g²] = (4/λ) ∫ (x(v) − t)² σ'(v)² p(λv − θ) dv,

x = z or H; the exact gradient is σ'(θ)(1 − 2t).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "figures" / "low-temperature"
GRID = "10,3,1,0.3,0.1,0.03,0.01,0.003,0.001"

COMMANDS: dict[str, list[str]] = {
    "toy": [
        "lab", "gradients", "--problem", "toy", "--target", "0.49,0.499",
        "--estimators", "concrete,st_gumbel,straight_through,rebar,reinforce_loo,arm,disarm",
        "--temperatures", GRID, "--draws", "200000", "--bootstrap", "200", "--seed", "0",
    ],
    "toy-theta2": [
        "lab", "gradients", "--problem", "toy", "--target", "0.49", "--toy-logits", "2",
        "--estimators", "concrete,st_gumbel,straight_through,reinforce_loo,disarm",
        "--temperatures", GRID, "--draws", "200000", "--bootstrap", "200", "--seed", "0",
    ],
    "models": [
        "lab", "gradients", "--problem", "sbn,categorical",
        "--estimators", "concrete,st_gumbel,gumbel_rao,straight_through,rebar,reinforce_loo,arm,disarm",
        "--temperatures", GRID, "--draws", "5000", "--bootstrap", "200", "--seed", "0",
    ],
    "models-concrete": [
        "lab", "gradients", "--problem", "sbn,categorical", "--estimators", "concrete",
        "--temperatures", GRID, "--draws", "50000", "--bootstrap", "200", "--seed", "1",
    ],
}


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _logistic_density(x: float) -> float:
    return _sigmoid(x) * _sigmoid(-x)


def toy_moments(theta: float, target: float, temperature: float, estimator: str) -> tuple[float, float]:
    """(E g, Var g) of one sample of the Concrete or ST-Gumbel estimator on the 1-D toy problem."""
    from scipy.integrate import quad

    lam, t = temperature, target

    def point(v: float) -> float:
        return _sigmoid(v) if estimator == "concrete" else (1.0 if v > 0 else 0.0)

    def first(v: float) -> float:
        return 2.0 * (point(v) - t) * _logistic_density(v) * _logistic_density(lam * v - theta)

    def second(v: float) -> float:
        return 4.0 / lam * (point(v) - t) ** 2 * _logistic_density(v) ** 2 * _logistic_density(lam * v - theta)

    def integral(fn) -> float:
        # split at v = 0 (the step of H) and at the centre of p(λv − θ)
        cuts = sorted({-math.inf, 0.0, theta / lam, math.inf})
        total = 0.0
        for a, b in itertools.pairwise(cuts):
            value, _ = quad(fn, a, b, limit=400, epsabs=1e-14, epsrel=1e-11)
            total += value
        return total

    mean = integral(first)
    return mean, integral(second) - mean**2


def run_theory() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temperatures = [float(x) for x in GRID.split(",")]
    fine = [10 ** (1 - 4 * i / 80) for i in range(81)]
    cases = [(0.0, 0.49, "toy"), (0.0, 0.499, "toy"), (2.0, 0.49, "toy-theta2")]
    measured: dict[tuple[str, str, float], dict] = {}
    for step in ("toy", "toy-theta2"):
        path = OUT / step / "gradients.json"
        if path.is_file():
            for row in json.loads(path.read_text())["rows"]:
                if row["temperature"] is not None:
                    measured[(row["problem"], row["estimator"], row["temperature"])] = row
    rows = []
    fig, axes = plt.subplots(len(cases), 2, figsize=(12, 4.2 * len(cases)), layout="constrained")
    for (theta, target, _), ax_row in zip(cases, axes, strict=True):
        problem = f"toy-t{target:g}" + ("" if theta == 0 else f"-theta{theta:g}")
        exact = _logistic_density(theta) * (1 - 2 * target)
        for estimator, colour in (("concrete", "C0"), ("st_gumbel", "C1")):
            curve = [toy_moments(theta, target, lam, estimator) for lam in fine]
            ax_row[0].plot(fine, [abs(m - exact) for m, _ in curve], color=colour, label=f"{estimator}: theory")
            ax_row[1].plot(fine, [v for _, v in curve], color=colour, label=f"{estimator}: theory")
            for lam in temperatures:
                mean, var = toy_moments(theta, target, lam, estimator)
                row = {
                    "problem": problem, "theta": theta, "target": target, "estimator": estimator,
                    "temperature": lam, "exact_gradient": exact, "theory_mean": mean, "theory_bias": mean - exact,
                    "theory_variance_per_sample": var,
                }
                m = measured.get((problem, estimator, lam))
                if m is not None:
                    samples = m["samples"]
                    row.update({
                        "measured_bias": m["bias_per_coordinate"][0],
                        "measured_bias_low": m["bias_per_coordinate_low"][0],
                        "measured_bias_high": m["bias_per_coordinate_high"][0],
                        "measured_variance_per_sample": m["variance"] * samples,
                        "measured_variance_per_sample_low": m["variance_low"] * samples,
                        "measured_variance_per_sample_high": m["variance_high"] * samples,
                        "draws": m["draws"], "samples": samples,
                    })
                    low, high = row["measured_bias_low"], row["measured_bias_high"]
                    if low * high > 0:  # the interval excludes 0: a point with its interval
                        b = abs(row["measured_bias"])
                        ax_row[0].errorbar([lam], [b], yerr=[[b - min(abs(low), abs(high))],
                                                             [max(abs(low), abs(high)) - b]],
                                           fmt="o", color=colour, ms=4, capsize=2)
                    else:  # not distinguishable from 0: mark the upper end of the interval
                        ax_row[0].plot([lam], [max(abs(low), abs(high))], "v", color=colour, ms=5, mfc="none")
                    ax_row[1].errorbar(
                        [lam], [row["measured_variance_per_sample"]],
                        yerr=[[row["measured_variance_per_sample"] - row["measured_variance_per_sample_low"]],
                              [row["measured_variance_per_sample_high"] - row["measured_variance_per_sample"]]],
                        fmt="o", color=colour, ms=4, capsize=2,
                    )
                rows.append(row)
        ax_row[0].axhline(abs(exact), color="grey", ls="--", lw=1, label="|exact gradient|")
        for ax, label in zip(ax_row, ("|E g − ∇| (one sample)", "Var g (one sample)"), strict=True):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("temperature λ")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
        ax_row[0].set_title(f"{problem} (θ = {theta:g}, t = {target:g}): bias; lab: ● 95% CI, ▽ CI bound ∋ 0",
                            fontsize=9)
        ax_row[1].set_title(f"{problem}: variance of one sample; points = lab × samples")
        ax_row[0].legend(fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _atomic_write(OUT / "toy-theory.png", buffer.getvalue())
    _atomic_write(OUT / "theory.json", (json.dumps({"rows": rows}, indent=1) + "\n").encode())
    columns = list(dict.fromkeys(k for r in rows for k in r))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(OUT / "theory.csv", text.getvalue().encode())
    print(f"wrote {OUT / 'toy-theory.png'}, theory.json, theory.csv")


def summary() -> None:
    """concrete-summary.png: the Concrete estimator's relative bias and λ × variance on every problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = [("toy", "toy-t0.49"), ("toy-theta2", "toy-t0.49-theta2"), ("models-concrete", "sbn-12"),
               ("models-concrete", "categorical-4x4")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), layout="constrained")
    for i, (step, problem) in enumerate(sources):
        path = OUT / step / "gradients.json"
        if not path.is_file():
            continue
        rows = [r for r in json.loads(path.read_text())["rows"]
                if r["problem"] == problem and r["estimator"] == "concrete"]
        rows.sort(key=lambda r: r["temperature"])
        colour = f"C{i}"
        lam = [r["temperature"] for r in rows]
        norm = [r["exact_norm"] for r in rows]
        resolved = [r["bias_norm_debiased_low"] > 0 for r in rows]
        rel = [r["bias_norm_debiased"] / n for r, n in zip(rows, norm, strict=True)]
        high = [r["bias_norm_debiased_high"] / n for r, n in zip(rows, norm, strict=True)]
        low = [r["bias_norm_debiased_low"] / n for r, n in zip(rows, norm, strict=True)]
        xs = [x for x, ok in zip(lam, resolved, strict=True) if ok]
        ys = [y for y, ok in zip(rel, resolved, strict=True) if ok]
        err = [[y - lo for y, lo, ok in zip(rel, low, resolved, strict=True) if ok],
               [hi - y for y, hi, ok in zip(rel, high, resolved, strict=True) if ok]]
        axes[0].errorbar(xs, ys, yerr=err, color=colour, marker="o", ms=4, capsize=2, label=problem)
        axes[0].plot([x for x, ok in zip(lam, resolved, strict=True) if not ok],
                     [h for h, ok in zip(high, resolved, strict=True) if not ok], "v", color=colour, mfc="none")
        scaled = [r["variance"] * r["samples"] * r["temperature"] for r in rows]  # λ × one-sample variance
        axes[1].plot(lam, [v / scaled[0] for v in scaled], color=colour, marker="o", ms=4, label=problem)
    axes[0].set_ylabel("‖E ĝ − ∇‖ / ‖∇‖ (debiased; ▽: upper end of a CI containing 0)")
    axes[1].set_ylabel("λ × variance, relative to its value at λ = 0.001")
    axes[0].set_title("Concrete: relative bias against the discrete gradient", fontsize=10)
    axes[1].set_title("Concrete: λ × variance (flat ⇔ variance ∝ 1/λ)", fontsize=10)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("temperature λ")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _atomic_write(OUT / "concrete-summary.png", buffer.getvalue())
    print(f"wrote {OUT / 'concrete-summary.png'}")


def replot() -> None:
    """Redraw each step's figures from its gradients.json (same figures the run itself writes)."""
    from concretelab.lab import plot_rows

    for step in COMMANDS:
        path = OUT / step / "gradients.json"
        if path.is_file():
            for written in plot_rows(json.loads(path.read_text())["rows"], OUT / step):
                print(f"wrote {written}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=[*COMMANDS, "theory", "summary", "plots"], action="append",
                        help="run only these steps (summary: concrete-summary.png; plots: redraw the lab's figures)")
    args = parser.parse_args()
    steps = args.only or [*COMMANDS, "theory", "summary", "plots"]
    from concretelab.cli import main as cli

    for step in steps:
        if step == "theory":
            run_theory()
            continue
        if step == "plots":
            replot()
            continue
        if step == "summary":
            summary()
            continue
        argv = [*COMMANDS[step], "--out", str((OUT / step).relative_to(ROOT))]
        print("concretelab " + " ".join(argv), flush=True)
        code = cli(argv)
        if code:
            return code
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
