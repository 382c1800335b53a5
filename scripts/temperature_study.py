"""Does training stall or degrade at low temperature? (issue 9, part 5)

200H~784V, relaxed objective, m = 1, the tuned nonlinear recipe (lr 1e-3, 1,000-step warmup, cosine decay to 0
over the budget; docs/recipe.md), 10^5 steps, at fixed posterior temperatures
lambda_q in {0.05, 0.1, 0.2, 0.5, 2/3, 1, 2}, in two series that set the prior temperature differently:

  * ``--prior fixed`` (RUN/lambda-<value>): the prior stays at the paper's lambda_p = 1/2 for binary units
    (Maddison et al. 2017, Appendix C), so only the temperature the proposal samples at changes; at lambda_q = 2/3
    the run is the Table 1 cell's setting. Far from 1/2 the relaxed KL term also measures the mismatch of the two
    temperatures (at lambda_q = 0.05 about 10 nats per unit whatever the encoder does).
  * ``--prior matched`` (RUN/matched/lambda-<value>): lambda_p = lambda_q, which removes that mismatch and leaves
    the effect of the temperature itself.

For every lambda_q:
  * train (``concretelab train --resume`` in RUN/lambda-<value>: an interrupted study continues where it stopped),
    validating -L_100 on 2,000 validation images every 10^4 steps;
  * test -L_5000 on all 10,000 test images from the best checkpoint (``concretelab evaluate``);
  * per-example gradient norms of the training loss with respect to the proposal's parameters, at the best
    checkpoint, on 1,000 fixed training images, one relaxed sample each at the run's own temperature: the share
    that is effectively zero (below 1e-6 of the median norm over all runs) and the quantiles of the tail.

``--report`` (also run at the end) summarises both series, as far as they have run: results/temperature/study.json,
docs/figures/temperature/*.png and the table between the markers of docs/low-temperature.md.

``--seeds N`` runs each series again with N seeds per temperature, as one process per series (``concretelab train
--seeds`` with ``--posterior-temperatures``, and ``--prior-temperatures`` for the matched series; replica i trains
temperature i mod T with seed i, T the number of temperatures), in RUN/seeds/<series>; each replica is evaluated as
above (``concretelab evaluate --seed-replica``). Its report (results/temperature/study-seeds.json and the table
between the seeds markers) gives each temperature's mean over seeds with Student's t 95% interval over seeds; the
gradient-norm columns pool the seeds' norms. The matched series at 1/2 is the fixed series' replicas at 1/2.

    python scripts/temperature_study.py --data ../shared/data/binarized_mnist --out ../runs/temperature --jobs 2
    python scripts/temperature_study.py --data ../shared/data/binarized_mnist --out ../runs/temperature --prior matched
    python scripts/temperature_study.py --out ../runs/temperature --report
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
MODEL = "200H~784V"
TEMPERATURES = ("0.05", "0.1", "0.2", "0.5", "2/3", "1", "2")
FIXED_PRIOR_TEMPERATURE = "1/2"
SERIES = ("fixed", "matched")
ZERO_SHARE_OF_MEDIAN = 1e-6
#: the most steps a seeded series (one process, 21 replicas) loses when it is killed: a session's end sends SIGKILL
CHECKPOINT_EVERY = 2000
MARK_BEGIN, MARK_END = "<!-- temperature table: begin -->", "<!-- temperature table: end -->"


def folder_of(out: Path, temperature: str, series: str = "fixed") -> Path:
    """A run's folder; the matched series at lambda_q = 1/2 is the fixed series' run (same temperatures)."""
    name = f"lambda-{temperature.replace('/', 'over')}"
    same_run = prior_of(temperature, series) == FIXED_PRIOR_TEMPERATURE or temperature == "0.5"
    return out / name if series == "fixed" or same_run else out / series / name


def prior_of(temperature: str, series: str) -> str:
    """The prior temperature of a run: the paper's 1/2, or the posterior's own."""
    return FIXED_PRIOR_TEMPERATURE if series == "fixed" else temperature


SEEDS_BEGIN, SEEDS_END = "<!-- temperature seeds table: begin -->", "<!-- temperature seeds table: end -->"


def seeded_plan(series: str, temperatures: list[str], count: int) -> list[tuple[int, str]]:
    """(seed, lambda_q) of each replica of a series' seeded run: replica i at temperature i mod T with seed i (the
    matched series leaves out 1/2, which the fixed series trains at the same temperatures)."""
    own = [t for t in temperatures if not (series == "matched" and t == "0.5")]
    return [(i, own[i % len(own)]) for i in range(count * len(own))]


def run_seeded(args: argparse.Namespace) -> int:
    """Train one series' replicas in one process, then evaluate each replica; its exit status."""
    plan = seeded_plan(args.prior, args.temperatures, args.seeds)
    folder = args.out / "seeds" / args.prior
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "concretelab"]
    seeds = ",".join(str(seed) for seed, _ in plan)
    posteriors = ",".join(t for _, t in plan)
    priors = (["--prior-temperatures", posteriors] if args.prior == "matched"
              else ["--prior-temperature", FIXED_PRIOR_TEMPERATURE])
    train = [*cli, "train", "--resume", "--model", MODEL, "--objective", "relaxed", "--samples", "1",
             "--seeds", seeds, "--posterior-temperatures", posteriors, *priors,
             "--batch-size", "64", "--lr", "1e-3", "--lr-schedule", "cosine", "--warmup-steps", "1000",
             "--steps", str(args.steps), "--data", args.data, "--eval-every", str(args.eval_every), "--eval-k", "100",
             "--eval-images", "2000", "--checkpoint-every", str(min(args.eval_every, CHECKPOINT_EVERY)),
             "--threads", "1", "--no-progress",
             "--out", str(folder), *(["--compile"] if args.compile else [])]
    with open(folder / "study.log", "a", encoding="utf-8") as log:
        code = subprocess.run(train, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        for seed, _ in plan:
            if code == 0 and not evaluation_of(folder / f"seed-{seed}", args.k).is_file():
                code = subprocess.run([*cli, "evaluate", str(folder), "--seed-replica", str(seed), "--k", str(args.k),
                                       "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    print(f"{time.strftime('%H:%M:%S')} {args.prior} prior, {len(plan)} replicas: exit {code}", flush=True)
    return code


def evaluation_of(folder: Path, k: int) -> Path:
    """The finished test evaluation of a run (``concretelab evaluate RUN --k K``: all test images, best checkpoint)."""
    from concretelab.train.evaluate import result_path

    return result_path(folder, "test", k, "best")


def run_one(args: argparse.Namespace, temperature: str) -> tuple[str, int]:
    """Train, then evaluate, one temperature (each step skipped when its output exists)."""
    folder = folder_of(args.out, temperature, args.prior)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "concretelab"]
    train = [*cli, "train", "--resume", "--model", MODEL, "--objective", "relaxed", "--samples", "1",
             "--prior-temperature", prior_of(temperature, args.prior), "--posterior-temperature", temperature,
             "--batch-size", "64", "--lr", "1e-3", "--lr-schedule", "cosine", "--warmup-steps", "1000",
             "--steps", str(args.steps), "--data", args.data, "--eval-every", str(args.eval_every), "--eval-k", "100",
             "--eval-images", "2000", "--checkpoint-every", str(args.eval_every), "--threads", "1", "--no-progress",
             "--out", str(folder)]
    evaluate = [*cli, "evaluate", str(folder), "--k", str(args.k), "--device", "cpu"]
    with open(folder / "study.log", "a", encoding="utf-8") as log:
        code = subprocess.run(train, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        if code == 0 and not evaluation_of(folder, args.k).is_file():
            code = subprocess.run(evaluate, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    print(f"{time.strftime('%H:%M:%S')} {args.prior} prior, lambda {temperature}: exit {code}", flush=True)
    return temperature, code


def gradient_norms(folder: Path, temperature: float, prior: float, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example norms, at the best checkpoint and one relaxed sample each, of the gradient with respect to the
    proposal's parameters of (``total``) the training loss -bound and (``reconstruction``) its term
    -log p(x | sigmoid(z)) alone: the pathwise part, through the relaxed sample, that a low temperature can flatten
    (the same noise for both: two generators with the same seed)."""
    from concretelab.objectives import relaxed, sample_relaxed_latents
    from concretelab.run import load_run

    model, _ = load_run(folder, checkpoint="best")
    model.train()
    proposal = [p for name, p in model.named_parameters() if name.startswith("encoder")]
    if not proposal:
        raise SystemExit(f"{folder}: found no encoder parameters to take gradients of")

    def norm(loss: torch.Tensor) -> torch.Tensor:
        grads = torch.autograd.grad(loss, proposal)
        return torch.sqrt(sum((g.double() ** 2).sum() for g in grads))

    total, reconstruction = [], []
    for i, x in enumerate(images.float()):
        seed = 1_000_003 * i
        bound = relaxed(model, x[None], samples=1, prior_temperature=prior, posterior_temperature=temperature,
                        generator=torch.Generator().manual_seed(seed))
        total.append(norm(-bound.sum()))
        sample = sample_relaxed_latents(model, x[None], 1, torch.tensor(temperature),
                                        torch.Generator().manual_seed(seed))
        reconstruction.append(norm(-model.log_likelihood(x[None], sample.values).sum()))
    return {"total": torch.stack(total), "reconstruction": torch.stack(reconstruction)}


def gradient_images(args: argparse.Namespace) -> torch.Tensor:
    """The fixed training images of the gradient norms: ``--gradient-images`` of them, evenly spaced."""
    from concretelab.data import load_dataset

    data = load_dataset(args.data)
    return data.train[torch.linspace(0, data.train.shape[0] - 1, args.gradient_images).long()]


def collect(args: argparse.Namespace) -> list[dict]:
    """One row per evaluated run of either series: its test bound and per-example gradient norms."""
    from concretelab.checks import parse_number

    rows = []
    images = None
    norms_of: dict[Path, dict[str, torch.Tensor]] = {}
    runs = [(series, temperature) for series in SERIES for temperature in TEMPERATURES]
    for series, temperature in runs:
        folder = folder_of(args.out, temperature, series)
        evaluation = evaluation_of(folder, args.k)
        if not evaluation.is_file():  # (an evaluation in progress has only its .partial.json)
            print(f"{series} prior, lambda {temperature}: not evaluated yet ({folder})")
            continue
        result = json.loads(evaluation.read_text())
        images = gradient_images(args) if images is None else images
        prior = prior_of(temperature, series)
        if folder not in norms_of:  # the run at 1/2 belongs to both series
            norms_of[folder] = gradient_norms(folder, parse_number(temperature), parse_number(prior), images)
        norms = norms_of[folder]
        rows.append({"series": series, "prior_temperature": parse_number(prior), "prior_label": prior,
                     "temperature": parse_number(temperature), "label": temperature, "test_nll": result["nll"],
                     "test_nll_stderr": result["nll_stderr"], "k": result["k"], "images": result["n_images"],
                     "checkpoint_step": result["checkpoint_step"], "folder": str(folder),
                     "norms": norms["total"].tolist(),
                     "reconstruction_norms": norms["reconstruction"].tolist()})
    return rows


def report(args: argparse.Namespace) -> None:
    rows = collect(args)
    if not rows:
        return
    median = float(torch.tensor([n for r in rows for n in r["norms"]]).median())
    for row in rows:
        norms = torch.tensor(row["norms"])
        row["zero_share"] = float((norms < ZERO_SHARE_OF_MEDIAN * median).double().mean())
        reconstruction = torch.tensor(row["reconstruction_norms"])
        row["reconstruction_zero_share"] = float((reconstruction < ZERO_SHARE_OF_MEDIAN * median).double().mean())
        row["reconstruction_median"] = float(reconstruction.median())
        row["quantiles"] = {q: float(norms.quantile(float(q))) for q in ("0.5", "0.9", "0.99", "0.999")}
        row["max"] = float(norms.max())
    out = REPO / "results" / "temperature"
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps({"model": MODEL, "steps": args.steps, "zero_threshold":
                                                ZERO_SHARE_OF_MEDIAN * median, "rows": rows}, indent=1) + "\n")
    table = ["| lambda_q | lambda_p | test -L_5000 | +- 95% | best step | zero gradients | median norm | 99% | 99.9% "
             "| max | reconstruction term: zero | its median |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    shown = set()
    for r in rows:
        if r["folder"] in shown:
            continue
        shown.add(r["folder"])
        q = r["quantiles"]
        table.append(f"| {r['label']} | {r['prior_label']} | {r['test_nll']:.2f} | {1.96 * r['test_nll_stderr']:.2f} | "
                     f"{r['checkpoint_step']:,} | {100 * r['zero_share']:.1f}% | {q['0.5']:.3g} | {q['0.99']:.3g} | "
                     f"{q['0.999']:.3g} | {r['max']:.3g} | {100 * r['reconstruction_zero_share']:.1f}% | "
                     f"{r['reconstruction_median']:.3g} |")
    table.append("")
    table.append(f"Runs evaluated: {len(shown)} of {len(SERIES) * len(TEMPERATURES) - 1} (the matched series shares "
                 f"the fixed series' run at 1/2). Gradient norms: {args.gradient_images:,} training images, one "
                 "relaxed sample each, "
                 f"\"zero\" below {ZERO_SHARE_OF_MEDIAN:g} of the median total norm over all runs.")
    doc = REPO / "docs" / "low-temperature.md"
    text = doc.read_text()
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        doc.write_text(head + MARK_BEGIN + "\n" + "\n".join(table) + "\n" + MARK_END + rest.split(MARK_END, 1)[1])
    print("\n".join(table))
    plot(rows, REPO / "docs" / "figures" / "temperature", args.steps)


def collect_seeded(args: argparse.Namespace) -> list[dict]:
    """One row per evaluated replica of the seeded runs (the fixed series' replicas at 1/2 count for both)."""
    from concretelab.checks import parse_number

    rows, images = [], None
    for series in SERIES:
        for seed, temperature in seeded_plan(series, args.temperatures, args.seeds):
            run = args.out / "seeds" / series / f"seed-{seed}"
            evaluation = evaluation_of(run, args.k)
            if not evaluation.is_file():
                continue
            result = json.loads(evaluation.read_text())
            images = gradient_images(args) if images is None else images
            prior = prior_of(temperature, series)
            norms = gradient_norms(run, parse_number(temperature), parse_number(prior), images)
            shared = [series] if temperature != "0.5" else list(SERIES)  # the run at 1/2 belongs to both series
            for own in shared:
                rows.append({"series": own, "seed": seed, "label": temperature, "prior_label": prior,
                             "temperature": parse_number(temperature), "test_nll": result["nll"],
                             "checkpoint_step": result["checkpoint_step"], "norms": norms["total"].tolist(),
                             "reconstruction_norms": norms["reconstruction"].tolist()})
    return rows


def seeded_differences(summary: list[dict]) -> list[dict]:
    """Which differences the seeds settle (Welch 95% intervals over independent seeds, ``welch_interval``): in each
    series, every temperature against the series' best mean; and at each temperature run in both series, the fixed
    prior against the matched one. ``settled``: the interval excludes zero."""
    from concretelab.reproduce.seeds import welch_interval

    def compare(kind: str, series: str, label: str, against: dict, entry: dict) -> dict:
        difference, half, degrees = welch_interval(against["test_nll"], entry["test_nll"])
        return {"kind": kind, "series": series, "label": label, "against": against["label"],
                "difference": difference, "ci95_half": half, "degrees": degrees,
                "settled": abs(difference) > half}

    found = []
    for series in SERIES:
        own = [e for e in summary if e["series"] == series and len(e["test_nll"]) > 1]
        if len(own) < 2:
            continue
        best = min(own, key=lambda e: e["mean"])
        found += [compare("to the best", series, e["label"], best, e) for e in own if e is not best]
    both = {(e["series"], e["label"]): e for e in summary if len(e["test_nll"]) > 1}
    for label in TEMPERATURES:
        # at 1/2 the two series share their runs: nothing to compare
        if label != "0.5" and ("fixed", label) in both and ("matched", label) in both:
            found.append(compare("fixed against matched", "both", label, both[("matched", label)],
                                 both[("fixed", label)]))
    return found


def differences_table(differences: list[dict]) -> list[str]:
    """The markdown of ``seeded_differences``."""
    if not differences:
        return []
    lines = ["| comparison | series | lambda_q | against | difference (nats) | +- 95% (Welch) | settled |",
             "|---" * 7 + "|"]
    for d in differences:
        against = f"lambda_q = {d['against']}" if d["kind"] == "to the best" else "matched prior"
        lines.append(f"| {d['kind']} | {d['series']} | {d['label']} | {against} | {d['difference']:+.2f} | "
                     f"{d['ci95_half']:.2f} | {'yes' if d['settled'] else 'no'} |")
    return [*lines, "", "Difference: the row's mean test bound minus the one it is compared with (positive: the row "
            "is worse). Settled: the Welch interval over the seeds excludes zero."]


def report_seeded(args: argparse.Namespace) -> None:
    """Each temperature's mean test bound over seeds with Student's t interval, and the pooled gradient norms."""
    from concretelab.reproduce.seeds import seed_interval

    rows = collect_seeded(args)
    if not rows:
        print("no seeded replica evaluated yet")
        return
    median = float(torch.tensor([n for r in rows for n in r["norms"]]).median())
    table = [f"| series | lambda_q | lambda_p | seeds | test -L_{args.k}, mean | +- 95% over seeds | sd | each seed | "
             "zero gradients | median norm | 99.9% |", "|---" * 11 + "|"]
    summary = []
    for series in SERIES:
        for label in args.temperatures:
            own = [r for r in rows if r["series"] == series and r["label"] == label]
            if not own:
                continue
            values = [r["test_nll"] for r in own]
            mean, sd, half = seed_interval(values) if len(values) > 1 else (values[0], float("nan"), float("nan"))
            norms = torch.tensor([n for r in own for n in r["norms"]])
            entry = {"series": series, "label": label, "prior_label": own[0]["prior_label"], "seeds":
                     [r["seed"] for r in own], "test_nll": values, "mean": mean, "sd": sd, "ci95_half": half,
                     "zero_share": float((norms < ZERO_SHARE_OF_MEDIAN * median).double().mean()),
                     "median_norm": float(norms.median()), "q999": float(norms.quantile(0.999))}
            summary.append(entry)
            table.append(f"| {series} | {label} | {entry['prior_label']} | {len(values)} | {mean:.2f} | {half:.2f} | "
                         f"{sd:.2f} | "
                         f"{', '.join(f'{v:.2f}' for v in values)} | {100 * entry['zero_share']:.1f}% | "
                         f"{entry['median_norm']:.3g} | {entry['q999']:.3g} |")
    differences = seeded_differences(summary)
    table += ["", *differences_table(differences)]
    out = args.results
    out.mkdir(parents=True, exist_ok=True)
    (out / "study-seeds.json").write_text(json.dumps({"model": MODEL, "steps": args.steps, "summary": summary,
                                                      "differences": differences, "rows": rows}, indent=1) + "\n")
    doc = args.doc
    text = doc.read_text() if doc.is_file() else ""
    if SEEDS_BEGIN in text and SEEDS_END in text:
        head, rest = text.split(SEEDS_BEGIN, 1)
        doc.write_text(head + SEEDS_BEGIN + "\n" + "\n".join(table) + "\n" + SEEDS_END + rest.split(SEEDS_END, 1)[1])
    print("\n".join(table))


def plot(rows: list[dict], folder: Path, steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    titles = {"fixed": "prior λ_p = 1/2", "matched": "prior λ_p = λ_q"}
    present = [series for series in SERIES if any(r["series"] == series for r in rows)]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), layout="constrained")
    for series in present:
        own = [r for r in rows if r["series"] == series]
        t = [r["temperature"] for r in own]
        axes[0, 0].errorbar(t, [r["test_nll"] for r in own], yerr=[1.96 * r["test_nll_stderr"] for r in own],
                            marker="o", capsize=3, label=titles[series])
        axes[0, 1].plot(t, [100 * r["zero_share"] for r in own], marker="o", label=f"total, {titles[series]}")
        axes[0, 1].plot(t, [100 * r["reconstruction_zero_share"] for r in own], marker="s", ls="--",
                        label=f"reconstruction term, {titles[series]}")
    axes[0, 0].set(xscale="log", xlabel="posterior temperature λ_q", ylabel="test −L_5000 (nats)",
                   title=f"{MODEL}, relaxed, m = 1, {steps:,} steps")
    axes[0, 1].set(xscale="log", xlabel="posterior temperature λ_q", ylabel="% of examples",
                   title=f"gradient effectively zero (< {ZERO_SHARE_OF_MEDIAN:g} × median)")
    shares = [100 * r[key] for r in rows for key in ("zero_share", "reconstruction_zero_share")]
    axes[0, 1].set_ylim(-2, max(10.0, *shares) + 5)
    for axis in axes[0]:
        axis.legend(fontsize=8)
    for axis, series in zip(axes[1], SERIES, strict=True):
        own = [r for r in rows if r["series"] == series]
        if not own:
            axis.set_axis_off()
            continue
        positions = range(1, len(own) + 1)
        for key, shift, colour in (("norms", -0.18, "C0"), ("reconstruction_norms", 0.18, "C3")):
            parts = axis.boxplot([[max(n, 1e-12) for n in r[key]] for r in own],
                                 positions=[p + shift for p in positions], widths=0.3, whis=(1, 99),
                                 flierprops={"markersize": 2, "markeredgecolor": colour}, patch_artist=True)
            for box in parts["boxes"]:
                box.set(facecolor="none", edgecolor=colour)
        axis.set_xticks(list(positions), [r["label"] for r in own])
        axis.set(yscale="log", xlabel="posterior temperature λ_q", ylabel="per-example ‖∇_φ‖",
                 title=f"{titles[series]}: total (blue) and reconstruction term (red); whiskers 1–99%")
    fig.savefig(folder / "temperature-study.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/binarized_mnist")
    parser.add_argument("--out", type=Path, default=Path("../runs/temperature"))
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--gradient-images", type=int, default=1000)
    parser.add_argument("--temperatures", nargs="+", default=list(TEMPERATURES), choices=TEMPERATURES)
    parser.add_argument("--prior", choices=SERIES, default="fixed",
                        help="fixed: prior temperature 1/2 (the paper's); matched: prior temperature = lambda_q")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--results", type=Path, default=REPO / "results" / "temperature",
                        help="where --seeds writes study-seeds.json (default results/temperature)")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "low-temperature.md",
                        help="the page whose seeds table --seeds fills (between its markers)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="N seeds per temperature: the series as one process of replicas (RUN/seeds/<series>)")
    parser.add_argument("--compile", action="store_true",
                        help="with --seeds: train the replicas with train --compile (the eager noise, fused passes)")
    parser.add_argument("--report", action="store_true", help="only summarise the runs in --out")
    args = parser.parse_args()
    if args.seeds is not None:
        if args.seeds < 2:
            raise SystemExit("--seeds needs at least 2 seeds per temperature (the interval is over seeds)")
        if not args.report and run_seeded(args) != 0:
            raise SystemExit(f"failed: see {args.out / 'seeds' / args.prior / 'study.log'}")
        report_seeded(args)
        return
    if not args.report:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            codes = list(pool.map(lambda t: run_one(args, t), args.temperatures))
        failed = [t for t, code in codes if code != 0]
        if failed:
            raise SystemExit(f"failed: lambda {', '.join(failed)} (see study.log in their folders)")
    report(args)


if __name__ == "__main__":
    main()
