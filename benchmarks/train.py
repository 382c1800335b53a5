"""Trainer speed against a minimal plain-PyTorch loop, and L_k evaluation against the matmul floor.

1. Training steps/s at batch 64 (relaxed objective, m = 1, binary units, temperatures 1/2 and 2/3) for
   200H-784V and 200H~200H~784V: ``concretelab.train.train`` (measured from its own metrics rows, so
   start-up and the final checkpoint are excluded) against the loop a practitioner would write by hand in
   this file: the same architecture, the same relaxed bound in logit space, ``torch.optim.Adam`` with its
   defaults, batches drawn by indexing a float tensor. Runs are interleaved (ours, plain, ours, plain, ...)
   and the median of the per-pair ratios is reported (target: >= 1.0).
2. Evaluation of L_k (``concretelab.objectives.discrete_bound``) on trained-size models: images/s, and the
   ratio of its time to the matmul floor, i.e. the model's multiply-add FLOPs for L_k divided by the rate of
   one large ``torch.mm`` measured in the same run (target: within 2x).

3. The training step of every Table 1 model at m = 1, 5 and 50 (the relaxed objective, backward, the trainer's
   fused Adam; batch 64)
   against its matmul floor: 3 x 64 x m x the multiply-add FLOPs of one pass through every nn.Linear (the
   backward pass costs about twice the forward one) at the rate of one large ``torch.mm``, both measured as
   this process's CPU time in the same run, with the step's matmuls replayed alone and the optimiser step alone
   (the rest is elementwise work, autograd and Python); and the same step with the objective under ``torch.compile``
   (``--compile``; compiling takes minutes on CPU). With ``--compile`` it also times the plain loop's step at
   m = 1 with its loss compiled whole (no graph break), the most a compiled step could gain (``--only compiled``
   for that alone).

Run: ``.venv/bin/python benchmarks/train.py`` (``--quick`` for a short run, ``--only models`` for part 3 alone).
Timings depend on the machine and its load; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from concretelab.data import load_dataset
from concretelab.models import build_model
from concretelab.objectives import discrete_bound, relaxed
from concretelab.train import TrainConfig, train
from concretelab.train.loop import build_optimizer
from concretelab.train.metrics import read_metrics

PRIOR_T, POSTERIOR_T = 0.5, 2 / 3


# ----- the plain PyTorch baseline -------------------------------------------------------------------------


def _map(n_in: int, n_out: int, hidden: int | None) -> nn.Module:
    if hidden is None:
        return nn.Linear(n_in, n_out)
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, n_out))


class PlainSBN(nn.Module):
    """Two-layer or one-layer SBN with 200 units per layer, written directly (no concretelab code)."""

    def __init__(self, layers: int, nonlinear: bool, train_mean: Tensor) -> None:
        super().__init__()
        hidden = 200 if nonlinear else None
        self.layers = layers
        self.enc = nn.ModuleList([_map(784, 200, hidden)] + [_map(200, 200, hidden) for _ in range(layers - 1)])
        self.dec = nn.ModuleList([_map(200, 784, hidden)] + [_map(200, 200, hidden) for _ in range(layers - 1)])
        self.top = nn.Parameter(torch.zeros(200))
        p = (train_mean + 1e-4) / (1 + 2e-4)
        with torch.no_grad():
            last = self.dec[0] if isinstance(self.dec[0], nn.Linear) else self.dec[0][-1]
            last.bias.copy_(p.log() - (-p).log1p())

    def bound(self, x: Tensor, uniforms: list[Tensor] | None = None) -> Tensor:
        """Relaxed ELBO, binary Concrete in logit space (Maddison et al. 2017, eq. 21 and App. C); ``uniforms``
        (one (batch, 200) tensor in (0, 1) per layer) gives the noise, so that the bound can be compiled whole."""
        lam_q, lam_p = POSTERIOR_T, PRIOR_T
        inp, zs, log_q = x, [], 0.0
        for i, enc in enumerate(self.enc):
            a = enc(inp)
            u = torch.rand_like(a) if uniforms is None else uniforms[i]
            noise = u.log() - (-u).log1p()
            z = (a + noise) / lam_q
            log_q = log_q + (math.log(lam_q) + a - lam_q * z - 2 * F.softplus(a - lam_q * z)).sum(-1)
            zs.append(z)
            inp = torch.sigmoid(z)
        log_p = 0.0
        for i, z in enumerate(zs):
            a = self.top if i == self.layers - 1 else self.dec[i + 1](torch.sigmoid(zs[i + 1]))
            log_p = log_p + (math.log(lam_p) + a - lam_p * z - 2 * F.softplus(a - lam_p * z)).sum(-1)
        logits = self.dec[0](torch.sigmoid(zs[0]))
        log_lik = (x * logits - F.softplus(logits)).sum(-1)
        return log_lik + log_p - log_q


def plain_steps_per_s(layers: int, nonlinear: bool, steps: int, warmup: int, data: Tensor, mean: Tensor) -> float:
    torch.manual_seed(0)
    model = PlainSBN(layers, nonlinear, mean)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        x = data[torch.randint(0, data.shape[0], (64,))]
        loss = -model.bound(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def ours_steps_per_s(spec: str, steps: int, warmup: int, folder: Path) -> float:
    config = TrainConfig(model=spec, steps=warmup + steps, batch_size=64, lr=1e-4, device="cpu", eval_every=0,
                         threads=torch.get_num_threads(),
                         checkpoint_every=0, log_every=warmup, progress=False, out=str(folder))
    train(config)
    rows = [r for r in read_metrics(folder / "metrics.jsonl") if "loss" in r]
    first, last = rows[0], rows[-1]  # the first row closes the warm-up window
    return (last["step"] - first["step"]) / (last["time"] - first["time"])


# ----- evaluation against the matmul floor ----------------------------------------------------------------


def matmul_rate(n: int = 2048, *, clock: Callable[[], float] = time.perf_counter, per_block: int = 1) -> float:
    """FLOP/s of a float32 (n x n) @ (n x n) product on this machine, best of 5 blocks of ``per_block`` products
    timed with ``clock`` (wall time by default; ``time.process_time`` for this process's CPU time)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(5):
        t0 = clock()
        for _ in range(per_block):
            torch.mm(a, b)
        best = min(best, (clock() - t0) / per_block)
    return 2 * n**3 / best


def lk_flops_per_sample(model: nn.Module) -> int:
    """Multiply-add FLOPs of one proposal sample and its log-joint: 2 x (weights of every nn.Linear)."""
    return sum(2 * m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def eval_benchmark(spec: str, k: int, images: int, rate: float) -> dict[str, float]:
    data = load_dataset("embedded")
    torch.manual_seed(0)
    model = build_model(spec, train_mean=data.train_mean).eval()
    x = data.test[torch.linspace(0, data.test.shape[0] - 1, images).long()].float()
    g = torch.Generator().manual_seed(0)
    discrete_bound(model, x[:10], min(k, 100), generator=g)  # warm-up
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, images, 100):
            discrete_bound(model, x[start : start + 100], k, generator=g)
    seconds = time.perf_counter() - t0
    floor = images * k * lk_flops_per_sample(model) / rate
    return {"images_per_s": images / seconds, "seconds": seconds, "floor_s": floor, "ratio": seconds / floor}


# ----- the training step of every Table 1 model against the matmul floor ---------------------------------

TABLE1_MODELS = ("200H-784V", "200H-200H-784V", "200H~784V", "200H~200H~784V", "392V-240H-240H-392V")


def replayed_matmul_ms(calls: list[tuple[str, list[list[int]]]], repeats: int = 20) -> float:
    """CPU ms of the given matmul calls (``aten::mm`` / ``aten::addmm`` with their input shapes) replayed on
    random contiguous tensors of the same shapes, one thread, median of ``repeats``: what the step's matmuls
    cost at their own (small) shapes, without the profiler's overhead."""
    operands = []
    for name, shapes in calls:
        if name == "aten::mm":
            operands.append((torch.mm, [torch.randn(*shapes[0]), torch.randn(*shapes[1])]))
        else:  # aten::addmm(bias, a, b)
            operands.append((torch.addmm, [torch.randn(*shapes[0]), torch.randn(*shapes[1]), torch.randn(*shapes[2])]))
    for function, args in operands:
        function(*args)
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        for function, args in operands:
            function(*args)
        times.append(time.process_time() - t0)
    return statistics.median(times) * 1e3


def step_ms(spec: str, m: int, blocks: int, compile_objective: bool) -> tuple[float, float, float, float]:
    """(median CPU ms of one training step, FLOPs of the step's matmuls, CPU ms of those matmuls replayed alone
    at their shapes, :func:`replayed_matmul_ms`, and CPU ms of the optimiser step alone) for model ``spec`` at m
    samples; step minus matmuls minus Adam is the elementwise work, autograd and Python, what fusion could act
    on."""
    torch.manual_seed(0)
    x = (torch.rand(64, 784) < 0.3).float()
    model = build_model(spec, train_mean=x.mean(0))
    optimizer = build_optimizer(list(model.parameters()), 1e-4, torch.device("cpu"))  # the trainer's Adam
    objective = torch.compile(relaxed) if compile_objective else relaxed
    generator = torch.Generator().manual_seed(1)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        bound = objective(model, x, samples=m, prior_temperature=PRIOR_T, posterior_temperature=POSTERIOR_T,
                          generator=generator)
        (-bound.mean()).backward()
        optimizer.step()

    per_block = max(2, 100 // m)
    step_time = _median_block_ms(step, blocks, per_block, warmup=3)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as profiler:
        step()
    calls = [(event.name, event.input_shapes) for event in profiler.events()
             if event.name in ("aten::mm", "aten::addmm")]
    adam = []  # the optimiser alone, on the gradients of the last step (its state keeps updating; cost does not)
    for _ in range(blocks):
        t0 = time.process_time()
        for _ in range(per_block):
            optimizer.step()
        adam.append((time.process_time() - t0) / per_block * 1e3)
    return (step_time, 3 * 64 * m * lk_flops_per_sample(model), replayed_matmul_ms(calls),
            statistics.median(adam))


def plain_step_ms(layers: int, nonlinear: bool, blocks: int, compiled: bool) -> float:
    """Median CPU ms of one step of the plain loop's bound at m = 1 (fused Adam, batch 64), its noise drawn
    outside the bound, eager or with the loss under ``torch.compile(fullgraph=True)``: the bound and its
    backward compiled whole, with no graph break, the best case for compiling a training step."""
    torch.manual_seed(0)
    x = (torch.rand(64, 784) < 0.3).float()
    model = PlainSBN(layers, nonlinear, x.mean(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)

    def loss(x: Tensor, uniforms: list[Tensor]) -> Tensor:
        return -model.bound(x, uniforms).mean()

    objective = torch.compile(loss, fullgraph=True) if compiled else loss
    generator = torch.Generator().manual_seed(1)

    def step() -> None:
        uniforms = [torch.rand(64, 200, generator=generator).clamp_(1e-7, 1 - 1e-7) for _ in range(layers)]
        optimizer.zero_grad(set_to_none=True)
        objective(x, uniforms).backward()
        optimizer.step()

    return _median_block_ms(step, blocks, per_block=50, warmup=5)


def _median_block_ms(step: Callable[[], None], blocks: int, per_block: int, warmup: int) -> float:
    """Median CPU ms of one call of ``step`` over ``blocks`` blocks of ``per_block`` calls, after ``warmup``
    calls (which also compile, where there is something to compile)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(blocks):
        t0 = time.process_time()
        for _ in range(per_block):
            step()
        times.append((time.process_time() - t0) / per_block * 1e3)
    return statistics.median(times)


def compiled_plain_benchmark(blocks: int) -> None:
    print("\nThe plain loop's step at m = 1 (its bound written out, noise drawn outside), eager and compiled whole "
          "(torch.compile(fullgraph=True) on the loss: the bound and its backward, no graph break), median CPU ms\n")
    print("| model | eager ms/step | compiled ms/step | compiled / eager |")
    print("|---|---|---|---|")
    for spec, layers, nonlinear in (("200H-784V", 1, False), ("200H-200H-784V", 2, False), ("200H~784V", 1, True),
                                    ("200H~200H~784V", 2, True)):
        eager = plain_step_ms(layers, nonlinear, blocks, False)
        compiled = plain_step_ms(layers, nonlinear, blocks, True)
        print(f"| {spec} | {eager:.2f} | {compiled:.2f} | {compiled / eager:.2f} |", flush=True)


def models_benchmark(blocks: int, compile_objective: bool) -> None:
    rate = matmul_rate(1024, clock=time.process_time, per_block=4)  # CPU time, as the steps
    print(f"\nTraining step per Table 1 model (relaxed, batch 64, fused Adam), median CPU ms of {blocks} blocks; "
          f"matmul rate {rate / 1e9:.1f} GFLOP/s (CPU time). 'its matmuls' are the step's own mm/addmm calls replayed "
          "alone at their shapes: their ratio to the floor is what the small shapes cost, the rest is everything "
          "else\n")
    head = ("| model | m | ms/step | matmul floor (ms) | ratio to floor | its matmuls (ms) | Adam (ms) | "
            "rest (ms) |")
    print(head + (" compiled ms/step | compiled / eager |" if compile_objective else ""))
    print("|---" * (10 if compile_objective else 8) + "|")
    for spec in TABLE1_MODELS:
        for m in (1, 5, 50):
            eager, flops, kernels, adam = step_ms(spec, m, blocks, False)
            floor = flops / rate * 1e3
            row = (f"| {spec} | {m} | {eager:.2f} | {floor:.2f} | {eager / floor:.1f} | {kernels:.2f} | {adam:.2f} | "
                   f"{eager - kernels - adam:.2f} |")
            if compile_objective:
                try:
                    compiled, _, _, _ = step_ms(spec, m, blocks, True)
                    row += f" {compiled:.2f} | {compiled / eager:.2f} |"
                except Exception as error:
                    row += f" failed: {type(error).__name__} | |"
            print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every measurement (default 1)")
    parser.add_argument("--only", choices=("trainer", "models", "eval", "compiled"),
                        help="run one part (default: all three; 'compiled': only the plain step compiled whole)")
    parser.add_argument("--compile", action="store_true", help="part 3: also time the objective under torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    if args.only in (None, "trainer"):
        trainer_benchmark(args)
    if args.only in (None, "eval"):
        evaluation_benchmark(args.quick)
    if args.only in (None, "models"):
        models_benchmark(3 if args.quick else 5, args.compile)
    if (args.only in (None, "models") and args.compile) or args.only == "compiled":
        compiled_plain_benchmark(3 if args.quick else 5)


def trainer_benchmark(args: argparse.Namespace) -> None:
    steps, warmup, repeats = (300, 50, 3) if args.quick else (1000, 100, 5)
    repeats = args.repeats or repeats
    data = load_dataset("embedded")
    train_x, mean = data.train.float(), data.train_mean
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch 64, m = 1, {steps} timed steps, "
          f"{repeats} interleaved repeats\n")
    print("| model | ours steps/s (median) | plain steps/s (median) | median ratio ours/plain | ratios |")
    print("|---|---|---|---|---|")
    for spec, layers, nonlinear in (("200H-784V", 1, False), ("200H~200H~784V", 2, True)):
        ours, plain, ratios = [], [], []
        for r in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                o = ours_steps_per_s(spec, steps, warmup, Path(tmp) / f"run{r}")
            p = plain_steps_per_s(layers, nonlinear, steps, warmup, train_x, mean)
            ours.append(o)
            plain.append(p)
            ratios.append(o / p)
        print(f"| {spec} | {statistics.median(ours):.0f} | {statistics.median(plain):.0f} | "
              f"{statistics.median(ratios):.2f} | {', '.join(f'{x:.2f}' for x in ratios)} |")


def evaluation_benchmark(quick: bool) -> None:
    rate = matmul_rate()
    k, images = (1000, 100) if quick else (5000, 200)
    print(f"\nL_k evaluation (discrete_bound), k = {k}, {images} test images; matmul rate {rate / 1e9:.1f} GFLOP/s\n")
    print("| model | images/s | seconds | matmul floor (s) | ratio to floor |")
    print("|---|---|---|---|---|")
    for spec in ("200H-784V", "200H~784V", "200H~200H~784V"):
        row = eval_benchmark(spec, k, images, rate)
        print(f"| {spec} | {row['images_per_s']:.1f} | {row['seconds']:.2f} | {row['floor_s']:.2f} | "
              f"{row['ratio']:.2f} |")


if __name__ == "__main__":
    main()
