"""Speed of the Concrete family against torch.distributions and torch.nn.functional, CPU float32.

For each shape (batch, K) it times forward + backward of
  * rsample + log_prob: concretelab Concrete (and its fused sample_and_log_prob) against
    torch.distributions.RelaxedOneHotCategorical; concretelab ExpConcrete against torch's
    ExpRelaxedCategorical;
  * gumbel_softmax: concretelab.functional.gumbel_softmax against torch.nn.functional.gumbel_softmax;
and the floor, torch.rand of the same shape. Every case runs once per round, rounds are interleaved,
and the table shows medians and the ratio torch / concretelab (> 1: concretelab is faster).

    python benchmarks/distributions.py [--repeats 15] [--threads 2] [--shapes 200000x10] [--compile]

With ``--baseline COMMIT`` it compares this checkout's concretelab with the package at COMMIT *in the same run*:
two worker processes, one importing each version (COMMIT's ``src/`` is extracted with ``git archive`` into a
temporary folder), take turns case by case and round by round, and the table gives each case's median in each,
the ratio to ``torch.rand`` of the same shape (timed in the same worker) and baseline / current (> 1: the
current code is faster). Issue 27's acceptance is the first line at (200000, 10) with 2 threads:

    python benchmarks/distributions.py --baseline a75549c --shapes 200000x10 --threads 2 --repeats 21
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

import concretelab.distributions
from concretelab.distributions import Concrete, ExpConcrete
from concretelab.functional import gumbel_softmax, sample_gumbel

SHAPES = ((200_000, 10), (4096, 1000), (64, 200))
TEMPERATURE = 0.5


def make_cases(shape: tuple[int, int], compiled: bool = False) -> dict[str, Callable[[], None]]:
    logits = torch.randn(shape, requires_grad=True)
    weight = torch.randn(shape)
    temperature = torch.tensor(TEMPERATURE)

    def fused_step(a: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x, lp = Concrete(temperature, logits=a, validate_args=False).sample_and_log_prob(noise=noise)
        return (x * weight).sum() + lp.sum()

    compiled_step = torch.compile(fused_step, fullgraph=True) if compiled else None

    def ours_concrete_compiled() -> None:  # inductor fuses the elementwise passes (records are off when compiled)
        assert compiled_step is not None
        compiled_step(logits, sample_gumbel(shape)).backward()

    def ours_concrete() -> None:
        d = Concrete(temperature, logits=logits, validate_args=False)
        x = d.rsample()
        ((x * weight).sum() + d.log_prob(x).sum()).backward()

    def ours_concrete_values_guard() -> None:
        guard = getattr(concretelab.distributions, "record_guard", None)  # absent before issue 27
        with guard("values") if guard is not None else contextlib.nullcontext():
            ours_concrete()

    def ours_concrete_fused() -> None:
        d = Concrete(temperature, logits=logits, validate_args=False)
        x, lp = d.sample_and_log_prob()
        ((x * weight).sum() + lp.sum()).backward()

    def torch_concrete() -> None:
        d = torch.distributions.RelaxedOneHotCategorical(temperature, logits=logits, validate_args=False)
        x = d.rsample()
        ((x * weight).sum() + d.log_prob(x).sum()).backward()

    def ours_exp() -> None:
        d = ExpConcrete(temperature, logits=logits, validate_args=False)
        y = d.rsample()
        ((y * weight).sum() + d.log_prob(y).sum()).backward()

    def torch_exp() -> None:
        d = ExpRelaxedCategorical(temperature, logits=logits, validate_args=False)
        y = d.rsample()
        ((y * weight).sum() + d.log_prob(y).sum()).backward()

    def ours_gumbel_softmax() -> None:
        (gumbel_softmax(logits, TEMPERATURE) * weight).sum().backward()

    def torch_gumbel_softmax() -> None:
        (F.gumbel_softmax(logits, tau=TEMPERATURE) * weight).sum().backward()

    def floor() -> None:
        torch.rand(shape)

    def clear(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            logits.grad = None
            fn()

        return run

    cases = {
        "concretelab Concrete rsample+log_prob": ours_concrete,
        **({"concretelab Concrete sample_and_log_prob, torch.compile": ours_concrete_compiled} if compiled else {}),
        "concretelab Concrete rsample+log_prob, values guard": ours_concrete_values_guard,
        "concretelab Concrete sample_and_log_prob": ours_concrete_fused,
        "torch RelaxedOneHotCategorical rsample+log_prob": torch_concrete,
        "concretelab ExpConcrete rsample+log_prob": ours_exp,
        "torch ExpRelaxedCategorical rsample+log_prob": torch_exp,
        "concretelab gumbel_softmax": ours_gumbel_softmax,
        "torch F.gumbel_softmax": torch_gumbel_softmax,
        "floor: torch.rand": floor,
    }
    return {name: clear(fn) for name, fn in cases.items()}


def time_interleaved(cases: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    for fn in cases.values():  # warm-up
        fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


COMPARISONS = (
    ("torch RelaxedOneHotCategorical rsample+log_prob", "concretelab Concrete rsample+log_prob"),
    ("torch RelaxedOneHotCategorical rsample+log_prob", "concretelab Concrete sample_and_log_prob"),
    ("concretelab Concrete rsample+log_prob, values guard", "concretelab Concrete rsample+log_prob"),
    ("torch ExpRelaxedCategorical rsample+log_prob", "concretelab ExpConcrete rsample+log_prob"),
    ("torch F.gumbel_softmax", "concretelab gumbel_softmax"),
)


# ---- the same-run comparison with another commit -------------------------------------------------------------

VERSIONED_CASES = (  # the cases of make_cases whose code is concretelab's, and the floor
    "concretelab Concrete rsample+log_prob",
    "concretelab Concrete rsample+log_prob, values guard",
    "concretelab Concrete sample_and_log_prob",
    "concretelab ExpConcrete rsample+log_prob",
    "concretelab gumbel_softmax",
    "floor: torch.rand",
)


def serve(threads: int | None) -> None:
    """Worker mode: read ``{"case", "shape"}`` lines on stdin, run the case once, answer its wall seconds."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    built: dict[tuple[int, ...], dict[str, Callable[[], None]]] = {}
    for line in sys.stdin:
        request = json.loads(line)
        shape = tuple(request["shape"])
        if shape not in built:
            built[shape] = make_cases(shape)  # type: ignore[arg-type]
            for fn in built[shape].values():  # warm-up
                fn()
        start = time.perf_counter()
        built[shape][request["case"]]()
        print(json.dumps(time.perf_counter() - start), flush=True)


