"""A categorical VAE in plain PyTorch with ``concretelab.distributions``: Jang et al.'s 20 x 10 latent code.

Encoder 784-512-256-200 (ReLU) gives the logits of 20 categorical variables with 10 categories; the decoder
200-256-512-784 gives Bernoulli pixel logits; the prior is uniform (Jang, Gu & Poole, ICLR 2017, Sec. 4.2).
Three ways to train it, each a few lines of ordinary PyTorch:

* ``relaxed``: a Concrete sample (``ExpConcrete``, in log space) at temperature 2/3, the KL term as the
  relaxed log-ratio log q(y) - log p(y) with a Concrete prior of temperature 1/2: the relaxed bound of
  Maddison et al. (2017, App. C);
* ``straight-through``: ``StraightThroughConcrete``: one-hot forward, the Concrete gradient backward; the
  analytic categorical KL;
* ``annealed``: a Concrete sample with temperature max(0.5, exp(-1e-5 t)) renewed every 1,000 steps and the
  analytic KL, Jang et al.'s schedule.

All three are judged the same way, on the discrete model: the negative ELBO with exact categorical samples
and the analytic KL, on test images, beside Jang et al.'s figures (Table 1: 101.5 Gumbel-Softmax, 107.8
straight-through Gumbel, categorical latents, negative ELBO).

    python examples/categorical_vae.py --smoke
    python examples/categorical_vae.py --data ../shared/data/binarized_mnist --steps 100000
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import torch
from torch import nn
from tqdm import tqdm

from concretelab.data import load_dataset
from concretelab.distributions import ExpConcrete, StraightThroughConcrete
from concretelab.functional import sample_categorical

VARIABLES, CATEGORIES = 20, 10
JANG_NEG_ELBO = {"relaxed": 101.5, "annealed": 101.5, "straight-through": 107.8}  # Gumbel-Softmax / ST rows


def mlp(*sizes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class CategoricalVAE(nn.Module):
    def __init__(self, pixels: int) -> None:
        super().__init__()
        self.encoder = mlp(pixels, 512, 256, VARIABLES * CATEGORIES)
        self.decoder = mlp(VARIABLES * CATEGORIES, 256, 512, pixels)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).unflatten(-1, (VARIABLES, CATEGORIES))  # (batch, 20, 10)

    def log_likelihood(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        a = self.decoder(code.flatten(-2))
        return (x * a - nn.functional.softplus(a)).sum(-1)


def analytic_kl(logits: torch.Tensor) -> torch.Tensor:
    """KL(q || uniform) summed over the 20 variables, (batch,)."""
    log_q = torch.log_softmax(logits, -1)
    return (log_q.exp() * (log_q + math.log(CATEGORIES))).sum((-2, -1))


def training_bound(model: CategoricalVAE, x: torch.Tensor, method: str, step: int) -> torch.Tensor:
    logits = model.logits(x)
    if method == "relaxed":
        q = ExpConcrete(2 / 3, logits=logits)
        y, log_q = q.sample_and_log_prob()  # y = log of a point of the simplex, (batch, 20, 10)
        log_p = ExpConcrete(0.5, logits=torch.zeros_like(logits)).log_prob(y)
        return model.log_likelihood(x, y.exp()) - (log_q - log_p).sum(-1)
    if method == "straight-through":
        code = StraightThroughConcrete(1.0, logits=logits).rsample()
        return model.log_likelihood(x, code) - analytic_kl(logits)
    temperature = max(0.5, math.exp(-1e-5 * (step // 1000) * 1000))  # annealed
    y = ExpConcrete(temperature, logits=logits).rsample()
    return model.log_likelihood(x, y.exp()) - analytic_kl(logits)


@torch.no_grad()
def negative_elbo(model: CategoricalVAE, images: torch.Tensor, generator: torch.Generator) -> float:
    """-ELBO of the discrete model: exact categorical codes and the analytic KL, averaged over ``images``."""
    total = 0.0
    for x in images.split(500):
        logits = model.logits(x)
        code = sample_categorical(logits, generator=generator)
        total += float((analytic_kl(logits) - model.log_likelihood(x, code)).sum())
    return total / images.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few seconds on the embedded subset")
    parser.add_argument("--data", default="embedded", help="embedded, or a folder of .amat[.gz] splits")
    parser.add_argument("--steps", type=int, default=100_000, help="steps of batch 100 per method")
    parser.add_argument("--methods", default="relaxed,straight-through,annealed", help="comma-separated")
    args = parser.parse_args()
    if args.smoke:
        args.data, args.steps = "embedded", 60
    data = load_dataset(args.data)
    train, test = data.train.float(), data.test.float()
    rows = []
    started = time.perf_counter()
    for method in args.methods.split(","):
        torch.manual_seed(0)
        model = CategoricalVAE(train.shape[1])
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(1)
        for step in tqdm(range(args.steps), desc=method, mininterval=10, leave=False):
            index = torch.randint(0, train.shape[0], (100,), generator=generator)
            loss = -training_bound(model, train[index], method, step).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        rows.append((method, negative_elbo(model, test, torch.Generator().manual_seed(2))))
    print(f"{args.steps} steps of batch 100 per method, {time.perf_counter() - started:.0f} s in all")
    print(f"| method | test -ELBO, discrete model ({args.steps} steps) | Jang et al. (2017), Table 1 |")
    print("|---|---|---|")
    for method, value in rows:
        print(f"| {method} | {value:.2f} | {JANG_NEG_ELBO[method]} |")


if __name__ == "__main__":
    main()
