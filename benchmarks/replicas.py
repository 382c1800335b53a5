"""Replicas in one process (``concretelab train --seeds``) against R runs of the trainer, one after the other.

For each model and m, the same training step as the trainer's (the relaxed bound on a batch of 64 per replica,
``-bound.mean()``, backward, the trainer's fused Adam, its noise generator reseeded every step) is timed:

- *sequential*: one model; R runs side by side on one core give R / (R x its time) = 1 / its time replica-steps/s
  whatever R is;
- *stacked*: the ``--seeds`` model of R replicas (:func:`concretelab.train.replicas.stack_replicas`: ``baddbmm``
  over stacked weights, one fused Adam), R replica-steps per step;
- with ``--vmap``, also ``torch.func.vmap`` of the single model's step over stacked parameters
  (``functional_call``, ``randomness="different"``), the other way the issue names to batch replicas;
- with ``--compile``, also the step of ``train --compile`` (:class:`concretelab.train.compiled.CompiledLoss`: the
  loss as one graph, its noise drawn inside it) on one model (R = 1) and on the stacked replicas.

Every variant is timed in CPU time of this process, one thread, in interleaved blocks (variant after variant,
block after block) and the median block is kept, so a machine whose load changes affects all of them alike. The
matmul floor of one replica-step is 3 x 64 x m x the multiply-add FLOPs of every nn.Linear at the rate of a
1024 x 1024 float32 product (benchmarks/train.py's floor). Run: ``python benchmarks/replicas.py [--quick]``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES
from concretelab.train.compiled import CompiledLoss
from concretelab.train.loop import build_optimizer
from concretelab.train.replicas import stack_replicas

PRIOR_T, POSTERIOR_T, BATCH = 0.5, 2 / 3, 64
relaxed = OBJECTIVES["relaxed"]


def matmul_rate(n: int = 1024) -> float:
    """FLOP/s of an (n x n) @ (n x n) float32 product in CPU time, best of 5 blocks of 4."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(4):
            torch.mm(a, b)
        best = min(best, (time.process_time() - t0) / 4)
    return 2 * n**3 / best


