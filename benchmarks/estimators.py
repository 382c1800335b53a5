"""Time per gradient estimate for every estimator on a 200-latent Bernoulli problem, CPU float32.

Problem: logits of shape (64, 200) (a batch of 64 examples, 200 binary latents each) and f a small decoder
likelihood, f(b) = Σ_n log p(x_n | b_n) with p(x | b) = Bernoulli(σ(b W + c)) over 784 fixed random binary
pixels (W, c fixed random). One timed call is ``estimator.estimate(f, logits, num_samples)``: sampling,
every f-evaluation, the backward passes the estimator needs and, for stateful estimators, their update.
Single-sample estimators use ``--samples`` samples, multi-sample ones (reinforce_loo, vimco) at least 2.

Every case runs once per round, rounds are interleaved, and the table shows the median time and the ratio
to plain REINFORCE (no baseline) with the same number of samples, timed in the same rounds; the minimum
and its ratio are shown too, since on a shared machine the load moves the medians.

    python benchmarks/estimators.py [--repeats 15] [--samples 1] [--threads N]

``--training K`` times a whole training step instead (forward, backward and Adam, CPU time of this process) of
DisARM's linear model (``200H-784V``, batch 50) for every leaderboard estimator at K f-evaluations per example
(``concretelab.reproduce.leaderboard.SAMPLES_AT``), against the plain Concrete step at m = 1 (the relaxed bound),
timed in the same interleaved rounds:

    python benchmarks/estimators.py --training 2 [--model 200H-784V] [--repeats 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from concretelab.estimators import ESTIMATORS, get_estimator

BATCH, LATENTS, PIXELS = 64, 200, 784


def make_objective(generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    weight = torch.randn(LATENTS, PIXELS, generator=generator) / LATENTS**0.5
    bias = torch.randn(PIXELS, generator=generator)
    x = (torch.rand(BATCH, PIXELS, generator=generator) < 0.3).float()

    def f(b: torch.Tensor) -> torch.Tensor:  # (S, 64, 200) -> (S,)
        logits = b @ weight + bias  # (S, 64, 784)
        log_lik = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        return log_lik.sum(dim=(1, 2))

    return f


def make_cases(samples: int) -> dict[str, tuple[Callable[[], torch.Tensor], int]]:
    gen = torch.Generator().manual_seed(0)
    f = make_objective(gen)
    logits = torch.randn(BATCH, LATENTS, generator=gen)
    noise = torch.Generator().manual_seed(1)
    cases: dict[str, tuple[Callable[[], torch.Tensor], int]] = {}

    def add(label: str, name: str, **options: object) -> None:
        est = get_estimator(name, "bernoulli", **options)
        k = max(samples, est.min_samples)
        cases[label] = (lambda: est.estimate(f, logits, k, generator=noise), k)

    add("reinforce (no baseline)", "reinforce", use_baseline=False)
    for name, cls in ESTIMATORS.items():
        if "bernoulli" not in cls.families:
            continue
        if cls.evaluations_per_sample is None:  # IndeCateR: 1 + n (K - 1) evaluations, 201 on these logits
            print(f"({name} left out: its cost grows with the number of latents, "
                  f"{get_estimator(name, 'bernoulli').evaluations(logits)} f-evaluations per sample here)")
            continue
        add(name, name)
    add("rebar (adapt=False)", "rebar", adapt=False)
    add("relax (adapt=False)", "relax", adapt=False)
    for samples_k in {max(samples, 2)} - {samples}:  # the baseline at the multi-sample count too
        est = get_estimator("reinforce", use_baseline=False)
        cases[f"reinforce (no baseline, {samples_k} samples)"] = (
            lambda est=est, k=samples_k: est.estimate(f, logits, k, generator=noise),
            samples_k,
        )
    return cases


def make_training_steps(evaluations: int, spec: str) -> dict[str, tuple[Callable[[], None], int]]:
    """label -> (one training step, samples m) for every leaderboard estimator at ``evaluations`` per example, and
    the baseline ``concrete m=1``."""
    from concretelab.models import build_model
    from concretelab.objectives import OBJECTIVES
    from concretelab.reproduce.leaderboard import SAMPLES_AT
    from concretelab.train.discrete import build_estimator_objective

    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(50, 784, generator=gen) < 0.3).float()
    steps: dict[str, tuple[Callable[[], None], int]] = {}

    def add(label: str, name: str, m: int) -> None:
        torch.manual_seed(0)
        model = build_model(spec)
        if name == "concrete":
            objective, own = OBJECTIVES["relaxed"], []
        else:
            objective = build_estimator_objective(name, model, seed=0).train()
            own = list(objective.parameters())
        optimizer = torch.optim.Adam([*model.parameters(), *own], lr=1e-4)
        noise = torch.Generator().manual_seed(1)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            bound = objective(model, x, samples=m, prior_temperature=0.5, posterior_temperature=2 / 3,
                              generator=noise)
            (-bound.mean()).backward()
            optimizer.step()

        steps[label] = (step, m)

    add("concrete m=1", "concrete", 1)
    for name, samples_at in SAMPLES_AT.items():
        m = samples_at(evaluations)
        if m is not None:
            add(f"{name} m={m}", name, m)
    return steps


def run_training(evaluations: int, spec: str, repeats: int) -> None:
    from concretelab.estimators import ESTIMATORS

    steps = make_training_steps(evaluations, spec)
    for fn, _ in steps.values():  # warm-up: allocator, networks built at the first call
        fn()
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(repeats):
        for label, (fn, _) in steps.items():
            start = time.process_time()
            fn()
            times[label].append(time.process_time() - start)
    base = statistics.median(times["concrete m=1"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU time; {spec}, batch 50; "
          f"K = {evaluations} f-evaluations per example and step; median of {repeats} interleaved rounds\n")
    print(f"{'estimator':<24} {'unbiased':>8} {'median ms':>9} {'x concrete m=1':>14}")
    for label, values in times.items():
        name = label.split(" ")[0]
        unbiased = "yes" if name != "concrete" and ESTIMATORS[name].unbiased else "no"
        median = statistics.median(values)
        print(f"{label:<24} {unbiased:>8} {median * 1e3:9.2f} {median / base:14.2f}")


def time_interleaved(cases: dict[str, Callable[[], torch.Tensor]], repeats: int) -> dict[str, list[float]]:
    for fn in cases.values():  # warm-up (also builds nvil's and relax's networks)
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds (median reported)")
    parser.add_argument("--samples", type=int, default=1, help="samples per estimate (multi-sample: at least 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--training", type=int, default=None, metavar="K",
                        help="time training steps of the leaderboard's estimators at K f-evaluations per example")
    parser.add_argument("--model", default="200H-784V", help="the model of --training (default 200H-784V)")
    args = parser.parse_args()
    if args.repeats < 1 or args.samples < 1:
        parser.error("--repeats and --samples must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.training is not None:
        if args.training < 1:
            parser.error("--training K needs K >= 1")
        run_training(args.training, args.model, args.repeats)
        return
    cases = make_cases(args.samples)
    times = time_interleaved({name: fn for name, (fn, _) in cases.items()}, args.repeats)
    medians = {name: statistics.median(values) for name, values in times.items()}
    minima = {name: min(values) for name, values in times.items()}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU float32; logits ({BATCH}, {LATENTS}), "
        f"decoder likelihood over {PIXELS} pixels"
    )
    print(f"median of {args.repeats} interleaved rounds per estimate() call\n")
    print(
        f"{'estimator':<34} {'samples':>7} {'f-evals':>7} {'median ms':>9} {'x reinforce':>11} {'min ms':>8} {'x':>6}"
    )
    for name, seconds in medians.items():
        k = cases[name][1]
        base = "reinforce (no baseline)" if k == args.samples else f"reinforce (no baseline, {k} samples)"
        key = name.split(" ")[0]
        evals = int(ESTIMATORS[key].evaluations_per_sample or 0) * k
        print(
            f"{name:<34} {k:>7} {evals:>7} {seconds * 1e3:9.2f} {seconds / medians[base]:11.2f} "
            f"{minima[name] * 1e3:8.2f} {minima[name] / minima[base]:6.2f}"
        )


if __name__ == "__main__":
    main()
