"""The optimiser-schedule sweep behind docs/recipe.md (issue 9, part 2).

Everything that defines a Table 1 cell stays fixed: the relaxed objective, m = 1, temperatures 1/2 (prior) and
2/3 (posterior), batch 64, binarized MNIST, selection by validation -L_100. Only the optimiser schedule
varies: lr in {1e-4, 3e-4, 1e-3} x {constant (the paper's), cosine decay to 0 over the budget after a
1,000-step linear warmup}, on 200H-784V, 200H~784V and 200H~200H~784V, 10^5 steps each.

Each run is ``concretelab train --resume`` in its own folder, one thread per run, ``--jobs`` runs side by side,
so an interrupted sweep continues where it stopped when started again with the same flags. ``--report``
(also run at the end of a sweep) reads the runs' metrics and writes results/recipe/sweep.json, the table of
docs/recipe.md (between its markers) and docs/figures/recipe/*.png.

    python scripts/recipe_sweep.py --data ../shared/data/binarized_mnist --out runs/recipe --jobs 2
    python scripts/recipe_sweep.py --out runs/recipe --report
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("200H-784V", "200H~784V", "200H~200H~784V")
LRS = ("1e-4", "3e-4", "1e-3")
SCHEDULES = {"constant": ["--lr-schedule", "constant"], "cosine": ["--lr-schedule", "cosine", "--warmup-steps", "1000"]}
MARK_BEGIN, MARK_END = "<!-- sweep table: begin -->", "<!-- sweep table: end -->"


def run_name(model: str, lr: str, schedule: str, seed: int) -> str:
    return f"{model}-lr{lr}-{schedule}-seed{seed}"


def train_command(args: argparse.Namespace, model: str, lr: str, schedule: str, seed: int) -> list[str]:
    return [
        sys.executable, "-m", "concretelab", "train", "--resume",
        "--model", model, "--objective", "relaxed", "--samples", "1",
        "--prior-temperature", "1/2", "--posterior-temperature", "2/3",
        "--batch-size", "64", "--lr", lr, *SCHEDULES[schedule], "--steps", str(args.steps), "--seed", str(seed),
        "--data", args.data, "--eval-every", str(args.eval_every), "--eval-k", "100",
        "--eval-images", str(args.valid_images), "--checkpoint-every", str(args.eval_every),
        "--threads", "1", "--no-progress", "--out", str(args.out / run_name(model, lr, schedule, seed)),
    ]


def run_one(args: argparse.Namespace, spec: tuple[str, str, str, int]) -> tuple[str, int, float]:
    name = run_name(*spec)
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(folder / "train.log", "a", encoding="utf-8") as log:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        code = subprocess.run(train_command(args, *spec), stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    print(f"{time.strftime('%H:%M:%S')} {name}: exit {code} after {time.time() - started:.0f} s", flush=True)
    return name, code, time.time() - started


def read_run(folder: Path) -> dict | None:
    metrics = folder / "metrics.jsonl"
    if not metrics.is_file():
        return None
    rows = []
    for line in metrics.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    valid = [(r["step"], r["valid_nll"]) for r in rows if "valid_nll" in r]
    train_rows = [r for r in rows if "loss" in r]
    if not valid:
        return None
    best_step, best = min(valid, key=lambda sv: sv[1])
    rate = [r["steps_per_s"] for r in train_rows[len(train_rows) // 2:]]
    return {
        "steps": train_rows[-1]["step"] if train_rows else 0,
        "best_valid_nll": best,
        "best_step": best_step,
        "final_valid_nll": valid[-1][1],
        "valid": valid,
        "train": [(r["step"], r["loss"]) for r in train_rows[:: max(1, len(train_rows) // 200)]],
        "steps_per_s": sorted(rate)[len(rate) // 2] if rate else None,
    }


def report(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {}
    for model, lr, schedule, seed in itertools.product(args.models, LRS, SCHEDULES, args.seeds):
        info = read_run(args.out / run_name(model, lr, schedule, seed))
        if info is not None:
            runs[run_name(model, lr, schedule, seed)] = {"model": model, "lr": lr, "schedule": schedule,
                                                         "seed": seed, **info}
    results = REPO / "results" / "recipe"
    results.mkdir(parents=True, exist_ok=True)
    summary = {"command": "python scripts/recipe_sweep.py " + " ".join(sys.argv[1:]), "runs": runs}
    tmp = results / "sweep.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    tmp.replace(results / "sweep.json")

    lines = ["| model | lr | schedule | seed | steps | best valid −L_100 | at step | final valid −L_100 | steps/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in runs.values():
        rate = f"{r['steps_per_s']:.0f}" if r["steps_per_s"] else "–"
        lines.append(f"| {r['model']} | {r['lr']} | {r['schedule']} | {r['seed']} | {r['steps']:,} | "
                     f"{r['best_valid_nll']:.2f} | {r['best_step']:,} | {r['final_valid_nll']:.2f} | {rate} |")
    table = "\n".join(lines)
    page = REPO / "docs" / "recipe.md"
    if page.is_file():
        text = page.read_text(encoding="utf-8")
        if MARK_BEGIN in text and MARK_END in text:
            head, rest = text.split(MARK_BEGIN, 1)
            _, tail = rest.split(MARK_END, 1)
            page.write_text(f"{head}{MARK_BEGIN}\n{table}\n{MARK_END}{tail}", encoding="utf-8")
    print(table)

    figures = REPO / "docs" / "figures" / "recipe"
    figures.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(args.models), figsize=(5 * len(args.models), 4), squeeze=False)
    for ax, model in zip(axes[0], args.models, strict=True):
        for r in runs.values():
            if r["model"] != model:
                continue
            steps, values = zip(*r["valid"], strict=True)
            style = "-" if r["schedule"] == "cosine" else "--"
            ax.plot(steps, values, style, marker=".", label=f"lr {r['lr']} {r['schedule']} s{r['seed']}")
        ax.set_title(model)
        ax.set_xlabel("step")
        ax.set_ylabel("validation −L_100 (nats)")
        ax.grid(alpha=0.3)
        if ax.lines:
            low = min(min(line.get_ydata()) for line in ax.lines)
            ax.set_ylim(low - 1, low + 15)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figures / "validation-curves.png", dpi=110)
    print(f"wrote {figures / 'validation-curves.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/binarized_mnist")
    parser.add_argument("--out", type=Path, default=Path("runs/recipe"))
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--valid-images", type=int, default=2_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--lrs", nargs="+", default=list(LRS), choices=LRS)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="only summarise the runs in --out")
    args = parser.parse_args()
    if not args.report:
        grid = list(itertools.product(args.models, args.lrs, SCHEDULES, args.seeds))
        # slowest models first, so the pool ends with short runs and both cores stay busy
        grid.sort(key=lambda spec: -MODELS.index(spec[0]))
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(lambda spec: run_one(args, spec), grid))
        failed = [name for name, code, _ in outcomes if code != 0]
        if failed:
            print(f"failed: {', '.join(failed)} (see their train.log)", file=sys.stderr)
    report(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
