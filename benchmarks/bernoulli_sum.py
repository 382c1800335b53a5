"""The summed Bernoulli kernel against the elementwise form summed afterwards, in the same run.

``functional.bernoulli_log_prob_sum(a, b)`` computes sum_d b_d a_d - sum_d softplus(a_d) as two sums; the obvious
alternative, and what the package did before, is ``bernoulli_log_prob(a, b).sum(-1)``, which allocates the
(samples, batch, D) difference. Measured, in CPU time of this process with one thread, interleaving the two
forms and reporting the median of the per-repeat ratios (elementwise / summed; above 1 means the summed kernel
is faster):

1. the kernel alone at L_k's likelihood shape (chunk x 100 images x 784 pixels, logits per sample, data per image);
2. forward and backward at a training step's shape (m x 64 x 784, m = 1, 5, 50);
3. ``discrete_bound`` (L_1000 on 100 test images) of an untrained 200H-784V and 200H~200H~784V, end to end, with
   the package's kernel swapped for the elementwise form;
4. with ``--compile``: the summed kernel against ``torch.compile`` of it (forward and backward fused by inductor)
   at the training shapes of 2 (above 1 means the compiled kernel is faster).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bernoulli_sum.py`` (``--repeats N``, ``--compile``).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from contextlib import contextmanager

import torch

from concretelab import functional
from concretelab.data import load_dataset
from concretelab.models import build_model, networks
from concretelab.objectives import discrete_bound
from timing import cpu_seconds


def elementwise_then_sum(logits: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return functional.bernoulli_log_prob(logits, value).sum(-1)


@contextmanager
def kernel(form: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    """Use ``form`` as the package's summed Bernoulli kernel (objectives.terms and models.networks) meanwhile."""
    saved = functional.bernoulli_log_prob_sum, networks.bernoulli_log_prob_sum
    functional.bernoulli_log_prob_sum = networks.bernoulli_log_prob_sum = form
    try:
        yield
    finally:
        functional.bernoulli_log_prob_sum, networks.bernoulli_log_prob_sum = saved


def compare(name: str, make_work: Callable[[], Callable[[], object]], repeats: int, inner: int, *,
            old_form: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = elementwise_then_sum,
            new_form: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
            labels: tuple[str, str] = ("elementwise", "summed")) -> None:
    """Interleave ``old_form`` and ``new_form`` (None: the package's summed kernel) as the kernel of the work."""
    ratios, old_times, new_times = [], [], []
    for _ in range(repeats):
        with kernel(old_form):
            old = cpu_seconds(make_work(), inner)
        if new_form is None:
            new = cpu_seconds(make_work(), inner)
        else:
            with kernel(new_form):
                new = cpu_seconds(make_work(), inner)
        ratios.append(old / new)
        old_times.append(old)
        new_times.append(new)
    print(f"{name:<50} {labels[0]} {1e3 * statistics.median(old_times):9.2f} ms   {labels[1]} "
          f"{1e3 * statistics.median(new_times):9.2f} ms   ratio {statistics.median(ratios):5.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats per case")
    parser.add_argument("--compile", action="store_true",
                        help="also 4.: the summed kernel against torch.compile of it (inductor), forward + backward")
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    data = load_dataset("embedded")
    x = data.test[:100].float()

    for chunk in (100, 500):
        logits = 6 * torch.randn(chunk, 100, 784, generator=generator)
        compare(f"1. likelihood kernel, {chunk} x 100 x 784",
                lambda logits=logits: (lambda: functional.bernoulli_log_prob_sum(logits, x)), args.repeats, 5)
    for m in (1, 5, 50):
        logits = (6 * torch.randn(m, 64, 784, generator=generator)).requires_grad_(True)
        batch = x[:64]

        def step(logits: torch.Tensor = logits, batch: torch.Tensor = batch) -> Callable[[], object]:
            return lambda: torch.autograd.grad(functional.bernoulli_log_prob_sum(logits, batch).sum(), logits)

        compare(f"2. forward + backward, {m} x 64 x 784", step, args.repeats, 20 if m < 50 else 5)
    for spec in ("200H-784V", "200H~200H~784V"):
        model = build_model(spec, train_mean=data.train_mean)

        def bound(model: torch.nn.Module = model) -> Callable[[], object]:
            return lambda: discrete_bound(model, x, 1000, generator=torch.Generator().manual_seed(1))

        compare(f"3. discrete_bound L_1000, 100 images, {spec}", bound, args.repeats, 1)
    if args.compile:
        summed = functional.bernoulli_log_prob_sum
        compiled = torch.compile(summed, dynamic=False)  # one graph per shape; compiling takes seconds each
        for m in (1, 5, 50):
            logits = (6 * torch.randn(m, 64, 784, generator=generator)).requires_grad_(True)
            batch = x[:64]

            def fused(logits: torch.Tensor = logits, batch: torch.Tensor = batch) -> Callable[[], object]:
                return lambda: torch.autograd.grad(functional.bernoulli_log_prob_sum(logits, batch).sum(), logits)

            compare(f"4. forward + backward, {m} x 64 x 784", fused, args.repeats, 20 if m < 50 else 5,
                    old_form=summed, new_form=compiled, labels=("summed", "compiled"))


if __name__ == "__main__":
    main()
