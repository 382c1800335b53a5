"""Cost of exact discrete draws: four ways to draw b ~ Bernoulli(sigmoid(a)) and two for a categorical draw,
alone and inside the importance-weighted bound L_k of a Table 1 model, CPU.

Bernoulli, a float32 (chunk, batch, units) tensor of logits:
  * ``rand32 < sigmoid``  the old sampler (wrong: probability 2**-24 for any state, however unlikely);
  * ``logistic32``        1[a + L > 0], L logistic from an open float32 uniform (never draws a state of
                          probability below ~2**-24, but is off by up to 2**-24 above it);
  * ``rand64 < sigmoid``  the package's sampler (functional.sample_bernoulli): compare in float64;
  * ``logistic64``        1[a + L > 0] in float64.
Categorical, float32 logits (chunk, units, K): Gumbel-max in float32 (old) and in float64 (the package's).
"in L_k" times one chunk of ``discrete_bound`` for 200H-784V at k = 5000 (sample_posterior + log_joint)
with the old sampler and with the package's, so the ratio is what the exact sampler costs an evaluation.
Rounds are interleaved; the table shows medians and each method's time over the old sampler's.

    python benchmarks/sampling.py [--repeats 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from unittest import mock

import torch

import concretelab.models.base as model_base
from concretelab.functional import (
    one_hot_argmax,
    sample_bernoulli,
    sample_categorical,
    sample_gumbel,
    sample_logistic,
    sample_uniform_open,
)
from concretelab.models import SigmoidBeliefNet
from concretelab.objectives import discrete_bound


def old_sample_discrete(categories, logits, shape, generator):
    """The sampler before the fix (models/base.py at a75549c), kept here only to be timed."""
    if categories == 2:
        u = torch.rand(tuple(shape), generator=generator, dtype=logits.dtype, device=logits.device)
        return (u < torch.sigmoid(logits)).to(logits.dtype)
    g = sample_gumbel(tuple(shape), generator=generator, dtype=logits.dtype, device=logits.device)
    return one_hot_argmax(logits + g)


def bernoulli_cases(shape: tuple[int, ...]) -> dict[str, Callable[[], object]]:
    a = torch.randn(shape) * 4
    a64 = a.double()
    return {
        "rand32 < sigmoid (old)": lambda: (torch.rand(shape) < torch.sigmoid(a)).float(),
        "logistic32": lambda: (a + sample_logistic(shape) > 0).float(),
        "rand64 < sigmoid (new)": lambda: sample_bernoulli(a),
        "logistic64": lambda: (a64 + sample_logistic(shape, dtype=torch.float64) > 0).float(),
        "floor: rand32": lambda: torch.rand(shape),
        "floor: open rand64": lambda: sample_uniform_open(shape, dtype=torch.float64),
    }


def categorical_cases(shape: tuple[int, ...]) -> dict[str, Callable[[], object]]:
    a = torch.randn(shape) * 4
    return {
        "gumbel-max float32 (old)": lambda: old_sample_discrete(shape[-1], a, shape, None),
        "gumbel-max float64 (new)": lambda: sample_categorical(a),
    }


def bound_cases(spec: str, k: int) -> dict[str, Callable[[], object]]:
    model = SigmoidBeliefNet.from_spec(spec)
    x = (torch.rand(1, 784) < 0.13).float()

    def old() -> object:
        with mock.patch.object(model_base, "sample_discrete", old_sample_discrete):
            return discrete_bound(model, x, k)

    return {"L_k old sampler": old, "L_k new sampler": lambda: discrete_bound(model, x, k)}


def run(title: str, cases: dict[str, Callable[[], object]], repeats: int, baseline: str) -> None:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm-up
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times[baseline])
    print(f"\n{title}")
    print(f"{'method':<28}{'median ms':>12}{'/ old':>9}")
    for name, values in times.items():
        m = statistics.median(values)
        print(f"{name:<28}{1e3 * m:>12.2f}{m / base:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} interleaved rounds")
    for shape in ((1, 64, 200), (5000, 1, 200)):
        run(f"Bernoulli, logits {shape}", bernoulli_cases(shape), args.repeats, "rand32 < sigmoid (old)")
    run("Categorical, logits (5000, 60, 8)", categorical_cases((5000, 60, 8)), args.repeats,
        "gumbel-max float32 (old)")
    for spec in ("200H-784V", "200H~200H~784V"):
        run(f"{spec}: L_5000 of one image", bound_cases(spec, 5000), max(3, args.repeats // 3), "L_k old sampler")


if __name__ == "__main__":
    main()
