"""The relaxed KL's charge for a temperature mismatch, per binary unit (docs/low-temperature.md).

In logit space a BinConcrete sample at posterior temperature lq is z = (a + L)/lq, L logistic; the prior at lp
has density lp * sigmoid(t) * sigmoid(-t), t = lp z - b (Maddison et al. 2017, eq. 21). KL(q || p) per unit is
estimated by Monte Carlo over L and minimised over the prior's location b on a grid around a lp / lq; the
minimum does not depend on the encoder's logit a (b moves with it), so it is a charge no encoder can avoid.

    python scripts/kl_mismatch.py --posterior 0.05 0.1 0.2 --prior 0.5
"""

from __future__ import annotations

import argparse

import torch

from concretelab.functional import logit_binconcrete_log_density


def log_density(z: torch.Tensor, location: float, temperature: float) -> torch.Tensor:
    """eq. 21 (the package's own kernel) at a scalar location and temperature."""
    as_tensor = torch.tensor([location, temperature], dtype=z.dtype)
    return logit_binconcrete_log_density(z, as_tensor[0], as_tensor[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posterior", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.5, 2 / 3, 1.0, 2.0])
    parser.add_argument("--prior", type=float, default=0.5)
    parser.add_argument("--draws", type=int, default=400_000)
    args = parser.parse_args()
    u = torch.rand(args.draws, generator=torch.Generator().manual_seed(0), dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    noise = u.log() - (-u).log1p()
    for lq in args.posterior:
        for a in (0.0, 2.0):
            z = (a + noise) / lq
            centre = a * args.prior / lq  # matching locations; searched around it
            grid = torch.linspace(centre - 5, centre + 5, 201).tolist()
            kl = min(float((log_density(z, a, lq) - log_density(z, b, args.prior)).mean()) for b in grid)
            print(f"lambda_q {lq:g}, lambda_p {args.prior:g}, encoder logit {a:g}: min_b KL = {kl:.2f} nats per unit")


if __name__ == "__main__":
    main()
