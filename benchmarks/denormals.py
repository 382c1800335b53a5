"""Training steps and L_k with subnormal floats flushed to zero, against the same with them kept, in the same run.

Late in training, importance weights over m samples, the gradients they scale and the probabilities of
saturated units fall below float32's smallest normal number (1.2e-38), and x86 CPUs compute with such operands
in a slow microcode path. The trainer and the evaluations therefore run under
``concretelab.train.denormals.flush_denormals`` (``concretelab train --no-flush-denormal`` turns it off). This
times, in CPU time of this process with one thread, interleaving the two settings and reporting the median of
the per-repeat ratios (kept / flushed; above 1 means flushing is faster):

1. a training step (objective, backward, the trainer's fused Adam; batch 64) of the relaxed objective and of
   VIMCO at m = 1, 5, 50;
2. L_5000 of 20 test images (``discrete_bound``), forward only.

A fresh model has few subnormals. ``--run RUN`` times the last checkpoint of a trained run folder (a Table 1
cell's, say) on real data; without it, 200H~784V with its initial weights multiplied by ``--scale`` values
(default 1, 3 and 6; a larger scale saturates more units, as training does) on the embedded data.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/denormals.py [--run ../runs/table1/CELL] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
from torch import nn

from concretelab.data import load_dataset
from concretelab.estimators.layered import LayeredVIMCO
from concretelab.models import build_model
from concretelab.objectives import discrete_bound, relaxed
from concretelab.train.denormals import flush_denormals
from concretelab.train.load import load_run
from concretelab.train.loop import build_optimizer
from timing import cpu_seconds

PRIOR_T, POSTERIOR_T = 0.5, 2 / 3  # the paper's temperatures for binary units


def kept_and_flushed(block: Callable[[], None], calls: int, repeats: int) -> tuple[float, float, float]:
    """(median ms with subnormals kept, median ms flushed, median of the per-repeat ratios kept / flushed)."""
    kept, flushed = [], []
    for _ in range(repeats):
        kept.append(1e3 * cpu_seconds(block, calls))
        with flush_denormals():
            flushed.append(1e3 * cpu_seconds(block, calls))
    ratios = [a / b for a, b in zip(kept, flushed, strict=True)]
    return statistics.median(kept), statistics.median(flushed), statistics.median(ratios)


def training_step(model: nn.Module, x: torch.Tensor, objective: str, m: int) -> Callable[[], None]:
    """One optimiser step of ``objective`` (relaxed or vimco) at m samples, as the trainer takes it. The step
    size is tiny, so that repeating it does not move the model away from the state being timed."""
    optimizer = build_optimizer(list(model.parameters()), 1e-12, torch.device("cpu"))
    generator = torch.Generator().manual_seed(1)
    vimco = LayeredVIMCO()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        if objective == "vimco":
            bound = vimco(model, x, samples=m, generator=generator)
        else:
            bound = relaxed(model, x, samples=m, prior_temperature=PRIOR_T, posterior_temperature=POSTERIOR_T,
                            generator=generator)
        (-bound.mean()).backward()
        optimizer.step()

    return step


def report(label: str, model: nn.Module, train_x: torch.Tensor, test_x: torch.Tensor, repeats: int) -> None:
    for objective in ("relaxed", "vimco"):
        for m in (1, 5, 50):
            if objective == "vimco" and m == 1:
                continue  # VIMCO needs m >= 2
            step = training_step(model, train_x, objective, m)
            kept, flushed, ratio = kept_and_flushed(step, max(2, 100 // m), repeats)
            print(f"| {label} | {objective} step, m = {m} | {kept:.2f} | {flushed:.2f} | {ratio:.2f} |", flush=True)

    def bound() -> None:
        with torch.no_grad():
            discrete_bound(model, test_x, 5000, generator=torch.Generator().manual_seed(0))

    kept, flushed, ratio = kept_and_flushed(bound, 1, repeats)
    print(f"| {label} | L_5000, 20 images | {kept:.1f} | {flushed:.1f} | {ratio:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run folder: time its last checkpoint on its own data")
    parser.add_argument("--scale", type=float, nargs="+", default=[1.0, 3.0, 6.0],
                        help="without --run: multiply a fresh 200H~784V's weights by each (default 1 3 6)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per setting (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| model | what | subnormals kept (ms) | flushed (ms) | kept / flushed |")
    print("|---|---|---|---|---|")
    if args.run:
        model, config = load_run(args.run, checkpoint="last")
        model.train()
        data = load_dataset(config.data)
        report(f"`{config.model}`, last checkpoint", model, data.train[:64].float(), data.test[:20].float(),
               args.repeats)
        return
    data = load_dataset("embedded")
    for scale in args.scale:
        torch.manual_seed(0)
        model = build_model("200H~784V", train_mean=data.train.float().mean(0))
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(scale)
        report(f"200H~784V, initial weights × {scale:g}", model, data.train[:64].float(), data.test[:20].float(),
               args.repeats)


if __name__ == "__main__":
    main()
