"""Replicas and CUDA graphs on a GPU: aggregate replica-steps/s of the trainer's step, eager, graphed and compiled.

For each model, m and replica count R the trainer's step (the relaxed bound on 64 images per replica, the loss
``-bound.mean()`` per replica, backward, fused Adam; R = 1 is one model, R > 1 the ``--seeds`` model of
:func:`concretelab.train.replicas.stack_replicas`) is timed eagerly and as one CUDA graph
(:class:`concretelab.train.graphed.GraphedStep`, what ``--cuda-graph`` runs), in wall time between two
``torch.cuda.synchronize`` calls over ``--steps`` steps after a warm-up; with ``--compile``, also with the loss
compiled as one graph (:class:`concretelab.train.compiled.CompiledLoss`, what ``--compile`` runs). A configuration
that does not fit in the GPU's memory is reported as such. Run by benchmarks/gpu.sh; ``python benchmarks/gpu.py
--help`` for the options.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor

from concretelab.devices import describe_device
from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES
from concretelab.train.compiled import CompiledLoss
from concretelab.train.graphed import GraphedStep, step_state
from concretelab.train.loop import build_optimizer
from concretelab.train.replicas import stack_replicas

BATCH, PRIOR_T, POSTERIOR_T = 64, 0.5, 2 / 3


def _model(spec: str, replicas: int, mean: Tensor, device: torch.device) -> torch.nn.Module:
    models = []
    for seed in range(replicas):
        torch.manual_seed(seed)
        models.append(build_model(spec, train_mean=mean))
    return (models[0] if replicas == 1 else stack_replicas(models)).to(device)


def steps_per_s(spec: str, m: int, replicas: int, mode: str, steps: int, device: torch.device) -> float:
    """Aggregate replica-steps/s of ``steps`` timed steps; ``mode`` is eager, graphed or compiled."""
    x = (torch.rand(replicas * BATCH, 784, device=device) < 0.3).float()
    model = _model(spec, replicas, x[:BATCH].mean(0).cpu(), device)
    optimizer = build_optimizer(list(model.parameters()), 1e-4, device)
    generator = torch.Generator(device=device)

    def loss_fn(images: Tensor, prior_t: Tensor | float, posterior_t: Tensor | float,
                noise: torch.Generator | None = generator) -> Tensor:
        bound = OBJECTIVES["relaxed"](model, images, samples=m, prior_temperature=prior_t,
                                      posterior_temperature=posterior_t, generator=noise)
        return -bound.view(replicas, -1).mean(1)

    if mode == "graphed":
        graph = GraphedStep(loss_fn, optimizer, state=step_state(model), example=x, generator=generator)

        def step(i: int) -> None:
            graph(x, lr=1e-4, prior_t=PRIOR_T, posterior_t=POSTERIOR_T, seed=i)
    else:
        compiled = CompiledLoss(lambda *a: loss_fn(*a, noise=None), device) if mode == "compiled" else None

        def step(i: int) -> None:
            if compiled is not None:
                loss = compiled(x, PRIOR_T, POSTERIOR_T, seed=i)
            else:
                generator.manual_seed(i)
                loss = loss_fn(x, PRIOR_T, POSTERIOR_T)
            loss.sum().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    for i in range(5):
        step(i)
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    torch.cuda.synchronize(device)
    return replicas * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="200H-784V,200H~200H~784V")
    parser.add_argument("--samples", default="1,50")
    parser.add_argument("--replicas", default="1,8,32,128")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per configuration (default 200)")
    parser.add_argument("--compile", action="store_true",
                        help="also time train --compile's step (10-60 s to compile each configuration)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA device")
    device = torch.device("cuda")
    modes = ("eager", "graphed", "compiled") if args.compile else ("eager", "graphed")
    print(f"{describe_device(device)}; {args.steps} timed steps per configuration, wall time\n")
    print("| model | m | R | " + " | ".join(f"{mode} replica-steps/s" for mode in modes) + " | "
          + " | ".join(f"{mode} / eager" for mode in modes[1:]) + " |")
    print("|---" * (3 + 2 * len(modes) - 1) + "|")
    for spec in args.models.split(","):
        for m in (int(v) for v in args.samples.split(",")):
            for replicas in (int(v) for v in args.replicas.split(",")):
                rates: list[float | None] = []
                for mode in modes:
                    torch._dynamo.reset()  # Dynamo keeps 8 graphs per function: a fresh one per configuration
                    try:
                        rates.append(steps_per_s(spec, m, replicas, mode, max(10, args.steps // m), device))
                    except torch.OutOfMemoryError:
                        rates.append(None)
                    torch.cuda.empty_cache()
                shown = [f"{r:,.0f}" if r else "out of memory" for r in rates]
                ratios = [f"{r / rates[0]:.2f}" if r and rates[0] else "-" for r in rates[1:]]
                print(f"| {spec} | {m} | {replicas} | {' | '.join(shown)} | {' | '.join(ratios)} |", flush=True)


if __name__ == "__main__":
    main()
