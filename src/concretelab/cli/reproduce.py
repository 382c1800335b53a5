"""``concretelab reproduce table1``: train and evaluate the cells of Table 1 of Maddison, Mnih & Teh (2017)
from configs/table1/*.toml, store one JSON result per cell and regenerate docs/RESULTS.md.

Finished cells are skipped and interrupted ones resume from their checkpoints, so the command can be
repeated with the same flags until every selected cell is done (or with a larger --steps to train further).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from concretelab.cli._args import non_negative_int, positive_int

__all__ = ["format_states", "register"]

logger = logging.getLogger(__name__)

# concretelab.reproduce.runner.DEFAULT_EVAL_BATCH_SIZE, repeated so that building the parser needs no torch
EVAL_BATCH_SIZE = 100
# the names of concretelab.reproduce.recipes.RECIPES, repeated for the same reason
RECIPE_NAMES = ("tuned", "paper", "cosine")
# optional flags written back as given, into each result's command line and each --jobs worker's argv
_PASSED_ON = ("steps", "k", "num_images", "large_k", "data", "eval_every", "valid_images", "valid_k", "seeds")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce the paper's Table 1 (train, evaluate, write results and docs/RESULTS.md)",
        description=__doc__.split("\n\n")[0],
    )
    tables = parser.add_subparsers(dest="table", metavar="TABLE")
    tables.required = True
    table1 = tables.add_parser(
        "table1",
        help="the 30 binarized-MNIST cells of Table 1 (plus the rows beyond the paper, on request)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    table1.add_argument("--cells", nargs="+", metavar="PATTERN", default=None,
                        help="cell names or shell globs (comma-separated lists allowed), e.g. '200H-784V-m1-*'; "
                        "'all' adds the rows beyond the paper; default: the 30 cells of Table 1")
    table1.add_argument("--list", action="store_true", help="list the selected cells and their state, run nothing")
    table1.add_argument("--steps", type=positive_int, default=None,
                        help="training steps per cell (default: the config's, the paper's 10^7)")
    _add_evaluation_options(table1)
    table1.add_argument("--redo", action="store_true",
                        help="re-run done cells whose stored budget or evaluation differs from this request "
                        "(default: a done cell trained for at least --steps is kept)")
    table1.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    table1.add_argument("--recipe", choices=RECIPE_NAMES, default="tuned",
                        help="optimiser schedule: tuned (lr 1e-3 with a cosine decay to 0, 3e-4 for VIMCO and "
                        "NVIL on nonlinear models at m <= 5, docs/recipe.md; default), paper (the paper's constant "
                        "Adam step) or cosine (lr 1e-3 with the decay for every cell, the name of the experiment "
                        "that chose it for linear models)")
    table1.add_argument("--seeds", default=None, metavar="LIST",
                        help="train each cell's seeds as replicas in one process (train --seeds: 0-3, 0,3,5); its "
                        "result is the mean over the seeds with their spread, each seed's number under replicas "
                        "(default: the config's one seed)")
    table1.add_argument("--compile", action="store_true",
                        help="train the relaxed cells with train --compile (their loss as one torch.compile graph, "
                        "the eager noise; the estimator cells train eagerly)")
    _add_execution_options(table1)
    table1.set_defaults(func=run_table1)


def _add_evaluation_options(table1: argparse.ArgumentParser) -> None:
    """The test bound's settings and the validation that chooses each cell's best checkpoint."""
    table1.add_argument("--k", type=positive_int, default=50_000, help="k of the test bound -L_k (default 50000)")
    table1.add_argument("--num-images", type=positive_int, default=None,
                        help="test images for -L_k (default: all 10,000; fewer: a fixed random subset)")
    table1.add_argument("--large-k", type=positive_int, default=None,
                        help="also evaluate -L_K with this larger K on a fixed random subset of the test set")
    table1.add_argument("--large-k-images", type=positive_int, default=1000,
                        help="size of that subset (default 1000)")
    table1.add_argument("--data", default=None,
                        help="data override: binarized-mnist, embedded, or a folder of {train,valid,test}.amat[.gz]")
    table1.add_argument("--eval-every", type=positive_int, default=None,
                        help="validation interval in steps (default: about 10 checks per run)")
    table1.add_argument("--valid-images", type=positive_int, default=None,
                        help="validation images per check (default: the config's, all 10,000)")
    table1.add_argument("--valid-k", type=positive_int, default=None,
                        help="k of the validation bound -L_k that chooses the best checkpoint (default: the config's, "
                        "100); a run folder keeps the k of its first validation")
    table1.add_argument("--eval-seed", type=non_negative_int, default=0, help="seed of the test samples and subsets")
    table1.add_argument("--eval-batch-size", type=positive_int, default=EVAL_BATCH_SIZE,
                        help=f"test images per call of the bound (default {EVAL_BATCH_SIZE}); with the seed it fixes "
                        "each image's samples, and an interrupted evaluation resumes batch by batch")


def _add_execution_options(table1: argparse.ArgumentParser) -> None:
    """Where cells run and where their folders, results and pages go."""
    table1.add_argument("--jobs", type=positive_int, default=1,
                        help="cells run side by side, one process and one thread each, with a progress bar per "
                        "cell (default 1); logs in OUT/{cell}.log")
    table1.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="where cells run: local (this process, or --jobs worker processes; default) or ray "
                        "(one Ray task per cell, on the cluster at --address or on a local Ray with --jobs CPUs; "
                        "needs pip install 'concretelab[ray]', and paths every node sees)")
    table1.add_argument("--address", default=None,
                        help="with --executor ray: the Ray cluster to use (e.g. ray://head:10001; default: start a "
                        "local one)")
    table1.add_argument("--no-render", action="store_true", help=argparse.SUPPRESS)  # --jobs workers
    table1.add_argument("--configs", type=Path, default=Path("configs/table1"), help="folder of {cell}.toml")
    table1.add_argument("--out", type=Path, default=None,
                        help="folder of run folders (default: $XDG_CACHE_HOME/concretelab/table1)")
    table1.add_argument("--results", type=Path, default=Path("results/table1"), help="folder of {cell}.json")
    table1.add_argument("--markdown", type=Path, default=Path("docs/RESULTS.md"), help="the generated page")
    table1.add_argument("--figures", type=Path, default=Path("docs/figures/table1"), help="its figures")


def format_states(states: dict) -> str:
    """The cells and their state as a plain text table."""
    width = max((len(name) for name in states), default=4)
    lines = [f"{'cell':<{width}}  {'state':<11}  detail", f"{'-' * width}  {'-' * 11}  ------"]
    lines += [f"{name:<{width}}  {s.state:<11}  {s.detail}" for name, s in states.items()]
    return "\n".join(lines)


def _command(args: argparse.Namespace) -> str:
    """The command line equivalent to ``args`` (recorded in every result)."""
    words = ["concretelab", "reproduce", "table1"]
    if args.cells:
        words += ["--cells", *args.cells]
    for flag in (*_PASSED_ON, "threads"):
        value = getattr(args, flag)
        if value is not None:
            words += [f"--{flag.replace('_', '-')}", str(value)]
    if args.large_k is not None:
        words += ["--large-k-images", str(args.large_k_images)]
    if args.eval_seed:
        words += ["--eval-seed", str(args.eval_seed)]
    if args.eval_batch_size != EVAL_BATCH_SIZE:
        words += ["--eval-batch-size", str(args.eval_batch_size)]
    if args.redo:
        words.append("--redo")
    if args.recipe != "tuned":
        words += ["--recipe", args.recipe]
    if args.compile:
        words.append("--compile")
    return shlex.join(words)


def run_table1(args: argparse.Namespace) -> int:
    import torch

    from concretelab.cli import CLIError
    from concretelab.reproduce.cells import CELLS, select_cells
    from concretelab.reproduce.render import render_results
    from concretelab.reproduce.runner import (
        CellState,
        ReproduceOptions,
        check_clean_for_results,
        default_out,
        run_cells,
    )

    if not args.configs.is_dir():
        raise CLIError(f"config folder {str(args.configs)!r} not found (run from the repository root, or --configs)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cells = select_cells(args.cells, CELLS)
    options = ReproduceOptions(
        configs=args.configs, out=args.out or default_out(), results=args.results, steps=args.steps, k=args.k,
        num_images=args.num_images, large_k=args.large_k, large_k_images=args.large_k_images, data=args.data,
        eval_every=args.eval_every, valid_images=args.valid_images, valid_k=args.valid_k, eval_seed=args.eval_seed,
        eval_batch_size=args.eval_batch_size, redo=args.redo, recipe=args.recipe, seeds=args.seeds,
        compile=args.compile,
    )
    if args.list:
        print(format_states(_stored_states(cells, options, CellState)))
        return 0
    check_clean_for_results(options.results)  # a recorded result names a clean commit
    if args.address is not None and args.executor != "ray":
        raise CLIError("--address is the Ray cluster of --executor ray; pass --executor ray too")
    if args.executor == "ray" or (args.jobs > 1 and len(cells) > 1):
        try:
            return _run_in_workers(args, cells, options)
        finally:
            render_results(options.results, args.markdown, args.figures)

    def show(states: dict) -> None:
        print(format_states(states), file=sys.stderr, flush=True)

    logger.info("run folders in %s, results in %s", options.out, options.results)
    interrupted = False
    try:
        states = run_cells(cells, options, command=_command(args), on_update=show)
        interrupted = any(state.state == "interrupted" for state in states.values())
    finally:
        if not args.no_render:
            render_results(options.results, args.markdown, args.figures)
    return 130 if interrupted else 0


def _stored_states(cells: list, options: object, state: type) -> dict:
    """``--list``: each cell's state as its stored result says (done with its number when the result answers this
    request, or why it did not finish), and for a cell without a finished result, where its run folder stands:
    ``running`` (its lock file names a live process: training or evaluating), ``trained`` (not yet evaluated),
    ``stopped`` at the step of its last checkpoint, or ``pending`` (no checkpoint). Nothing is loaded or locked,
    so it may be asked while the cells run."""
    from concretelab.reproduce.results import load_result
    from concretelab.reproduce.runner import cell_config, is_done
    from concretelab.train.checkpoint import saved_step
    from concretelab.train.metrics import last_steps_per_s, time_left
    from concretelab.train.run_lock import lock_holder

    states = {}
    for cell in cells:
        stored = load_result(options.results, cell)  # type: ignore[attr-defined]
        config = cell_config(cell, options)  # type: ignore[arg-type]
        if stored is not None and is_done(stored, options.request(config)):  # type: ignore[attr-defined]
            states[cell.name] = state("done", f"{stored['test_nll']:.2f} nats, {stored['steps']} steps")
            continue
        if stored is not None and stored.get("status") == "done":  # a result of another request: not this one's
            stored = None
        step = saved_step(config.out)
        at = f"step {step:,} of {config.steps:,}" if step is not None else f"no checkpoint yet, {config.steps:,} steps"
        holder = lock_holder(config.out)
        if holder is not None:
            left = time_left(config.steps - (step or 0), last_steps_per_s(config.out))
            states[cell.name] = state("running", f"{at} ({holder}){left}")
        elif stored is not None:
            states[cell.name] = state(stored.get("status", "?"), stored.get("reason", ""))
        elif step is not None and step >= config.steps:
            states[cell.name] = state("trained", f"{at}, not evaluated (run it again to evaluate)")
        elif step is not None:
            states[cell.name] = state("stopped", f"{at} (run it again to resume)")
        else:
            states[cell.name] = state("pending", "")
    return states


def _run_in_workers(args: argparse.Namespace, cells: list, options: object) -> int:
    """The cells as worker processes: Ray tasks (``--executor ray``) or ``--jobs`` processes on this machine."""
    out = Path(options.out)  # type: ignore[attr-defined]
    if args.executor == "ray":
        from concretelab.reproduce.ray_executor import run_on_ray

        out.mkdir(parents=True, exist_ok=True)
        return run_on_ray(cells, worker_argv=_worker_argv(args, absolute=True), out=out.resolve(),
                          address=args.address, local_cpus=args.jobs if args.jobs > 1 else None)
    from concretelab.reproduce.parallel import run_parallel

    return run_parallel(cells, options, worker_argv=_worker_argv(args), jobs=args.jobs)  # type: ignore[arg-type]


def _worker_argv(args: argparse.Namespace, *, absolute: bool = False) -> list[str]:
    """The flags of this command that every --jobs worker repeats (each adds --cells NAME); with ``absolute``
    (Ray tasks, which may run on another node or in another folder) its paths made absolute."""
    def path(value: object) -> str:
        return str(Path(str(value)).resolve()) if absolute else str(value)

    words: list[str] = []
    for flag in _PASSED_ON:  # each worker runs one thread (below)
        value = getattr(args, flag)
        if value is not None:
            if flag == "data" and absolute and Path(str(value)).exists():  # a folder, not a data set's name
                value = path(value)
            words += [f"--{flag.replace('_', '-')}", str(value)]
    words += ["--large-k-images", str(args.large_k_images), "--eval-seed", str(args.eval_seed),
              "--eval-batch-size", str(args.eval_batch_size), "--recipe", args.recipe, "--threads", "1",
              "--no-render", "--configs", path(args.configs),
              "--results", path(args.results)]
    if args.out is not None or absolute:
        from concretelab.reproduce.runner import default_out

        words += ["--out", path(args.out or default_out())]
    if args.redo:
        words.append("--redo")
    if args.compile:
        words.append("--compile")
    return words