def linear_flops(model: nn.Module) -> int:
    """Multiply-add FLOPs of one pass through every nn.Linear of one model, per example: 2 x weights."""
    return sum(2 * m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def _models(spec: str, replicas: int, mean: Tensor) -> list[nn.Module]:
    models = []
    for seed in range(replicas):
        torch.manual_seed(seed)
        models.append(build_model(spec, train_mean=mean))
    return models


def step_function(model: nn.Module, x: Tensor, m: int, replicas: int, compiled: bool = False
                  ) -> Callable[[], None]:
    """The trainer's step on ``model`` (one model, or R stacked replicas with ``x`` of R x 64 rows); with
    ``compiled``, the step of ``train --compile`` (its loss as one graph; the backward and Adam as they are)."""
    optimizer = build_optimizer(list(model.parameters()), 1e-4, torch.device("cpu"))
    generator = torch.Generator()
    count = [0]

    def loss_of(images: Tensor, prior_t: float | Tensor, posterior_t: float | Tensor,
                noise: torch.Generator | None) -> Tensor:
        bound = relaxed(model, images, samples=m, prior_temperature=prior_t, posterior_temperature=posterior_t,
                        generator=noise)
        return -bound.mean() if replicas == 1 else -bound.view(replicas, -1).mean(1).sum()

    graph = CompiledLoss(functools.partial(loss_of, noise=None), torch.device("cpu")) if compiled else None

    def step() -> None:
        count[0] += 1
        if graph is not None:
            loss = graph(x, PRIOR_T, POSTERIOR_T, seed=count[0])
        else:
            generator.manual_seed(count[0])
            loss = loss_of(x, PRIOR_T, POSTERIOR_T, generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def vmap_step_function(spec: str, x: Tensor, m: int, replicas: int, mean: Tensor) -> Callable[[], None]:
    """The same step with torch.func: the single model's loss vmapped over stacked parameters."""
    models = _models(spec, replicas, mean)
    params, buffers = torch.func.stack_module_state(models)
    base = copy.deepcopy(models[0])
    optimizer = build_optimizer(list(params.values()), 1e-4, torch.device("cpu"))
    generator = torch.Generator()
    rows = x.view(replicas, BATCH, -1)

    def loss(p: dict[str, Tensor], b: dict[str, Tensor], images: Tensor) -> Tensor:
        with torch.nn.utils.stateless._reparametrize_module(base, {**p, **b}):
            return -relaxed(base, images, samples=m, prior_temperature=PRIOR_T, posterior_temperature=POSTERIOR_T,
                            generator=generator).mean()

    batched = torch.func.vmap(loss, randomness="different")
    count = [0]

    def step() -> None:
        count[0] += 1
        generator.manual_seed(count[0])
        batched(params, buffers, rows).sum().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def interleaved_ms(steps: dict[str, Callable[[], None]], per_block: dict[str, int], blocks: int) -> dict[str, float]:
    """Median CPU ms per call of each step, blocks of each variant taken in turn."""
    for step in steps.values():
        for _ in range(2):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(blocks):
        for name, step in steps.items():
            t0 = time.process_time()
            for _ in range(per_block[name]):
                step()
            times[name].append((time.process_time() - t0) / per_block[name] * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks (about a minute per model)")
    parser.add_argument("--replicas", default="1,2,4,8,16", help="replica counts R (default: 1,2,4,8,16)")
    parser.add_argument("--models", default="200H-784V,200H~784V,200H~200H~784V")
    parser.add_argument("--samples", default="1,5", help="values of m (default: 1,5)")
    parser.add_argument("--vmap", action="store_true", help="also time torch.func.vmap over stacked parameters")
    parser.add_argument("--compile", action="store_true",
                        help="also time the step of train --compile, one model and stacked (10-60 s to compile each)")
    parser.add_argument("--blocks", type=int, default=None, help="timed blocks per variant (default: 7; 3 quick)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="There is a performance drop")  # vmap's clamp_ fallback
    blocks = args.blocks or (3 if args.quick else 7)
    counts = [int(r) for r in args.replicas.split(",")]
    rate = matmul_rate()
    print(f"torch {torch.__version__}, 1 thread, CPU time, median of {blocks} interleaved blocks; matmul rate "
          f"{rate / 1e9:.1f} GFLOP/s (1024^2 float32). Aggregate replica-steps/s: R x steps/s of the stacked model; "
          "sequential: one model's steps/s (R runs one after the other give the same aggregate at any R)\n")
    print("| model | m | R | stacked ms/step | replica-steps/s stacked | sequential | stacked / sequential | "
          "ms per replica-step | matmul floor (ms) | ratio to floor |" + (" vmap / sequential |" if args.vmap else "")
          + (" compiled / sequential | compiled ratio to floor |" if args.compile else ""))
    print("|---" * (10 + args.vmap + 2 * args.compile) + "|")
    torch.manual_seed(0)
    for spec in args.models.split(","):
        for m in (int(v) for v in args.samples.split(",")):
            torch._dynamo.reset()  # Dynamo keeps 8 graphs per function; each (model, m) compiles up to 5
            x1 = (torch.rand(BATCH, 784) < 0.3).float()
            mean = x1.mean(0)
            steps: dict[str, Callable[[], None]] = {"1": step_function(_models(spec, 1, mean)[0], x1, m, 1)}
            per_block = {"1": max(2, 60 // m)}
            if args.compile:
                steps["compiled1"] = step_function(_models(spec, 1, mean)[0], x1, m, 1, True)
                per_block["compiled1"] = per_block["1"]
            for r in counts:
                if r == 1:
                    continue
                x = (torch.rand(r * BATCH, 784) < 0.3).float()
                steps[str(r)] = step_function(stack_replicas(_models(spec, r, mean)), x, m, r)
                per_block[str(r)] = max(1, 60 // (m * r))
                if args.vmap:
                    steps[f"vmap{r}"] = vmap_step_function(spec, x, m, r, mean)
                    per_block[f"vmap{r}"] = per_block[str(r)]
                if args.compile:
                    steps[f"compiled{r}"] = step_function(stack_replicas(_models(spec, r, mean)), x, m, r, True)
                    per_block[f"compiled{r}"] = per_block[str(r)]
            ms = interleaved_ms(steps, per_block, blocks)
            floor = 3 * BATCH * m * linear_flops(_models(spec, 1, mean)[0]) / rate * 1e3
            sequential = 1e3 / ms["1"]
            for r in counts:
                per_step = ms[str(r)]
                aggregate = r * 1e3 / per_step
                row = (f"| {spec} | {m} | {r} | {per_step:.2f} | {aggregate:.0f} | {sequential:.0f} | "
                       f"{aggregate / sequential:.2f} | {per_step / r:.2f} | {floor:.2f} | "
                       f"{per_step / r / floor:.2f} |")
                for flag, prefix in ((args.vmap, "vmap"), (args.compile, "compiled")):
                    if flag:
                        row += f" {r * ms['1'] / ms[f'{prefix}{r}']:.2f} |" if f"{prefix}{r}" in ms else " |"
                if args.compile:
                    row += f" {ms[f'compiled{r}'] / r / floor:.2f} |"
                print(row, flush=True)


if __name__ == "__main__":
    main()
