"""Where the relaxed model and the discrete model part: the terms of both ELBOs at trained checkpoints.

A cell trained with the relaxed objective is judged on the discrete model. For a one-layer SBN, with
z ~ q_relaxed(z | x) at lambda_q (logit space, Maddison et al. 2017, eq. 21) and h = 1[z > 0], which is an exact
draw from the discrete posterior Q(h | x) = Bernoulli(sigmoid(a_q)) (z > 0 iff a_q + L > 0), this measures on a
fixed subset of validation images:

    -recon relaxed            -E log p(x | sigmoid(z))
    -recon discrete           -E log p(x | h)             (the same draws, rounded)
    KL, relaxed               E [log q_relaxed(z | x; lambda_q) - log p_relaxed(z; lambda_p)]
    KL, discrete              KL(Q(h | x) || P(h)), exact
    fractional                E min(sigmoid(z), 1 - sigmoid(z)) over units: how far the decoder's inputs sit
                              from the vertices
    -L_m relaxed              the training objective (its own m and temperatures)
    -L_k discrete             the bound the cell is judged by

Each -ELBO is -recon plus KL (all costs in nats per image, lower is better); their difference splits into what
the decoder gains from fractional inputs and what the two KL terms charge. Comparing checkpoints of one run shows
which term moved when the relaxed objective improved and the discrete bound got worse.

    python scripts/relaxation_gap.py ../runs/table1/200H-784V-m50-relaxed:best ../runs/table1/200H-784V-m50-relaxed:last
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from concretelab.data import fixed_subset, load_dataset
from concretelab.distributions import LogitBinConcrete
from concretelab.objectives import relaxed
from concretelab.objectives.bound import discrete_bound_per_image
from concretelab.objectives.relaxed import sample_relaxed_latents
from concretelab.objectives.terms import bernoulli_kl
from concretelab.reproduce.evaluation import load_trained_model
from concretelab.train.config import load_config

COLUMNS = ("-recon relaxed", "-recon discrete", "KL relaxed", "KL discrete", "-ELBO relaxed", "-ELBO discrete",
           "fractional", "-L_m relaxed", "-L_k discrete")


@torch.no_grad()
def terms(run: Path, checkpoint: str, images: torch.Tensor, *, draws: int, k: int, seed: int) -> dict[str, float]:
    """The columns for one checkpoint, averaged over images: nats per image, as costs (lower is better; -recon is
    -E log p(x | .)); 'fractional' per unit."""
    config = load_config(run / "config.toml")
    model, step = load_trained_model(run / "checkpoints" / f"{checkpoint}.safetensors")
    if len(model.latent_categories) != 1 or model.latent_categories[0] != 2:
        raise SystemExit(f"{run}: this decomposition is written for one binary stochastic layer")
    lam_p, lam_q = config.temperatures
    generator = torch.Generator().manual_seed(seed)
    sums = dict.fromkeys(COLUMNS, 0.0)
    for x in images.split(100):
        sample = sample_relaxed_latents(model, x, draws, lam_q, generator)
        z, s, a_q = sample.points[0], sample.values[0], sample.proposal_logits[0]  # s = sigmoid(z)
        h = (z > 0).to(x.dtype)
        p_logits = model.prior_logits(x, sample.values)[0]
        relaxed_kl = sample.log_q - relaxed_layer_log_prob(z, p_logits, lam_p)
        recon_relaxed = model.log_likelihood(x, [s])
        recon_discrete = model.log_likelihood(x, [h])
        sums["-recon relaxed"] -= float(recon_relaxed.mean(0).sum())
        sums["-recon discrete"] -= float(recon_discrete.mean(0).sum())
        sums["KL relaxed"] += float(relaxed_kl.mean(0).sum())
        sums["KL discrete"] += float(bernoulli_kl(a_q, p_logits.expand_as(a_q)).sum())
        sums["fractional"] += float(torch.minimum(s, 1 - s).mean((0, 2)).sum())
        objective = relaxed(model, x, samples=config.samples, prior_temperature=lam_p,
                            posterior_temperature=lam_q, generator=generator)
        sums["-L_m relaxed"] += float(-objective.sum())
    n = images.shape[0]
    out = {key: value / n for key, value in sums.items()}
    out["-ELBO relaxed"] = out["-recon relaxed"] + out["KL relaxed"]
    out["-ELBO discrete"] = out["-recon discrete"] + out["KL discrete"]
    out["-L_k discrete"] = float(-discrete_bound_per_image(model, images, k, generator=generator).mean())
    out["step"] = step
    out["m"] = config.samples
    return out


def relaxed_layer_log_prob(z: torch.Tensor, logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p_relaxed(z; lambda_p) summed over units (LogitBinConcrete, eq. 21)."""
    law = LogitBinConcrete(torch.tensor(temperature), logits=logits.expand_as(z), validate_args=False)
    return law.log_prob(z).sum(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="RUN_FOLDER:CHECKPOINT (best or last)")
    parser.add_argument("--data", default="../shared/data/binarized_mnist")
    parser.add_argument("--images", type=int, default=1000, help="fixed random subset of the validation split")
    parser.add_argument("--draws", type=int, default=20, help="relaxed draws per image for the ELBO terms")
    parser.add_argument("--k", type=int, default=1000, help="k of the discrete bound")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    valid = load_dataset(args.data).valid
    subset = fixed_subset(valid.shape[0], args.images, args.seed)
    images = (valid if subset is None else valid[subset]).float()
    print(f"{images.shape[0]} validation images (fixed subset, seed {args.seed}); {args.draws} relaxed draws each; "
          f"-L_k with k = {args.k}. Nats per image (fractional: per unit).\n")
    print("| run:checkpoint | step | m | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for spec in args.checkpoints:
        folder, _, checkpoint = spec.rpartition(":")
        row = terms(Path(folder), checkpoint or "best", images, draws=args.draws, k=args.k, seed=args.seed)
        cells = " | ".join(f"{row[c]:.3f}" if c == "fractional" else f"{row[c]:.2f}" for c in COLUMNS)
        print(f"| `{Path(folder).name}:{checkpoint or 'best'}` | {row['step']:,} | {row['m']} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
