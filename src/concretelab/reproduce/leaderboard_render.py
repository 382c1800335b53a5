"""docs/leaderboard.md from results/leaderboard/*.json: a table per data set and model (estimators at K = 2 and 4
function evaluations per step, the mean over seeds with its 95% interval), the setup beside DisARM's, and a figure
of the validation bound against steps and against training time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy

from concretelab.estimators import ESTIMATORS
from concretelab.files import read_json_object, save_figure
from concretelab.reproduce.leaderboard import (
    DATASETS,
    DEFAULT_STEPS,
    MODELS,
    NOT_TRAINABLE,
    TEST_K,
    VARIANCE_FRACTIONS,
    leaderboard_cells,
    variance_steps,
)
from concretelab.reproduce.seeds import seed_interval
from concretelab.train.io import atomic_write_text

__all__ = [
    "STEP_COST_FILE",
    "bound_at_cpu_minutes",
    "leader_gap",
    "load_leaderboard",
    "load_step_costs",
    "render_leaderboard",
    "step_cost",
]

#: CPU time per replica-step of each cell, measured quietly by ``benchmarks/leaderboard_cost.py``, in the results
#: folder (a subfolder, so that ``load_leaderboard`` never reads it as a cell)
STEP_COST_FILE = "measured/step-cost.json"


def load_leaderboard(results: Path) -> list[dict[str, Any]]:
    """The finished results in ``results`` (``{cell}.json``), in name order."""
    found = [read_json_object(path) for path in sorted(Path(results).glob("*.json"))]
    return [r for r in found if r and r.get("status") == "done"]


def load_step_costs(results: Path) -> dict[str, float]:
    """Cell name -> CPU milliseconds per replica-step of its training loop, from ``STEP_COST_FILE`` in ``results``
    (``benchmarks/leaderboard_cost.py --write``); empty when nothing was measured."""
    stored = read_json_object(Path(results) / STEP_COST_FILE) or {}
    return {name: float(entry["ms_per_replica_step"]) for name, entry in stored.get("cells", {}).items()}


def step_cost(costs: dict[str, float], cell: str) -> float | None:
    """The measured cost of ``cell``'s replica-step; for a Fashion-MNIST cell not measured itself, that of the MNIST
    cell of the same model, estimator and K (the same shapes: only the batch's binarization differs)."""
    if cell in costs:
        return costs[cell]
    dataset, rest = cell.split("-", 1)
    return costs.get(f"mnist-{rest}") if dataset == "fashion" else None


def bound_at_cpu_minutes(result: dict[str, Any], costs: dict[str, float], minutes: float) -> float | None:
    """The first seed's validation bound after ``minutes`` CPU minutes at the cell's measured cost of a step (the
    figures' time axis), linearly interpolated between its validations; None when the cell has no cost or no curve,
    or ``minutes`` lies outside its validations."""
    ms = step_cost(costs, result["cell"])
    curve = result["replicas"][0]["valid_curve"] if result.get("replicas") else None
    if not ms or not curve:
        return None
    times = [c[0] * ms / 60e3 for c in curve]
    if not times[0] <= minutes <= times[-1]:
        return None
    return float(numpy.interp(minutes, times, [c[1] for c in curve]))


def _cell(summary: dict[str, Any] | None, digits: int = 2) -> str:
    if not summary:
        return "–"
    half = summary.get("ci95_half")
    return f"{summary['mean']:.{digits}f}" + (f" ± {half:.{digits}f}" if half is not None else "")


def _variance(summary: dict[str, Any] | None) -> str:
    """A gradient variance (its scale spans decades): the mean over seeds in 3 significant digits, and their sd."""
    if not summary:
        return "–"
    return f"{summary['mean']:.3g}" + (f" (sd {summary['sd']:.2g})" if summary.get("sd") is not None else "")


def _variances_at(summaries: dict[str, Any] | None, steps: int) -> str:
    """The variance at the fixed checkpoints (``VARIANCE_FRACTIONS`` of the steps): means over seeds, a dash where
    the cell has none (cells that ran before the snapshots were kept)."""
    summaries = summaries or {}
    return " / ".join(f"{summaries[str(s)]['mean']:.3g}" if summaries.get(str(s)) else "–"
                      for s in variance_steps(steps))


def _speed(result: dict[str, Any], costs: dict[str, float]) -> str:
    """Replica-steps/s at the quietly measured cost of a step (a dash when not measured), then in the training."""
    ms = step_cost(costs, result["cell"])
    quiet = f"{1e3 / ms:,.0f}" if ms else "–"
    return f"{quiet} / {result['replica_steps_per_s']:,.0f}"


def _table(rows: list[dict[str, Any]], costs: dict[str, float]) -> list[str]:
    fractions = " / ".join(f"{f:.0%}" for f in VARIANCE_FRACTIONS)
    lines = [f"| estimator | K | m | −L_{TEST_K} (test) | −L_5000 (1,000 test images) | training ELBO | "
             f"training objective | encoder gradient variance | at {fractions} of the steps | replica-steps/s: "
             "one quiet core / in training | seeds | steps |", "|---" * 12 + "|"]
    for r in sorted(rows, key=lambda r: (r["evaluations"], r["test_nll_100"]["mean"])):
        used = r.get("evaluations_used") or r["evaluations"]
        budget = f"{r['evaluations']}" + (f" ({used} used)" if used != r["evaluations"] else "")
        lines.append(f"| {r['estimator']} | {budget} | {r['samples']} | {_cell(r['test_nll_100'])} | "
                     f"{_cell(r['test_nll_5000'])} | {_cell(r.get('train_elbo'))} | {_cell(r['train_objective'])} | "
                     f"{_variance(r.get('encoder_gradient_variance'))} | "
                     f"{_variances_at(r.get('encoder_gradient_variance_at'), r['request']['steps'])} | "
                     f"{_speed(r, costs)} | {len(r['seeds'])} | {r['steps']:,} |")
    return lines


def _still_to_run(names: list[str], all_names: list[str]) -> str:
    """The estimators of a group of cells still to run: "all" when none has finished, else their names."""
    if not names:
        return "none"
    return "all" if len(names) == len(all_names) else ", ".join(names)


def _progress(found: list[dict[str, Any]]) -> list[str]:
    """How many of the leaderboard's cells have finished at its budget, and which are still to run, per data set,
    model and K (the cells of ``concretelab lab leaderboard --list``)."""
    finished = {r["cell"] for r in found if r["request"]["steps"] == DEFAULT_STEPS}
    cells = leaderboard_cells()
    done = sum(cell.name in finished for cell in cells)
    minutes = [r["train_seconds"] / 60 for r in found if r["cell"] in finished and r.get("train_seconds")]
    took = (f" (the finished ones trained for {min(minutes):.0f} to {max(minutes):.0f} minutes each, on one core "
            "of this machine shared with other jobs)") if minutes else ""
    lines = [f"**Progress:** {done} of the {len(cells)} cells have finished at {DEFAULT_STEPS:,} steps{took}. The "
             "others are queued; the tables below hold the finished ones, and the recommendations will be revised "
             "as the rest arrive.", "",
             "| data set | model | finished | still to run at K = 2 | still to run at K = 4 |", "|---|---|---|---|---|"]
    for dataset in DATASETS:
        for model in MODELS:
            group = [c for c in cells if c.dataset == dataset and c.model == model]
            pending = {k: [c.estimator for c in group if c.evaluations == k and c.name not in finished]
                       for k in (2, 4)}
            every = {k: [c.estimator for c in group if c.evaluations == k] for k in (2, 4)}
            lines.append(f"| {DATASETS[dataset][0]} | {model} | {sum(c.name in finished for c in group)} of "
                         f"{len(group)} | {_still_to_run(pending[2], every[2])} | "
                         f"{_still_to_run(pending[4], every[4])} |")
    return [*lines, ""]


#: the short names of the data sets in the overview's column headings
SHORT_NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
#: the overview's numbers: result key, what it is, and whether larger is better
OVERVIEW_NUMBERS = (("test_nll_100", f"test −L_{TEST_K} (nats, lower is better)", False),
                    ("train_elbo", "training ELBO (nats, higher is better)", True))


def _section_of(result: dict[str, Any]) -> tuple[str, str, int]:
    """The section of a cell's result: its data set, model and K."""
    return result["dataset"], result["model"], result["evaluations"]


def _overview_figure(rows: list[dict[str, Any]], sections: list[tuple[str, str, int]], path: Path) -> None:
    """One panel per section (columns) and number of ``OVERVIEW_NUMBERS`` (rows): each estimator's mean over seeds
    with its 95% interval over seeds, the best at the top; filled circles for the unbiased estimators
    (``_is_unbiased``), open diamonds for the biased ones, one colour per estimator across the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["estimator"] for r in rows})
    colours = dict(zip(names, _estimator_colours(), strict=False))
    fig, axes = plt.subplots(len(OVERVIEW_NUMBERS), len(sections), squeeze=False,
                             figsize=(3.3 * len(sections) + 0.8, 0.28 * len(names) * len(OVERVIEW_NUMBERS) + 1.6))
    for row, (key, label, larger_better) in enumerate(OVERVIEW_NUMBERS):
        for column, section in enumerate(sections):
            ax = axes[row][column]
            at = sorted((r for r in rows if _section_of(r) == section and r.get(key)),
                        key=lambda r: r[key]["mean"], reverse=not larger_better)  # the best plotted last: on top
            for y, r in enumerate(at):
                unbiased = _is_unbiased(r["estimator"])
                ax.errorbar(r[key]["mean"], y, xerr=r[key].get("ci95_half") or 0.0, color=colours[r["estimator"]],
                            marker="o" if unbiased else "D", markersize=5, capsize=2,
                            markerfacecolor=colours[r["estimator"]] if unbiased else "white")
            ax.set_yticks(range(len(at)), [r["estimator"] for r in at], fontsize=8)
            ax.set_ylim(-0.6, len(at) - 0.4)
            ax.tick_params(axis="x", labelsize=8)
            ax.grid(axis="x", alpha=0.3)
            dataset, model, k = section
            if row == 0:
                ax.set_title(f"{SHORT_NAMES.get(dataset, dataset)} {model}, K = {k}", fontsize=9)
            ax.set_xlabel(label, fontsize=8)
    fig.suptitle(f"The leaderboard at {DEFAULT_STEPS:,} steps: mean over seeds and its 95% interval "
                 "(● unbiased, ◇ biased; best at the top)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def _overview(found: list[dict[str, Any]], figures: Path, markdown: Path) -> list[str]:
    """Every estimator across the sections at the leaderboard's budget (data set, model, K) that have at least two
    finished cells (a rank needs something to rank against), for each number of ``OVERVIEW_NUMBERS``: its mean over
    seeds and its rank in the section, rows in the order of the mean rank over the sections each estimator has run
    in, after a figure of the same means with their intervals (``figures/overview.png``). Nothing when no section
    has two finished cells."""
    from collections import Counter

    rows = [r for r in found if r["request"]["steps"] == DEFAULT_STEPS]
    counts = Counter(_section_of(r) for r in rows)
    sections = sorted((s for s, n in counts.items() if n >= 2),
                      key=lambda s: (list(DATASETS).index(s[0]), list(MODELS).index(s[1]), s[2]))
    if not sections:
        return []
    lines = ["## Overview", "",
             "Each estimator in every section with at least two finished cells: the mean over seeds and, in "
             "brackets, its rank in the section (1 is best). Rows are in the order of the mean rank over the sections "
             "the estimator has run in. A rank orders the means only: neighbours whose intervals overlap are not "
             "told apart by it; the figure and the sections' own tables below give the intervals.", ""]
    figure = figures / "overview.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    _overview_figure(rows, sections, figure)
    relative = Path(os.path.relpath(figure, markdown.parent)).as_posix()
    lines += [f"![each estimator's mean over seeds with its 95% interval, section by section]({relative})", ""]
    for key, label, larger_better in OVERVIEW_NUMBERS:
        ranks: dict[str, dict[tuple, tuple[int, float]]] = {}
        for section in sections:
            at = [r for r in rows if _section_of(r) == section and r.get(key)]
            ordered = sorted(at, key=lambda r: r[key]["mean"], reverse=larger_better)
            for rank, r in enumerate(ordered, start=1):
                ranks.setdefault(r["estimator"], {})[section] = (rank, r[key]["mean"])
        if not ranks:
            continue
        mean_rank = {e: sum(rank for rank, _ in at_sections.values()) / len(at_sections)
                     for e, at_sections in ranks.items()}
        order = sorted(ranks, key=lambda e: (mean_rank[e], e))
        heading = [f"{SHORT_NAMES.get(d, d)} {m}, K = {k}" for d, m, k in sections]
        lines += [f"**{label}**", "", "| estimator | " + " | ".join(heading) + " | mean rank |",
                  "|---" * (len(sections) + 2) + "|"]
        for estimator in order:
            cells = [f"{ranks[estimator][s][1]:.2f} ({ranks[estimator][s][0]})" if s in ranks[estimator] else "–"
                     for s in sections]
            lines.append(f"| {estimator} | " + " | ".join(cells) + f" | {mean_rank[estimator]:.1f} |")
        lines.append("")
    return [*lines, *_against_leader(rows, sections), *_against_leader(rows, sections, unbiased_only=True)]


def _per_seed(result: dict[str, Any], key: str) -> dict[int, float]:
    """Each seed's ``key`` in a cell's result (its ``replicas``), by seed."""
    return {r["seed"]: float(r[key]) for r in result.get("replicas", []) if r.get(key) is not None}


def leader_gap(leader: dict[str, Any], other: dict[str, Any], key: str,
               larger_better: bool) -> tuple[float, float | None, int]:
    """How far ``leader`` is ahead of ``other`` on ``key``, seed by seed: the mean over their common seeds of the
    difference d_s (other − leader where lower is better, leader − other where higher is; d_s > 0: the leader is
    ahead), the half-width of its Student's t 95% interval over those seeds (None for fewer than 2), and their
    number. Cells of one seed start from the same initial weights (``train.loop.seeded_model``), so the paired
    difference drops what the initialisation adds to both."""
    ahead, behind = _per_seed(leader, key), _per_seed(other, key)
    common = sorted(set(ahead) & set(behind))
    if not common:
        raise ValueError(f"the cells {leader['cell']} and {other['cell']} have no seed in common for {key}")
    sign = 1.0 if larger_better else -1.0
    gaps = [sign * (ahead[s] - behind[s]) for s in common]
    if len(gaps) < 2:
        return gaps[0], None, 1
    mean, _, half = seed_interval(gaps)
    return mean, half, len(gaps)


def _is_unbiased(estimator: str) -> bool:
    """Whether the leaderboard's ``estimator`` estimates its objective's gradient without bias (the registry's
    ``unbiased``: the ELBO's gradient, or for VIMCO that of its own objective L_K); Concrete is not."""
    return estimator in ESTIMATORS and ESTIMATORS[estimator].unbiased


AGAINST_LEADER = ("**Against the section's leader, seed by seed.** How far the estimator with the best mean is ahead "
                  "of each other one, in nats: the mean over their common seeds of the difference of the two cells' "
                  "numbers for the same seed, with its Student's t 95% interval over seeds. Cells of one seed start "
                  "from the same initial weights, so the difference can be less noisy than the two cells' own "
                  "intervals suggest. ✱ marks a gap whose interval excludes zero: the leader is ahead of that "
                  "estimator on these seeds. Without ✱ the seeds do not tell the two apart. Rows are in the order of "
                  "the mean gap over the sections.")
AGAINST_BEST_UNBIASED = ("**Against the best unbiased estimator, seed by seed.** The same comparison among the "
                         "estimators whose gradient is unbiased (for VIMCO, the gradient of its own objective L_K), "
                         "for a model that needs one: how far the unbiased estimator with the best mean is ahead of "
                         "each other unbiased one.")


def _against_leader(rows: list[dict[str, Any]], sections: list[tuple[str, str, int]], *,
                    unbiased_only: bool = False) -> list[str]:
    """For each overview number, every estimator's gap to its section's leader (the best mean), seed by seed
    (``leader_gap``), marked where the interval excludes zero; with ``unbiased_only`` the same among the unbiased
    estimators (``_is_unbiased``), the best of them as the leader."""
    if unbiased_only:
        rows = [r for r in rows if _is_unbiased(r["estimator"])]
        if not rows:
            return []
    lines = [AGAINST_BEST_UNBIASED if unbiased_only else AGAINST_LEADER, ""]
    for key, label, larger_better in OVERVIEW_NUMBERS:
        at = {s: [r for r in rows if _section_of(r) == s and r.get(key)] for s in sections}
        leaders = {s: sorted(cells, key=lambda r: r[key]["mean"], reverse=larger_better)[0]
                   for s, cells in at.items() if cells}
        estimators = sorted({r["estimator"] for cells in at.values() for r in cells})
        entries: dict[str, list[str]] = {e: [] for e in estimators}
        gaps: dict[str, list[float]] = {e: [] for e in estimators}  # to order the rows: mean gap, leader 0
        for s in sections:
            by_estimator = {r["estimator"]: r for r in at[s]}
            for e in estimators:
                if e not in by_estimator:
                    entries[e].append("–")
                elif by_estimator[e] is leaders[s]:
                    entries[e].append("leader")
                    gaps[e].append(0.0)
                else:
                    mean, half, _ = leader_gap(leaders[s], by_estimator[e], key, larger_better)
                    gaps[e].append(mean)
                    settled = half is not None and mean - half > 0
                    entries[e].append(f"{mean:+.2f}" + (f" ± {half:.2f}" if half is not None else "")
                                      + (" ✱" if settled else ""))
        heading = [f"{SHORT_NAMES.get(d, d)} {m}, K = {k}" for d, m, k in sections]
        lines += [f"*{label.split(' (')[0]}*", "", "| estimator | " + " | ".join(heading) + " |",
                  "|---" * (len(sections) + 1) + "|"]
        order = sorted(estimators, key=lambda e: (sum(gaps[e]) / len(gaps[e]), e))
        lines += [f"| {e} | " + " | ".join(entries[e]) + " |" for e in order]
        lines.append("")
    return lines


def _estimator_colours() -> tuple[tuple[float, ...], ...]:
    """tab20's ten strong colours, then their light pairs: 20 colours, enough for the 14 estimators, none shared."""
    import matplotlib.pyplot as plt

    tab20 = plt.get_cmap("tab20").colors
    return tuple(tab20[0::2] + tab20[1::2])


def _figure(rows: list[dict[str, Any]], path: Path, title: str, costs: dict[str, float]) -> bool:
    """The first seed's validation bound against steps, and against time: CPU minutes per seed at each cell's
    measured cost of a step when every cell of the figure has one (the same clock for all, whatever ran beside
    them), else the training's own minutes per seed on a shared core."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(r, r["replicas"][0]["valid_curve"]) for r in rows if r["replicas"] and r["replicas"][0]["valid_curve"]]
    if not curves:
        return False
    measured = {r["cell"]: step_cost(costs, r["cell"]) for r, _ in curves}
    at_cost = all(measured.values())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    colours = _estimator_colours()
    for i, (r, curve) in enumerate(curves):
        label = f"{r['estimator']}, K = {r['evaluations']}"
        style = "-" if r["evaluations"] == 2 else "--"
        # the time one seed took: a process of replicas trains all the seeds at once
        per_seed = len(r["seeds"]) if r.get("seeds_as_replicas") else 1
        axes[0].plot([c[0] for c in curve], [c[1] for c in curve], style, label=label, color=colours[i % 20])
        minutes = ([c[0] * measured[r["cell"]] / 60e3 for c in curve] if at_cost
                   else [c[2] / 60 / per_seed for c in curve])
        axes[1].plot(minutes, [c[1] for c in curve], style, label=label, color=colours[i % 20])
    axes[0].set_xlabel("training step")
    axes[1].set_xlabel("CPU minutes per seed at the measured cost of a step (one quiet core)" if at_cost
                       else "training minutes per seed (one core of this CPU, shared with other jobs)")
    axes[0].set_ylabel(f"validation −L_{TEST_K} (nats, first seed)")
    axes[1].legend(fontsize=8, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return True


def _budget_note(steps: int) -> list[str]:
    """What a table at a budget other than the leaderboard's says about itself."""
    return [f"The same cells trained for {steps:,} steps instead of {DEFAULT_STEPS:,} (DisARM's protocol trains "
            "10^6), each a run of its own from step 0 (`--steps`; its run folder and result are "
            f"`{{cell}}-steps{steps}`), to see whether the order at {DEFAULT_STEPS:,} steps holds at a budget "
            "nearer the papers'.", ""]


def _figure_lines(rows: list[dict[str, Any]], figure: Path, markdown: Path, title: str,
                  costs: dict[str, float]) -> list[str]:
    """The figure of ``rows`` and the page's link to it (nothing when no row has a validation curve)."""
    figure.parent.mkdir(parents=True, exist_ok=True)
    if not _figure(rows, figure, title, costs):
        return []
    relative = Path(os.path.relpath(figure, markdown.parent)).as_posix()
    return [f"![validation bound against steps and time]({relative})", ""]


def _section(rows: list[dict[str, Any]], dataset: str, model: str, steps: int, figures: Path,
             markdown: Path, costs: dict[str, float]) -> list[str]:
    """One data set and model at one budget: the table, the figure, the commits and command."""
    title, name = f"{DATASETS[dataset][0]}: {model} model", f"{dataset}-{model}"
    if steps == DEFAULT_STEPS:
        lines, caption = [f"## {title}", ""], f"{dataset}, {model} model"
    else:
        lines = [f"### {title}, {steps:,} steps", "", *_budget_note(steps)]
        name, caption = f"{name}-steps{steps}", f"{dataset}, {model} model, {steps:,} steps"
    lines += [*_table(rows, costs), "", *_figure_lines(rows, figures / f"{name}.png", markdown, caption, costs)]
    commits = sorted({r["commit"] for r in rows})
    return [*lines, f"Commits: {', '.join(f'`{c}`' for c in commits)}. Command of the first cell: "
                    f"`{rows[0]['command']}`.", *_remeasured(rows), ""]


#: numbers measured after a cell ran (by a script that records itself under ``{key}_measured``): key -> what
MEASURED_LATER = {"encoder_gradient_variance": "Encoder gradient variance measured again after the cells ran",
                  "train_elbo": "Training ELBO measured after the cells ran"}


def _remeasured(rows: list[dict[str, Any]]) -> list[str]:
    """A line per number measured after the cells ran (``scripts/leaderboard_variance.py``,
    ``scripts/leaderboard_train_elbo.py``), naming the cells grouped by the commit and command that measured them."""
    lines = []
    for key, what in MEASURED_LATER.items():
        groups: dict[tuple[str, str], list[str]] = {}
        for r in rows:
            if r.get(f"{key}_measured"):
                measured = r[f"{key}_measured"]
                groups.setdefault((measured["commit"][:7], measured["command"]), []).append(r["cell"])
        if groups:
            lines += ["", f"{what}: " + "; ".join(f"{', '.join(cells)} at `{commit}` (`{command}`)"
                                                  for (commit, command), cells in groups.items()) + "."]
    return lines


def render_leaderboard(results: Path, markdown: Path, figures: Path) -> Path:
    """Write the leaderboard page (and its figures) from the finished results; returns the page's path."""
    found = load_leaderboard(results)
    costs = load_step_costs(results)
    lines = [
        "# The estimator leaderboard",
        "",
        "<!-- generated by `concretelab lab leaderboard` from results/leaderboard/*.json; do not edit -->",
        "",
        "Bernoulli VAEs with 200 latents, trained with each gradient estimator at the same number K of function "
        "evaluations per example and step, on the protocol of DisARM (Dong, Mnih & Tucker 2020), several seeds "
        "each. Every number is the mean over seeds with Student's t 95% interval over seeds; the rows are sorted "
        "by test −L_100. Which estimator to use, drawn from these tables: "
        "[Which estimator?](estimators.md#which-estimator).",
        "",
        "What the columns hold:",
        "",
        "- **K** counts f-evaluations (decoder passes) per example and step; **m** is the samples that buys: K for "
        "most estimators, K/2 antithetic pairs for ARM and DisARM, K/3 for REBAR and RELAX (3 evaluations per "
        "sample, so at K = 4 they use 3).",
        "- **−L_100 (test)** on every test image and **−L_5000** on a fixed subset of 1,000, both at each seed's "
        "best checkpoint by validation −L_100.",
        "- **training ELBO**: the discrete model's ELBO, E_q[log p(x, h) − log q(h | x)], at that checkpoint on "
        "10,000 fixed training images (10 proposal samples each): the number the papers report, measured the same "
        "way for every estimator.",
        "- **training objective**: what each estimator optimises (the relaxed bound for Concrete, L_K for VIMCO, "
        "the ELBO for the others), averaged over the last tenth of the steps.",
        "- **encoder gradient variance**: tr Cov of one step's gradient with respect to the encoder's parameters at "
        "the best checkpoint, on a fixed batch of 50 training images over 100 draws of the estimator (NVIL's is "
        "that of its estimate, before the division by its running standard deviation that rescales its step); "
        "the next column gives it at fixed checkpoints, 10%, 50% and 100% of the steps.",
        "- **replica-steps/s**: how many steps of one seed a core makes per second. *One quiet core*: "
        "1,000 / the CPU milliseconds per replica-step of the cell's training loop (no validation), measured for "
        "all cells in one interleaved run with nothing else running (`benchmarks/leaderboard_cost.py`, "
        f"`results/leaderboard/{STEP_COST_FILE}`; a Fashion-MNIST cell not measured itself takes the MNIST cell's "
        "number: the same shapes); the figures' time axis uses it. *In training*: the steps per second of the "
        "process that trained the cell, times the seeds it trained together as replicas, on one core shared with "
        "up to seven other jobs, so it measures the load as well. REBAR, RELAX, double CV and RODEO adapt "
        "parameters of their own to the batch, so their seeds train one after the other, one seed per process.",
        "",
        "| | DisARM's protocol | ours |",
        "|---|---|---|",
        "| models | linear 784→200, nonlinear 784-200-200-200 / 200-200-200-784 (leaky ReLU 0.3) | the same "
        "(`200H-784V`, `200H~784V` with `activation = \"leaky_relu\"`) |",
        "| data | MNIST, Fashion-MNIST, Omniglot, binarized afresh | fixed binarized MNIST; Fashion-MNIST binarized "
        "afresh |",
        "| optimiser | Adam 1e-4, batch 50, 10^6 steps | Adam 1e-4, batch 50, 10^5 steps by default |",
        "| reported | training ELBO, test bound (100 samples) | the training ELBO (at the best checkpoint), the "
        "training objective, test −L_100 and −L_5000, replica-steps/s |",
        "",
    ]
    lines += _progress(found)
    lines += _overview(found, figures, markdown)
    if not found:
        lines += ["No cell has finished yet: `concretelab lab leaderboard --list` shows them.", ""]
    for dataset in DATASETS:
        for model in MODELS:
            rows = [r for r in found if r["dataset"] == dataset and r["model"] == model]
            budgets = sorted({r["request"]["steps"] for r in rows}, key=lambda steps: (steps != DEFAULT_STEPS, steps))
            for steps in budgets:
                at = [r for r in rows if r["request"]["steps"] == steps]
                lines += _section(at, dataset, model, steps, figures, markdown, costs)
    reasons: dict[str, list[str]] = {}
    for name, reason in NOT_TRAINABLE.items():
        reasons.setdefault(reason, []).append(f"`{name}`")
    lines += ["## Estimators not in the leaderboard", "",
              *(f"- {', '.join(names)}: {reason}." for reason, names in reasons.items()), ""]
    markdown.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(markdown, "\n".join(lines))
    return markdown
