"""What it costs the relaxed objective to run on the public distribution classes instead of the kernels.

Issue 11.1: the objectives may build ``LogitBinConcrete``/``ExpConcrete`` objects (the library on its own public
API) if that costs under 5% of a training step. This times one full training step (the relaxed bound, backward,
Adam) of Table 1 models and the categorical VAE, CPU float32, batch 64, two ways:

  * ``kernels``:        the layer loop calls the functional kernels directly (sample_uniform_open,
                        exp_concrete_log_density_at_noise, logit_binconcrete_log_density, ...), as
                        concretelab.objectives did before issue 11;
  * ``distributions``:  ``concretelab.objectives.relaxed``, which builds ``LogitBinConcrete``/``ExpConcrete``
                        for q and for p in each layer, draws with ``sample_and_log_prob`` and scores the prior
                        with ``log_prob``.

Both draw the same noise from the same generator and give the same bound (checked before timing). Rounds are
interleaved; the table shows median milliseconds per step and distributions / kernels. Times are the process's
CPU time (``time.process_time``), which other processes on a shared machine disturb far less than wall time;
with one thread it is the step's cost.

    python benchmarks/objective_api.py [--repeats 15] [--steps 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from concretelab.functional import (
    exp_concrete_log_density,
    exp_concrete_log_density_at_noise,
    logit_binconcrete_log_density,
    sample_gumbel,
    sample_uniform_open,
)
from concretelab.models import build_model
from concretelab.objectives import relaxed
from concretelab.objectives.terms import log_mean_exp

CASES = (("200H-784V", 1), ("200H-784V", 5), ("200H~200H~784V", 1), ("categorical-vae", 1))
PRIOR_T, POSTERIOR_T = 0.5, 2.0 / 3.0


def relaxed_kernels(model, x: Tensor, samples: int, generator: torch.Generator) -> Tensor:
    """The relaxed bound with the functional kernels called directly."""
    lam_q, lam_p = x.new_tensor(POSTERIOR_T), x.new_tensor(PRIOR_T)
    batch = x.shape[0]
    points, values, q_logits = [], [], []
    log_q = x.new_zeros(samples, batch)
    for i, categories in enumerate(model.latent_categories):
        logits = model.proposal_logits(i, x, values)
        if categories == 2:
            shape = torch.broadcast_shapes((samples, batch, 1), logits.shape)
            u = sample_uniform_open(shape, generator=generator, dtype=logits.dtype)
            log_u, log_1mu = u.log(), torch.log1p(-u)
            z = (logits + (log_u - log_1mu)) / lam_q
            log_q = log_q + (log_u + log_1mu).sum(-1) + shape[-1] * lam_q.log()
            value = torch.sigmoid(z)
        else:
            shape = torch.broadcast_shapes((samples, batch, 1, 1), logits.shape)
            noise = sample_gumbel(shape, generator=generator, dtype=logits.dtype)
            z = torch.log_softmax((logits + noise) / lam_q, dim=-1)
            log_q = log_q + exp_concrete_log_density_at_noise(noise, logits, lam_q).sum(-1)
            value = z.exp()
        points.append(z)
        values.append(value)
        q_logits.append(logits)
    prior = q_logits if getattr(model, "proposal_is_prior", False) else model.prior_logits(x, values)
    log_w = model.log_likelihood(x, values) - log_q
    for categories, point, logits in zip(model.latent_categories, points, prior, strict=True):
        density = logit_binconcrete_log_density if categories == 2 else exp_concrete_log_density
        log_w = log_w + density(point, logits, lam_p).sum(-1)
    return log_w[0] if samples == 1 else log_mean_exp(log_w, dim=0)


def relaxed_distributions(model, x: Tensor, samples: int, generator: torch.Generator) -> Tensor:
    """The package's relaxed bound, which builds a distribution object per layer for q and for p."""
    return relaxed(model, x, samples=samples, prior_temperature=PRIOR_T, posterior_temperature=POSTERIOR_T,
                   generator=generator)


def training_step(bound: Callable, model, optimizer, x: Tensor, samples: int, generator) -> Callable[[], None]:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = -bound(model, x, samples, generator).mean()
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--steps", type=int, default=50, help="training steps per timed block (default 50)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the trainer's cells)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.rand(64, 784) < 0.3).float()
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 64, {args.steps} steps a block, "
          f"{args.repeats} rounds; median CPU ms per training step")
    print(f"{'model':<18} {'m':>3} {'kernels':>9} {'distributions':>14} {'ratio':>7}")
    for name, samples in CASES:
        model = build_model(name, train_mean=x.mean(0))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        with torch.no_grad():  # the two paths compute the same bound from the same noise
            a = relaxed_kernels(model, x, samples, torch.Generator().manual_seed(1))
            b = relaxed_distributions(model, x, samples, torch.Generator().manual_seed(1))
        if not torch.allclose(a, b, rtol=1e-5, atol=1e-3):
            raise SystemExit(f"{name}: the two paths disagree by {float((a - b).abs().max()):.3g} nats")
        steps = {
            "kernels": training_step(relaxed_kernels, model, optimizer, x, samples, torch.Generator().manual_seed(2)),
            "distributions": training_step(
                relaxed_distributions, model, optimizer, x, samples, torch.Generator().manual_seed(2)
            ),
        }
        times: dict[str, list[float]] = {key: [] for key in steps}
        for _ in range(3):  # warm-up
            for step in steps.values():
                step()
        for _ in range(args.repeats):
            for key, step in steps.items():
                start = time.process_time()
                for _ in range(args.steps):
                    step()
                times[key].append((time.process_time() - start) / args.steps * 1e3)
        kernels, dists = statistics.median(times["kernels"]), statistics.median(times["distributions"])
        print(f"{name:<18} {samples:>3} {kernels:>9.3f} {dists:>14.3f} {dists / kernels:>7.3f}")


if __name__ == "__main__":
    main()
