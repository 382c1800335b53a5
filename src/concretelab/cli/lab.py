"""``concretelab lab gradients``: bias, variance, SNR, cosine and cost of gradient estimators against temperature.

Example:

    concretelab lab gradients --problem toy --target 0.49 --estimators concrete,reinforce_loo \\
        --temperatures 10,1,0.1,0.01,0.001 --draws 1000 --seed 0 --out lab-gradients

writes ``gradients.csv``, ``gradients.json`` and two PNG figures per problem into ``--out``
(see ``concretelab.lab.report``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from concretelab.cli import CLIError
from concretelab.cli._args import comma_list, int_at_least, non_negative_int, positive_int

if TYPE_CHECKING:
    from concretelab.reproduce.leaderboard import LeaderboardOptions

log = logging.getLogger(__name__)

DEFAULT_TEMPERATURES = "10,1,0.1,0.01,0.001"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lab", help="measure gradient estimators (bias, variance, SNR, cost)")
    lab_sub = parser.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    lab_sub.required = True
    _add_gradients(lab_sub)
    _add_leaderboard(lab_sub)


def _add_gradients(lab_sub: argparse._SubParsersAction) -> None:
    """``concretelab lab gradients``: the estimator sweep on problems with exact gradients."""
    p = lab_sub.add_parser(
        "gradients",
        help="sweep estimators × temperatures on small problems with exact gradients",
        description=(
            "For each problem, estimator and temperature: bias against the exact (enumerated) gradient, variance "
            "(trace of the covariance of one estimate), SNR, cosine similarity and cost, with bootstrap intervals. "
            "Writes gradients.csv, gradients.json and PNG plots into --out."
        ),
    )
    p.add_argument("--problem", default="all", help="toy, sbn, categorical, a comma list of them, or all (default)")
    p.add_argument("--target", default="0.49,0.499", help="toy problem target(s) t, comma-separated (0.49,0.499)")
    p.add_argument("--toy-logits", default="0", help="toy problem logits θ, one per dimension (default 0)")
    p.add_argument("--latents", type=positive_int, default=12, help="sbn: binary latent units, <= 16 (default 12)")
    p.add_argument("--sbn-steps", type=positive_int, default=150,
                   help="sbn: Adam steps fitting the decoder (default 150)")
    p.add_argument("--data", default=None, help="sbn: binarized MNIST .amat[.gz] file (default: embedded/shared)")
    p.add_argument("--variables", type=positive_int, default=4, help="categorical: number of variables (default 4)")
    p.add_argument("--categories", type=int_at_least(2), default=4,
                   help="categorical: categories K per variable (default 4)")
    p.add_argument("--estimators", default="all", help="comma list of estimator names, or all (default)")
    p.add_argument("--temperatures", default=DEFAULT_TEMPERATURES, help=f"comma list (default {DEFAULT_TEMPERATURES})")
    p.add_argument("--draws", type=positive_int, default=1000,
                   help="independent estimates per configuration (default 1000)")
    p.add_argument("--samples", type=positive_int, default=None,
                   help="samples per estimate for every estimator (default: derived from --budget)")
    p.add_argument("--budget", type=positive_int, default=6,
                   help="f-evaluations per estimate when --samples is not given: equal cost (default 6)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the Monte Carlo draws and the bootstrap (default 0)")
    p.add_argument("--problem-seed", type=non_negative_int, default=0,
                   help="seed of the problem instance: sbn decoder and logits, categorical f and logits (default 0)")
    p.add_argument("--confidence", type=float, default=0.95, help="two-sided interval level (default 0.95)")
    p.add_argument("--bootstrap", type=positive_int, default=400, help="bootstrap resamples (default 400)")
    p.add_argument("--timing-repeats", type=positive_int, default=20, help="estimate() calls timed per configuration")
    p.add_argument("--no-plots", action="store_true", help="write the tables only")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", default="lab-gradients", help="output folder (default lab-gradients)")
    p.set_defaults(func=run_gradients)


def _add_leaderboard(lab_sub: argparse._SubParsersAction) -> None:
    """``concretelab lab leaderboard``: the estimators in training at equal evaluations per step."""
    board = lab_sub.add_parser(
        "leaderboard",
        help="train DisARM's Bernoulli VAEs with each estimator at equal evaluations per step (resumable)",
        description="Train DisARM's linear and nonlinear Bernoulli VAEs with every estimator the trainer supports, at "
        "K = 2 and 4 function evaluations per step, several seeds (as replicas of one process where the estimator "
        "allows), on binarized MNIST and Fashion-MNIST; "
        "evaluate each seed and write results/leaderboard/{cell}.json and docs/leaderboard.md "
        "(concretelab.reproduce.leaderboard).",
    )
    board.add_argument("--cells", nargs="+", metavar="PATTERN", default=None,
                       help="glob patterns of cell names such as 'mnist-linear-*-K2' (default: all)")
    board.add_argument("--list", action="store_true",
                       help="list the selected cells and where each stands (done with its -L_100, training or "
                       "stopped at a step, not started), run nothing")
    board.add_argument("--steps", type=positive_int, default=100_000,
                       help="training steps per cell (default 10^5; at another budget a cell's run folder and result "
                       "are {cell}-steps{N}, beside the 10^5-step ones)")
    board.add_argument("--seeds", default="0-2", help="seeds of each cell (default 0-2)")
    board.add_argument("--mnist", default=None, help="binarized MNIST folder (default ../shared/data/binarized_mnist)")
    board.add_argument("--fashion", default=None,
                       help="Fashion-MNIST IDX folder (default /usr/share/datasets/fashion-mnist, Debian's "
                       "dataset-fashion-mnist)")
    board.add_argument("--test-images", type=positive_int, default=None,
                       help="test images of -L_100 (default: all; -L_5000 takes at most 1,000 of them)")
    board.add_argument("--valid-images", type=positive_int, default=1000, help="validation images (default 1000)")
    board.add_argument("--jobs", type=positive_int, default=1, help="cells side by side, one process each")
    board.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local (this process, or --jobs processes) or ray (one Ray task per cell, on the cluster "
                       "at --address or a local Ray with --jobs CPUs; paths every node sees)")
    board.add_argument("--address", default=None, help="with --executor ray: the Ray cluster to use")
    board.add_argument("--threads", type=positive_int, default=1, help="torch threads per cell (default 1)")
    board.add_argument("--out", type=Path, default=None,
                       help="folder of run folders (default $XDG_CACHE_HOME/concretelab/leaderboard)")
    board.add_argument("--results", type=Path, default=Path("results/leaderboard"), help="folder of {cell}.json")
    board.add_argument("--markdown", type=Path, default=Path("docs/leaderboard.md"), help="the generated page")
    board.add_argument("--figures", type=Path, default=Path("docs/figures/leaderboard"), help="its figures")
    board.add_argument("--no-render", action="store_true", help=argparse.SUPPRESS)  # --jobs workers
    board.set_defaults(func=run_leaderboard)


def _leaderboard_on_ray(args: argparse.Namespace, cells: list, shared: list[str], out: Path) -> int:
    """One Ray task per cell, each running this command for its cell with every folder made absolute."""
    from concretelab.reproduce.ray_executor import run_on_ray

    def resolved(flag: str, value: str) -> str:  # folders as absolute paths (a data set's name stays)
        folder = flag in ("--out", "--results") or (flag in ("--mnist", "--fashion") and Path(value).exists())
        return str(Path(value).resolve()) if folder else value

    absolute = [resolved(shared[i - 1], w) if i else w for i, w in enumerate(shared)]
    out.mkdir(parents=True, exist_ok=True)
    return run_on_ray(cells, worker_argv=[*absolute, "--no-render"], out=out.resolve(), address=args.address,
                      local_cpus=args.jobs if args.jobs > 1 else None, program=("lab", "leaderboard"))


def _names(text: str, flag: str, allowed: tuple[str, ...]) -> list[str]:
    """``all`` or a strict comma-separated list of ``allowed`` names (no empty or repeated item)."""
    if text.strip() == "all":
        return list(allowed)
    try:
        return comma_list(text, flag, allowed=allowed)
    except ValueError as error:
        raise CLIError(str(error)) from None


def _floats(text: str, flag: str) -> list[float]:
    try:
        return comma_list(text, flag, convert=float)
    except ValueError as error:
        raise CLIError(str(error)) from None


def run_gradients(args: argparse.Namespace) -> int:
    from concretelab.estimators import ESTIMATORS
    from concretelab.lab import (
        PROBLEMS,
        SweepConfig,
        categorical_problem,
        check_temperatures,
        plot_rows,
        run_sweep,
        sbn_problem,
        toy_problem,
        write_tables,
    )

    problems = _names(args.problem, "--problem", tuple(PROBLEMS))
    names = _names(args.estimators, "--estimators", tuple(ESTIMATORS))
    try:
        temperatures = check_temperatures(_floats(args.temperatures, "--temperatures"))
    except ValueError as error:
        raise CLIError(f"--temperatures: {error}") from None
    try:
        config = SweepConfig(
            estimators=tuple(names),
            temperatures=temperatures,
            draws=args.draws,
            samples=args.samples,
            budget=args.budget,
            seed=args.seed,
            confidence=args.confidence,
            bootstrap=args.bootstrap,
            timing_repeats=args.timing_repeats,
        )
    except ValueError as error:
        raise CLIError(str(error)) from None
    if not 0.0 < args.confidence < 1.0:
        raise CLIError(f"--confidence must lie in (0, 1), got {args.confidence!r}")

    built = []
    for name in dict.fromkeys(problems):
        if name == "toy":
            toy_logits = _floats(args.toy_logits, "--toy-logits")
            built.extend(toy_problem(t, toy_logits) for t in _floats(args.target, "--target"))
        elif name == "sbn":
            built.append(sbn_problem(args.latents, steps=args.sbn_steps, seed=args.problem_seed,
                                     data_path=Path(args.data) if args.data else None))
        else:
            built.append(categorical_problem(args.variables, args.categories, seed=args.problem_seed))
    out = Path(args.out)
    rows, metadata = run_sweep(built, config, show_progress=not args.no_progress)
    if not rows:
        raise CLIError("no estimator supports the chosen problems' families; nothing was measured")
    paths = write_tables(rows, metadata, out)
    if not args.no_plots:
        paths += plot_rows(rows, out)
    for path in paths:
        log.info("wrote %s", path)
    return 0


def _list_leaderboard(cells: list, options: LeaderboardOptions) -> None:
    """``--list``: each cell, its m and where it stands (done with its -L_100, training or stopped at a step, or not
    started: ``cell_progress``), then the count of each."""
    from collections import Counter

    from concretelab.reproduce.leaderboard import CellProgress, cell_progress

    counts: Counter[str] = Counter()
    width = max(len(options.run_name(cell)) for cell in cells)
    for cell in cells:
        progress = cell_progress(cell, options)
        counts[progress.state] += 1
        print(f"{options.run_name(cell):{width}s}  m = {cell.samples}  {progress.describe()}")
    print(f"{len(cells)} cells: " + ", ".join(f"{counts[state]} {state}" for state in CellProgress.STATES
                                              if counts[state]))


def _leaderboard_workers(cells: list, options: LeaderboardOptions, shared: list[str], jobs: int) -> list[int]:
    """Each cell as its own process (``lab leaderboard --cells NAME ...``, one thread), ``jobs`` at a time, its
    output in ``out/{run name}.log``; their exit statuses."""
    import os
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def work(cell) -> int:
        argv = [sys.executable, "-m", "concretelab", "lab", "leaderboard", "--cells", cell.name, *shared,
                "--no-render"]
        options.out.mkdir(parents=True, exist_ok=True)
        with open(options.out / f"{options.run_name(cell)}.log", "a", encoding="utf-8") as log:
            return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(work, cells))


def run_leaderboard(args: argparse.Namespace) -> int:
    import os
    import shlex

    from concretelab.reproduce.leaderboard import (
        DATASETS,
        LeaderboardOptions,
        leaderboard_cells,
        run_leaderboard_cell,
    )
    from concretelab.reproduce.leaderboard_render import render_leaderboard
    from concretelab.reproduce.runner import check_clean_for_results, git_commit
    from concretelab.train.replicas import parse_seeds

    try:
        cells = leaderboard_cells(args.cells)
        parse_seeds(args.seeds)
    except ValueError as error:
        raise CLIError(str(error)) from None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    data = {name: default for name, (_, default) in DATASETS.items()}
    data.update({k: v for k, v in (("mnist", args.mnist), ("fashion", args.fashion)) if v is not None})
    options = LeaderboardOptions(out=args.out or Path(base) / "concretelab" / "leaderboard", results=args.results,
                                 steps=args.steps, seeds=args.seeds, data=data, test_images=args.test_images,
                                 valid_images=args.valid_images, threads=args.threads)
    if args.list:
        _list_leaderboard(cells, options)
        return 0
    check_clean_for_results(options.results)
    shared = ["--steps", str(options.steps), "--seeds", options.seeds, "--mnist", data["mnist"], "--fashion",
              data["fashion"], "--valid-images", str(options.valid_images), "--threads", str(args.threads),
              "--out", str(options.out), "--results", str(options.results),
              *(["--test-images", str(options.test_images)] if options.test_images else [])]
    command = "concretelab lab leaderboard " + shlex.join(
        [*(["--cells", *args.cells] if args.cells else []), *shared])
    if args.address is not None and args.executor != "ray":
        raise CLIError("--address is the Ray cluster of --executor ray; pass --executor ray too")
    if args.executor == "ray":
        try:
            return _leaderboard_on_ray(args, cells, shared, options.out)
        finally:
            render_leaderboard(options.results, args.markdown, args.figures)
    if args.jobs > 1 and len(cells) > 1:  # one worker process per cell: this command for that cell
        codes = _leaderboard_workers(cells, options, shared, args.jobs)
        render_leaderboard(options.results, args.markdown, args.figures)
        return next((code for code in codes if code), 0)
    commit = git_commit()
    status = 0
    for cell in cells:
        log.info("leaderboard cell %s (m = %s)", options.run_name(cell), cell.samples)
        result = run_leaderboard_cell(cell, options, command=command, commit=commit)
        if result is None:
            status = 130
            break
        log.info("%s: -L_100 %.2f over %d seeds", options.run_name(cell), result["test_nll_100"]["mean"],
                 len(result["seeds"]))
    if not args.no_render:
        path = render_leaderboard(options.results, args.markdown, args.figures)
        log.info("wrote %s", path)
    return status
