"""The distributions' cost at two commits, in CPU time: run once per checkout and compare the lines.

The same cases as benchmarks/distributions.py (Concrete rsample + log_prob, sample_and_log_prob, ExpConcrete,
BinConcrete, gumbel_softmax; forward and backward, float32, one thread) at a large and a small shape, timed with
``time.process_time`` (this process's CPU time, which other processes on a shared machine disturb far less than
wall time), median of 9 blocks. Used for issue 11's "speed must not regress":

    git worktree add ../before <commit>
    PYTHONPATH=../before/src python benchmarks/distributions_cpu_time.py   # the package at <commit>
    PYTHONPATH=src python benchmarks/distributions_cpu_time.py             # the working tree
"""

from __future__ import annotations

import statistics
import time

import torch

from concretelab.distributions import BinConcrete, Concrete, ExpConcrete
from concretelab.functional import gumbel_softmax

KINDS = ("concrete", "concrete_sample_and_log_prob", "exp_concrete", "bin_concrete", "gumbel_softmax")
SHAPES = ((200_000, 10), (64, 200))


def case(kind: str, shape: tuple[int, int]):
    logits = torch.randn(*shape, requires_grad=True)
    g = torch.Generator().manual_seed(0)

    def run() -> None:
        if kind == "concrete":
            d = Concrete(0.5, logits=logits)
            x = d.rsample(generator=g)
            lp = d.log_prob(x)
        elif kind == "concrete_sample_and_log_prob":
            x, lp = Concrete(0.5, logits=logits).sample_and_log_prob(generator=g)
        elif kind == "exp_concrete":
            d = ExpConcrete(0.5, logits=logits)
            x = d.rsample(generator=g)
            lp = d.log_prob(x)
        elif kind == "bin_concrete":
            d = BinConcrete(0.5, logits=logits[..., 0])
            x = d.rsample(generator=g)
            lp = d.log_prob(x)
        else:
            x = gumbel_softmax(logits, 0.5, generator=g)
            lp = x.sum(-1)
        (x.sum() + lp.sum()).backward()

    return run


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; median CPU ms of 9 blocks (forward + backward)")
    for kind in KINDS:
        for shape in SHAPES:
            run = case(kind, shape)
            repeats = 5 if shape[0] > 1000 else 300
            run()
            times = []
            for _ in range(9):
                start = time.process_time()
                for _ in range(repeats):
                    run()
                times.append((time.process_time() - start) / repeats * 1e3)
            print(f"{kind:<30} {shape!s:<14} {statistics.median(times):9.3f}")


if __name__ == "__main__":
    main()
