"""Your own gradient estimator, checked the way the lab checks its own: against the exact gradient, then at equal cost.

A new estimator for binary variables is a subclass of ``concretelab.estimators.MultiSampleEstimator`` (a draw
couples K samples) or ``SingleSampleEstimator`` with one method. The one below is REINFORCE with the mean of f over
its K samples as the baseline, written twice:

- with the slip that is easy to make: the mean includes the sample it baselines. Draw by draw this is (K - 1)/K
  times the leave-one-out estimate below, so its expectation is (K - 1)/K times the gradient: every step is too
  short, and its variance is *lower*, by (K - 1)^2/K^2, which is why a variance table alone would prefer it;
- right: each sample's baseline is the mean of the *other* K - 1 values (leave one out, Kool et al. 2019), which is
  unbiased, and is the package's ``reinforce_loo``.

The script measures both on the lab's sigmoid-belief-net problem (``concretelab.lab.sbn_problem``: 12 binary
latents, f = log p(x, b) of a small fitted model, whose 4,096 states ``exact_gradient`` enumerates):

1. **Bias.** ``gradient_metrics`` of many independent draws against the exact gradient gives Hotelling's T^2 test of
   "mean estimate = exact gradient" (its p-value), and the share of the exact gradient an estimate carries on
   average, <g, g*> / |g*|^2, with its 95% interval (1 for an unbiased estimator, (K - 1)/K for the slip): the slip
   is rejected, the leave-one-out version is not, and it draws what ``reinforce_loo`` draws, bit for bit.
2. **Cost.** Its variance beside DisARM's and ARMS's at the same number K of f-evaluations (DisARM spends two per
   sample: K/2 antithetic pairs).

    python examples/own_estimator.py --smoke      # seconds, embedded data
    python examples/own_estimator.py              # 20,000 draws per estimator, about a minute
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

from concretelab.estimators import MultiSampleEstimator, exact_gradient, get_estimator
from concretelab.functional import sample_bernoulli
from concretelab.lab import gradient_metrics, sbn_problem


class MeanBaselineReinforce(MultiSampleEstimator):
    """REINFORCE over K samples with the samples' mean of f as each one's baseline:

        g = (1/K) sum_k (f(b_k) - c_k) (b_k - sigmoid(theta)),
        c_k = mean of f over the K samples (``leave_one_out=False``: biased by the factor (K - 1)/K)
            or over the other K - 1 (``leave_one_out=True``: unbiased, Kool et al. 2019).
    """

    name = "mean_baseline_reinforce"
    families = ("bernoulli",)
    evaluations_per_sample = 1

    def __init__(self, family: str = "bernoulli", *, leave_one_out: bool = True) -> None:
        super().__init__(family)
        self.leave_one_out = leave_one_out

    def per_set(self, f, logits: Tensor, num_samples: int, num_sets: int, generator: torch.Generator | None
                ) -> Tensor:
        k = num_samples
        b = sample_bernoulli(logits, (num_sets * k, *logits.shape), generator=generator)  # exact 0/1 draws
        with torch.no_grad():
            values = f(b).reshape(num_sets, k)  # f maps (M, *shape) to (M,)
        b = b.reshape(num_sets, k, *logits.shape)
        if self.leave_one_out:
            baseline = (values.sum(dim=1, keepdim=True) - values) / (k - 1)
        else:
            baseline = values.mean(dim=1, keepdim=True)
        signal = (values - baseline).reshape(num_sets, k, *([1] * logits.dim()))
        return (signal * (b - torch.sigmoid(logits))).mean(dim=1)  # (num_sets, *shape)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", type=int, default=4, help="K: f-evaluations per estimate (even, >= 2)")
    parser.add_argument("--draws", type=int, default=20_000, help="independent estimates per estimator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="2,000 draws and a problem fitted for 20 steps")
    args = parser.parse_args(argv)
    k = args.evaluations
    if k < 2 or k % 2:
        parser.error(f"--evaluations must be an even number >= 2 (DisARM spends two per sample), got {k}")
    draws = 2_000 if args.smoke else args.draws

    problem = sbn_problem(12, steps=20 if args.smoke else 150, seed=args.seed)  # embedded data: nothing to fetch
    exact = exact_gradient(problem.f, problem.logits)
    print(f"problem: {problem.description}")
    print(f"exact gradient: norm {float(exact.norm()):.4g}; {draws:,} draws per estimator at K = {k} "
          "f-evaluations each\n")

    candidates = [
        ("mean baseline (includes itself)", MeanBaselineReinforce(leave_one_out=False), k),
        ("mean baseline, leave one out", MeanBaselineReinforce(leave_one_out=True), k),
        ("reinforce_loo (the package's)", get_estimator("reinforce_loo"), k),
        ("disarm (K/2 pairs)", get_estimator("disarm"), k // 2),
        ("arms", get_estimator("arms"), k),
    ]
    rows = []
    estimates = {}
    for label, estimator, samples in candidates:
        gen = torch.Generator().manual_seed(args.seed + 1)  # the same noise stream for every estimator
        g = estimator.per_draw(problem.f, problem.logits, samples, draws, generator=gen)
        estimates[label] = g
        m = gradient_metrics(g, exact, generator=torch.Generator().manual_seed(args.seed), bootstrap=200)
        # how much of the exact gradient one estimate carries on average: <g_n, g*> / |g*|^2, 1 when unbiased
        share = (g.double() @ exact.double()) / exact.double().square().sum()
        half = 1.96 * float(share.std()) / draws**0.5
        rows.append(f"| {label} | {m.bias_pvalue:.2g} | {float(share.mean()):.3f} ± {half:.3f} "
                    f"| {m['variance'].value:.4g} |")
    print("| estimator | bias test p-value | share of the exact gradient, 95% interval | variance (tr Cov) |")
    print("|---|---|---|---|")
    print("\n".join(rows))

    same = torch.equal(estimates["mean baseline, leave one out"], estimates["reinforce_loo (the package's)"])
    closest = float((estimates["mean baseline, leave one out"] - estimates["reinforce_loo (the package's)"]).abs()
                    .max())
    print(f"\nleave-one-out version against reinforce_loo on the same noise: "
          f"{'identical draws' if same else f'largest difference {closest:.3g}'}")
    print(f"the slip's expected share: (K - 1)/K = {(k - 1) / k:.3f}; an unbiased estimator's: 1")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
