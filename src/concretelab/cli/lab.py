"""``concretelab lab gradients``: bias, variance, SNR, cosine and cost of gradient estimators against temperature.

Example::

    concretelab lab gradients --problem toy --target 0.49 --estimators concrete,reinforce_loo \\
        --temperatures 10,1,0.1,0.01,0.001 --draws 1000 --seed 0 --out lab-gradients

writes ``gradients.csv``, ``gradients.json`` and two PNG figures per problem into ``--out``
(see :mod:`concretelab.lab.report`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from concretelab.cli import CLIError
from concretelab.cli._args import comma_list, int_at_least, non_negative_int, positive_int

log = logging.getLogger(__name__)

DEFAULT_TEMPERATURES = "10,1,0.1,0.01,0.001"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lab", help="measure gradient estimators (bias, variance, SNR, cost)")
    lab_sub = parser.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    lab_sub.required = True
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
