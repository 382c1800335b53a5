"""Replicas and CUDA graphs on a GPU: aggregate replica-steps/s of the trainer's step, eager and graphed.

For each model, m and replica count R the trainer's step (the relaxed bound on 64 images per replica, the loss
``-bound.mean()`` per replica, backward, fused Adam; R = 1 is one model, R > 1 the ``--seeds`` model of
:func:`concretelab.train.replicas.stack_replicas`) is timed eagerly and as one CUDA graph
(:class:`concretelab.train.graphed.GraphedStep`, what ``--cuda-graph`` runs), in wall time between two
``torch.cuda.synchronize`` calls over ``--steps`` steps after a warm-up. A configuration that does not fit in the
GPU's memory is reported as such. Run by benchmarks/gpu.sh; ``python benchmarks/gpu.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor

from concretelab.devices import describe_device
from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES
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


def steps_per_s(spec: str, m: int, replicas: int, graphed: bool, steps: int, device: torch.device) -> float:
    """Aggregate replica-steps/s of ``steps`` timed steps."""
    x = (torch.rand(replicas * BATCH, 784, device=device) < 0.3).float()
    model = _model(spec, replicas, x[:BATCH].mean(0).cpu(), device)
    optimizer = build_optimizer(list(model.parameters()), 1e-4, device)
    generator = torch.Generator(device=device)

    def loss_fn(images: Tensor, prior_t: Tensor | float, posterior_t: Tensor | float) -> Tensor:
        bound = OBJECTIVES["relaxed"](model, images, samples=m, prior_temperature=prior_t,
                                      posterior_temperature=posterior_t, generator=generator)
        return -bound.view(replicas, -1).mean(1)

    if graphed:
        graph = GraphedStep(loss_fn, optimizer, state=step_state(model), example=x, generator=generator)

        def step(i: int) -> None:
            graph(x, lr=1e-4, prior_t=PRIOR_T, posterior_t=POSTERIOR_T, seed=i)
    else:
        def step(i: int) -> None:
            generator.manual_seed(i)
            loss_fn(x, PRIOR_T, POSTERIOR_T).sum().backward()
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
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA device")
    device = torch.device("cuda")
    print(f"{describe_device(device)}; {args.steps} timed steps per configuration, wall time\n")
    print("| model | m | R | eager replica-steps/s | graphed replica-steps/s | graphed / eager |")
    print("|---|---|---|---|---|---|")
    for spec in args.models.split(","):
        for m in (int(v) for v in args.samples.split(",")):
            for replicas in (int(v) for v in args.replicas.split(",")):
                rates = []
                for graphed in (False, True):
                    try:
                        rates.append(steps_per_s(spec, m, replicas, graphed, max(10, args.steps // m), device))
                    except torch.OutOfMemoryError:
                        rates.append(None)
                    torch.cuda.empty_cache()
                eager, graphed_rate = (f"{r:,.0f}" if r else "out of memory" for r in rates)
                ratio = f"{rates[1] / rates[0]:.2f}" if all(rates) else "-"
                print(f"| {spec} | {m} | {replicas} | {eager} | {graphed_rate} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
