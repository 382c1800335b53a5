"""Tables and plots of a gradient-lab sweep, written atomically (temp file in the same folder + os.replace).

Files in the output folder:

* ``gradients.csv``: one row per problem × estimator × temperature with every metric and its interval
  (per-coordinate lists are JSON-encoded in their cells);
* ``gradients.json``: ``{"metadata": ..., "rows": [...]}`` with the same rows (non-finite numbers as null);
* ``<problem>-bias-variance.png``: bias norm and variance against temperature on log-log axes, one line
  per temperature-taking estimator with its interval as a band, the others as horizontal lines;
* ``<problem>-snr-cosine.png``: mean SNR and the cosine of the mean estimate against temperature.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from concretelab.files import atomic_write_bytes

__all__ = ["CSV_NAME", "JSON_NAME", "atomic_write_bytes", "plot_rows", "write_tables"]

CSV_NAME = "gradients.csv"
JSON_NAME = "gradients.json"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_json_safe(value))
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else repr(value))
    return value


def write_tables(rows: Sequence[dict[str, Any]], metadata: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``gradients.csv`` and ``gradients.json`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(row.get(k)) for k in columns})
    csv_path, json_path = out_dir / CSV_NAME, out_dir / JSON_NAME
    atomic_write_bytes(csv_path, buffer.getvalue().encode())
    document = {"metadata": _json_safe(metadata), "rows": [_json_safe(dict(r)) for r in rows]}
    atomic_write_bytes(json_path, (json.dumps(document, indent=1, allow_nan=False) + "\n").encode())
    return [csv_path, json_path]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _panel(
    ax: Any,
    rows: Sequence[dict[str, Any]],
    metric: str,
    *,
    log_y: bool,
    ylabel: str,
    extra: Callable[[Any, dict[str, Any], str, Any], None] | None = None,
) -> None:
    """One metric against temperature: a line + band per tempered estimator, a horizontal line per other."""
    import matplotlib.pyplot as plt

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(dict.fromkeys(r["estimator"] for r in rows))
    temperatures = sorted({r["temperature"] for r in rows if r["temperature"] is not None})
    for i, name in enumerate(names):
        colour = colours[i % len(colours)]
        every = [r for r in rows if r["estimator"] == name]
        mine = [r for r in every if _finite(r.get(metric)) and (r[metric] > 0 or not log_y)]
        if not mine:
            if any(r.get(metric) is not None and not (isinstance(r[metric], float) and math.isnan(r[metric]))
                   for r in every):  # e.g. variance 0 or SNR inf for a zero-variance estimator
                values = sorted({f"{r[metric]:g}" for r in every if r.get(metric) is not None})
                ax.plot([], [], ls="none", marker="x", color=colour,
                        label=f"{name}: {metric} = {', '.join(values)} (off the axis)")
            continue
        tempered = [r for r in mine if r["temperature"] is not None]
        if tempered:
            tempered.sort(key=lambda r: r["temperature"])
            x = [r["temperature"] for r in tempered]
            y = [r[metric] for r in tempered]
            ax.plot(x, y, marker="o", ms=3, color=colour, label=name)
            low = [r.get(f"{metric}_low") for r in tempered]
            high = [r.get(f"{metric}_high") for r in tempered]
            if all(_finite(v) for v in low + high):
                floor = min(y) * 1e-3 if log_y else -math.inf
                ax.fill_between(x, [max(v, floor) for v in low], high, color=colour, alpha=0.2, lw=0)
            if extra is not None:
                extra(ax, {"x": x, "rows": tempered}, name, colour)
        else:
            row = mine[0]
            ax.axhline(row[metric], color=colour, ls="--", lw=1.2, label=f"{name} (no temperature)")
            if _finite(row.get(f"{metric}_low")) and _finite(row.get(f"{metric}_high")) and temperatures:
                low = row[f"{metric}_low"]
                if not log_y or low > 0:
                    ax.axhspan(low, row[f"{metric}_high"], color=colour, alpha=0.08, lw=0)
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("temperature λ")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def _noise_floor(ax: Any, data: dict[str, Any], name: str, colour: Any) -> None:
    floor = [r["noise_floor"] for r in data["rows"]]
    if all(_finite(v) and v > 0 for v in floor):
        ax.plot(data["x"], floor, color=colour, ls=":", lw=1)


def _mean_cosine(ax: Any, data: dict[str, Any], name: str, colour: Any) -> None:
    values = [r["mean_cosine"] for r in data["rows"]]
    if all(_finite(v) for v in values):
        ax.plot(data["x"], values, color=colour, ls=":", lw=1.2)


def plot_rows(rows: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Two figures per problem (bias/variance and SNR/cosine) as PNG files in ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    for problem in dict.fromkeys(r["problem"] for r in rows):
        mine = [r for r in rows if r["problem"] == problem]
        budget = sorted({r["evaluations_per_estimate"] for r in mine})
        cost = f"{budget[0]} f-evaluations per estimate" if len(budget) == 1 else "see the table for samples"
        fig, axes = plt.subplots(1, 2, figsize=(14, 4.6), layout="constrained")
        _panel(axes[0], mine, "bias_norm", log_y=True, ylabel="‖E ĝ − ∇‖ (band: CI; dotted: noise floor)",
               extra=_noise_floor)
        _panel(axes[1], mine, "variance", log_y=True, ylabel="variance tr Cov(ĝ)")
        axes[0].set_title(f"{problem}: bias against the exact gradient")
        axes[1].set_title(f"{problem}: variance ({cost})")
        _legend(fig, axes)
        paths.append(_save(fig, out_dir / f"{problem}-bias-variance.png"))
        plt.close(fig)

        fig, axes = plt.subplots(1, 2, figsize=(14, 4.6), layout="constrained")
        _panel(axes[0], mine, "snr_mean", log_y=True, ylabel="mean over coordinates of |E ĝ_i| / sd(ĝ_i)")
        _panel(axes[1], mine, "cosine_of_mean", log_y=False, ylabel="cos(E ĝ, ∇) (dotted: mean of cos(ĝ, ∇))",
               extra=_mean_cosine)
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, name in enumerate(dict.fromkeys(r["estimator"] for r in mine)):
            flat = [r for r in mine if r["estimator"] == name and r["temperature"] is None]
            if flat and _finite(flat[0].get("mean_cosine")):  # mean cosine of a temperature-free estimator
                axes[1].axhline(flat[0]["mean_cosine"], color=colours[i % len(colours)], ls=":", lw=1.2)
        axes[0].set_title(f"{problem}: signal-to-noise ratio")
        axes[1].set_title(f"{problem}: cosine to the exact gradient")
        axes[1].set_ylim(-1.05, 1.05)
        _legend(fig, axes)
        paths.append(_save(fig, out_dir / f"{problem}-snr-cosine.png"))
        plt.close(fig)
    return paths


def _legend(fig: Any, axes: Sequence[Any]) -> None:
    """One legend for the figure, right of the panels, with each label once."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside right upper", fontsize=7)


def _save(fig: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())
    return path