class Worker:
    """A process that imports concretelab from ``src`` and times cases on request."""

    def __init__(self, src: Path, threads: int | None) -> None:
        env = {**os.environ, "PYTHONPATH": str(src)}
        command = [sys.executable, __file__, "--serve"] + ([f"--threads={threads}"] if threads else [])
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        check = [sys.executable, "-c", "import concretelab, sys; sys.stdout.write(concretelab.__file__)"]
        self.package = subprocess.run(check, env=env, capture_output=True, text=True, check=True).stdout

    def time(self, case: str, shape: tuple[int, int]) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"case": case, "shape": shape}) + "\n")
        self.process.stdin.flush()
        return float(json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def compare_with(baseline: str, shapes: list[tuple[int, int]], repeats: int, threads: int | None) -> None:
    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", baseline], cwd=repo, capture_output=True, text=True,
                            check=True).stdout.strip()
    current = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=repo, capture_output=True, text=True,
                           check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=repo, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        workers = {f"current ({current}{'+dirty' if dirty else ''})": Worker(repo / "src", threads),
                   f"baseline ({commit})": Worker(Path(tmp) / "src", threads)}
        print(f"torch {torch.__version__}, {threads or torch.get_num_threads()} threads, CPU float32, temperature "
              f"{TEMPERATURE}; median of {repeats} interleaved rounds, forward + backward, wall time")
        for name, worker in workers.items():
            print(f"  {name}: {worker.package}")
        try:
            for shape in shapes:
                seconds: dict[tuple[str, str], list[float]] = {}
                for _ in range(repeats):
                    for case in VERSIONED_CASES:
                        for name, worker in workers.items():
                            seconds.setdefault((name, case), []).append(worker.time(case, shape))
                medians = {key: statistics.median(values) for key, values in seconds.items()}
                names = list(workers)
                print(f"\nshape {shape}")
                print(f"  {'case':<52}" + "".join(f"{n[:26]:>28}" for n in names) + f"{'baseline / current':>20}")
                for case in VERSIONED_CASES:
                    floor = {n: medians[(n, VERSIONED_CASES[-1])] for n in names}
                    cells = "".join(f"{medians[(n, case)] * 1e3:>12.3f} ms {medians[(n, case)] / floor[n]:>5.1f}x rand"
                                    for n in names)
                    ratio = medians[(names[1], case)] / medians[(names[0], case)]
                    print(f"  {case:<52}{cells}{ratio:>19.2f}x")
        finally:
            for worker in workers.values():
                worker.close()


def _shape(text: str) -> tuple[int, int]:
    rows, cols = text.lower().split("x")
    return int(rows), int(cols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds per shape (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--baseline", default=None, help="also time the package at this commit, in the same run")
    parser.add_argument("--shapes", type=_shape, nargs="+", default=list(SHAPES), help="shapes as ROWSxCOLS")
    parser.add_argument("--compile", action="store_true",
                        help="also time sample_and_log_prob + backward under torch.compile (inductor; slow to build)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # worker mode (--baseline)
    args = parser.parse_args()
    if args.serve:
        serve(args.threads)
        return
    if args.baseline:
        compare_with(args.baseline, args.shapes, args.repeats, args.threads)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU float32, temperature {TEMPERATURE}")
    print(f"median of {args.repeats} interleaved rounds; forward + backward\n")
    for shape in args.shapes:
        medians = time_interleaved(make_cases(shape, args.compile), args.repeats)
        floor = medians["floor: torch.rand"]
        print(f"shape {shape}")
        print(f"  {'case':<50} {'ms':>9} {'x floor':>8}")
        for name, seconds in medians.items():
            print(f"  {name:<50} {seconds * 1e3:9.3f} {seconds / floor:8.1f}")
        print(f"  {'ratio (torch / concretelab; > 1 is faster)':<50}")
        for theirs, ours in COMPARISONS:
            print(f"    {ours:<48} {medians[theirs] / medians[ours]:6.2f}x  vs {theirs}")
        print()


if __name__ == "__main__":
    main()
