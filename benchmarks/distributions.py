"""Speed of the Concrete family against torch.distributions and torch.nn.functional, CPU float32.

For each shape (batch, K) it times forward + backward of
  * rsample + log_prob: concretelab Concrete (and its fused sample_and_log_prob) against
    torch.distributions.RelaxedOneHotCategorical; concretelab ExpConcrete against torch's
    ExpRelaxedCategorical;
  * gumbel_softmax: concretelab.functional.gumbel_softmax against torch.nn.functional.gumbel_softmax;
and the floor, torch.rand of the same shape. Every case runs once per round, rounds are interleaved,
and the table shows medians and the ratio torch / concretelab (> 1: concretelab is faster).

    python benchmarks/distributions.py [--repeats 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

from concretelab.distributions import Concrete, ExpConcrete
from concretelab.functional import gumbel_softmax

SHAPES = ((200_000, 10), (4096, 1000), (64, 200))
TEMPERATURE = 0.5


def make_cases(shape: tuple[int, int]) -> dict[str, Callable[[], None]]:
    logits = torch.randn(shape, requires_grad=True)
    weight = torch.randn(shape)
    temperature = torch.tensor(TEMPERATURE)

    def ours_concrete() -> None:
        d = Concrete(temperature, logits=logits, validate_args=False)
        x = d.rsample()
        ((x * weight).sum() + d.log_prob(x).sum()).backward()

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
    ("torch ExpRelaxedCategorical rsample+log_prob", "concretelab ExpConcrete rsample+log_prob"),
    ("torch F.gumbel_softmax", "concretelab gumbel_softmax"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds per shape (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU float32, temperature {TEMPERATURE}")
    print(f"median of {args.repeats} interleaved rounds; forward + backward\n")
    for shape in SHAPES:
        medians = time_interleaved(make_cases(shape), args.repeats)
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
