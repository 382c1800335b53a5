"""Your own discrete-latent model, trained with the lab's VIMCO and scored with ``discrete_bound``.

The model below is written from scratch: a sigmoid belief net with one layer of binary units, as an
``nn.Module`` with the two methods of the documented discrete-model protocol (docs/objectives.md, "Using your
own model") and nothing else:

    sample_posterior(x, num_samples, *, generator) -> (h, log_q)    log_q differentiable in the encoder
    log_joint(x, h) -> log p(x, h)                                  differentiable in the generative model

VIMCO (Mnih & Rezende 2016) needs only these. Its gradient of the K-sample bound L = log mean_k w_k is
sum_k (L - L_{-k}) grad log q(h_k | x)  +  grad of L with h held fixed;
``concretelab.estimators.score.vimco_signals`` gives the signals L - L_{-k}. The model is then judged on
the discrete model with ``concretelab.objectives.discrete_bound`` (-L_k on test images).

    python examples/own_model_vimco.py --smoke                 # seconds, embedded data
    python examples/own_model_vimco.py --data ../shared/data/binarized_mnist --steps 100000
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

from concretelab.data import fixed_subset, load_dataset
from concretelab.estimators.score import surrogate_loss, vimco_signals
from concretelab.functional import sample_bernoulli
from concretelab.objectives import discrete_bound, layer_log_prob


class OneLayerSBN(nn.Module):
    """p(h) = Bernoulli(sigmoid(b)), p(x | h) = Bernoulli(sigmoid(W h + c)); q(h | x) = Bernoulli(sigmoid(V x + d))."""

    def __init__(self, pixels: int, units: int, pixel_mean: torch.Tensor) -> None:
        super().__init__()
        self.prior = nn.Parameter(torch.zeros(units))
        self.encoder = nn.Linear(pixels, units)
        self.decoder = nn.Linear(units, pixels)
        with torch.no_grad():  # start the decoder at the data's pixel means (smoothed away from 0 and 1)
            p = (pixel_mean + 1e-3) / (1 + 2e-3)
            self.decoder.bias.copy_(torch.log(p) - torch.log1p(-p))

    def sample_posterior(self, x, num_samples, *, generator=None):
        logits = self.encoder(x)  # (batch, units)
        h = sample_bernoulli(logits, (num_samples, *logits.shape), generator=generator)  # exact 0/1 draws
        return [h], layer_log_prob(2, logits, h)  # log q(h | x), (num_samples, batch)

    def log_joint(self, x, h):
        a = self.decoder(h[0])  # (num_samples, batch, pixels)
        log_px = (x * a - nn.functional.softplus(a)).sum(-1)
        return layer_log_prob(2, self.prior, h[0]) + log_px


def vimco_loss(model: OneLayerSBN, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Minus VIMCO's surrogate (its gradient is minus VIMCO's gradient estimate) and the bound, per batch."""
    h, log_q = model.sample_posterior(x, k, generator=generator)
    log_w = model.log_joint(x, h) - log_q  # (k, batch)
    signals, _ = vimco_signals(log_w.detach(), dim=0)
    bound = torch.logsumexp(log_w, dim=0) - math.log(k)  # the pathwise part, h fixed
    surrogate = bound + surrogate_loss(log_q, signals).sum(0)  # + the score part, learning signal per sample
    return -surrogate.mean(), bound.detach().mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few seconds on the embedded subset")
    parser.add_argument("--data", default="embedded", help="embedded, or a folder of {train,valid,test}.amat[.gz]")
    parser.add_argument("--steps", type=int, default=20_000, help="training steps of batch 64")
    parser.add_argument("--units", type=int, default=200, help="binary latent units")
    parser.add_argument("--samples", type=int, default=5, help="K of VIMCO's bound (>= 2)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--k", type=int, default=5000, help="k of the test bound -L_k")
    parser.add_argument("--test-images", type=int, default=1000, help="a fixed random subset of N test images")
    args = parser.parse_args()
    if args.smoke:
        args.data, args.steps, args.units, args.k, args.test_images = "embedded", 200, 20, 50, 100
    torch.manual_seed(0)
    data = load_dataset(args.data)
    train = data.train.float()
    model = OneLayerSBN(train.shape[1], args.units, train.mean(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(1)
    order = torch.randperm(train.shape[0], generator=generator)
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        start = (step * 64) % (train.shape[0] - 64)
        x = train[order[start : start + 64]]
        loss, bound = vimco_loss(model, x, args.samples, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % max(1, args.steps // 10) == 0:
            print(f"step {step:>7}: training bound L_{args.samples} = {bound.item():8.2f} nats")
    subset = fixed_subset(data.test.shape[0], args.test_images)  # None: all of them
    test = (data.test if subset is None else data.test[subset]).float()
    nll = -discrete_bound(model, test, args.k, generator=torch.Generator().manual_seed(2))
    ci = 1.96 * nll.std().item() / math.sqrt(nll.numel())
    print(f"test -L_{args.k} on {nll.numel()} images: {nll.mean().item():.2f} ± {ci:.2f} nats "
          f"({args.steps} steps, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
