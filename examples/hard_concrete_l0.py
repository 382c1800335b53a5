"""L0 sparsification of an MLP classifier with Hard Concrete gates (Louizos, Welling & Kingma, ICLR 2018).

Every weight w of the MLP gets a gate z ~ HardConcrete(2/3, log alpha) stretched to (-0.1, 1.1) and clipped to
[0, 1] (eq. 9-11), and the network uses w * z. The expected number of non-zero weights is sum P(z != 0)
(``HardConcrete.prob_nonzero``, eq. 12), a differentiable penalty: minimise

    cross-entropy + lam * sum_w P(z_w != 0) / N_train

and at test time use the deterministic gate min(1, max(0, sigmoid(log alpha) (1.1 + 0.1) - 0.1)) (eq. 13).
Sweeping lam traces test error against the share of weights kept; the figure is written to --out.

    python examples/hard_concrete_l0.py --smoke                 # digits 8 x 8, seconds
    python examples/hard_concrete_l0.py                         # Fashion-MNIST (dataset-fashion-mnist)
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from _example_support import figure_path
from concretelab.distributions import HardConcrete
from labelled_data import FASHION_MNIST, labelled_images

LOWER, UPPER, TEMPERATURE = -0.1, 1.1, 2 / 3


class GatedLinear(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.log_alpha = nn.Parameter(torch.full((n_out, n_in), 2.0))  # gates start mostly open

    def gates(self) -> HardConcrete:
        return HardConcrete(TEMPERATURE, logits=self.log_alpha, lower=LOWER, upper=UPPER)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            z = self.gates().rsample()
        else:
            z = (torch.sigmoid(self.log_alpha) * (UPPER - LOWER) + LOWER).clamp(0, 1)
        return nn.functional.linear(x, self.linear.weight * z, self.linear.bias)

    def expected_l0(self) -> torch.Tensor:
        return self.gates().prob_nonzero().sum()

    def kept(self) -> tuple[int, int]:
        z = (torch.sigmoid(self.log_alpha) * (UPPER - LOWER) + LOWER).clamp(0, 1)
        return int((z > 0).sum()), z.numel()


def train_one(lam: float, data: tuple, hidden: tuple[int, int], steps: int, seed: int) -> tuple[float, float]:
    train_x, train_y, test_x, test_y, _ = data
    torch.manual_seed(seed)
    sizes = (train_x.shape[1], *hidden, 10)  # LeNet-300-100 at full size, as in Louizos et al.
    layers = [GatedLinear(a, b) for a, b in itertools.pairwise(sizes)]
    model = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in tqdm(range(steps), desc=f"lam={lam:g}", mininterval=10, leave=False):
        index = torch.randint(0, train_x.shape[0], (100,))
        loss = nn.functional.cross_entropy(model(train_x[index]), train_y[index])
        loss = loss + lam * sum(layer.expected_l0() for layer in layers) / train_x.shape[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        error = float((model(test_x).argmax(-1) != test_y).float().mean())
    kept, total = map(sum, zip(*(layer.kept() for layer in layers), strict=True))
    return error, kept / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="scikit-learn's digits, a few seconds")
    parser.add_argument("--data", type=Path, default=FASHION_MNIST, help="folder of Fashion-MNIST IDX files")
    parser.add_argument("--steps", type=int, default=10_000, help="training steps of batch 100 per lam")
    parser.add_argument("--hidden", default="300,100", help="the two hidden layers' widths")
    parser.add_argument("--lams", default="0,0.1,1,10,100", help="L0 weights lam to sweep")
    parser.add_argument("--out", type=Path, default=None,
                        help="the figure (default: hard-concrete-l0.png here; with --smoke, in a temporary folder)")
    args = parser.parse_args()
    args.out = figure_path(args.out, args.smoke, "hard-concrete-l0.png")
    if args.smoke:
        args.steps, args.hidden, args.lams = 150, "32,16", "0,100"
    data = labelled_images(args.smoke, args.data)
    hidden = tuple(int(width) for width in args.hidden.split(","))
    started = time.perf_counter()
    rows = [(float(lam), *train_one(float(lam), data, hidden, args.steps, seed=0)) for lam in args.lams.split(",")]
    print(f"{args.steps} steps per lam, {time.perf_counter() - started:.0f} s in all")
    print("| lam | test error | weights kept |")
    print("|---|---|---|")
    for lam, error, kept in rows:
        print(f"| {lam:g} | {error:.2%} | {kept:.1%} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([100 * k for _, _, k in rows], [100 * e for _, e, _ in rows], "o-")
    for lam, error, kept in rows:
        ax.annotate(f"λ={lam:g}", (100 * kept, 100 * error), fontsize=8)
    ax.set_xlabel("weights kept (%)")
    ax.set_ylabel("test error (%)")
    ax.set_title("Hard Concrete L0 gates on an MLP")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
