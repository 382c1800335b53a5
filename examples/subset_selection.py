"""Differentiable subset selection: choose k input pixels per image, then classify from those pixels only.

In the style of learning-to-explain (Chen et al., ICML 2018): an explainer network scores every pixel of an
image, a relaxed k-hot mask selects k of them, and a classifier sees the image times the mask. The mask is
Xie & Ermon's relaxed top-k (IJCAI 2019): k rounds of a Concrete (Gumbel-softmax) draw without replacement,

    a_j = softmax((s + G) / t),   s <- s + log(1 - a_j),   mask = sum_j a_j,

with the same Gumbel noise G in every round. As t -> 0 it becomes the k-hot of the top k of s + G, which
``concretelab.functional.gumbel_topk`` computes (k pixels drawn without replacement, Kool et al. 2019). Training
is straight-through by default: the classifier sees the exact k-hot of the top k of s + G, and the gradient is
the relaxed mask's; so it is trained on the masks it gets at test time, the exact k-hot of the k largest scores
(``gumbel_topk`` with zero noise). ``--relaxed-forward`` feeds the relaxed mask itself instead: at t = 1/2 the
classifier then learns on soft masks and loses accuracy on hard ones as k grows (examples/README.md has both).
The script reports test accuracy against k and saves a picture of the pixels chosen for a few test images.

    python examples/subset_selection.py --smoke          # scikit-learn's 8 x 8 digits, seconds
    python examples/subset_selection.py                  # Fashion-MNIST (dataset-fashion-mnist)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from _example_support import figure_path
from concretelab.functional import gumbel_topk, sample_gumbel
from labelled_data import FASHION_MNIST, labelled_images


def relaxed_top_k(scores: torch.Tensor, k: int, temperature: float, noise: torch.Tensor) -> torch.Tensor:
    """Xie & Ermon's relaxed k-hot mask, (batch, D), each row summing to k."""
    s = scores + noise
    mask = torch.zeros_like(scores)
    for _ in range(k):
        log_a = torch.log_softmax(s / temperature, dim=-1)
        mask = mask + log_a.exp()
        # log(1 - a) from log a (-expm1 keeps 1 - a exact near a = 1), floored at log 1e-30: a pixel already
        # chosen drops by up to 69 nats, so it is not chosen again (clamping a below 1 - 1e-6 allowed only 13.8)
        s = s + torch.log((-torch.expm1(log_a)).clamp(min=1e-30))
    return mask


def exact_top_k(scores: torch.Tensor, k: int, noise: torch.Tensor | None = None) -> torch.Tensor:
    """The k-hot mask of the top k of scores + noise (``gumbel_topk``; zero noise, the default, at test time)."""
    index = gumbel_topk(scores.detach(), k, noise=torch.zeros_like(scores) if noise is None else noise)
    return torch.zeros_like(scores).scatter_(-1, index, 1.0)


def bounded(scores: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """Pixel scores squashed into (-scale, scale): gaps between them stay far below the 69-nat suppression."""
    return scale * torch.tanh(scores / scale)


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out))


def train_one(k: int, data: tuple, hidden: int, steps: int, straight_through: bool, temperature: float = 0.5
              ) -> tuple[float, nn.Module]:
    train_x, train_y, test_x, test_y, _ = data
    torch.manual_seed(0)
    explainer, classifier = mlp(train_x.shape[1], hidden, train_x.shape[1]), mlp(train_x.shape[1], hidden, 10)
    optimizer = torch.optim.Adam([*explainer.parameters(), *classifier.parameters()], lr=1e-3)
    for _ in tqdm(range(steps), desc=f"k={k}", mininterval=10, leave=False):
        index = torch.randint(0, train_x.shape[0], (100,))
        x = train_x[index]
        scores = bounded(explainer(x))
        noise = sample_gumbel(scores.shape)
        mask = relaxed_top_k(scores, k, temperature, noise)
        if straight_through:  # forward: the exact k-hot of the top k of scores + noise; backward: the relaxed mask
            mask = exact_top_k(scores, k, noise) + mask - mask.detach()
        loss = nn.functional.cross_entropy(classifier(x * mask), train_y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        mask = exact_top_k(bounded(explainer(test_x)), k)
        accuracy = float((classifier(test_x * mask).argmax(-1) == test_y).float().mean())
    return accuracy, explainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="scikit-learn's digits, a few seconds")
    parser.add_argument("--data", type=Path, default=FASHION_MNIST, help="folder of Fashion-MNIST IDX files")
    parser.add_argument("--steps", type=int, default=8_000, help="training steps of batch 100 per k")
    parser.add_argument("--hidden", type=int, default=200, help="hidden width of both networks")
    parser.add_argument("--ks", default="5,10,20,50", help="numbers of pixels to select")
    parser.add_argument("--relaxed-forward", action="store_true",
                        help="train on the relaxed mask itself instead of straight-through k-hot masks")
    parser.add_argument("--out", type=Path, default=None,
                        help="the figure (default: subset-selection.png here; with --smoke, in a temporary folder)")
    args = parser.parse_args()
    args.out = figure_path(args.out, args.smoke, "subset-selection.png")
    if args.smoke:
        args.steps, args.hidden, args.ks = 150, 32, "4,16"
    data = labelled_images(args.smoke, args.data)
    started = time.perf_counter()
    straight_through = not args.relaxed_forward
    results = {int(k): train_one(int(k), data, args.hidden, args.steps, straight_through) for k in args.ks.split(",")}
    forward = "straight-through k-hot" if straight_through else "relaxed mask"
    print(f"{args.steps} steps per k ({forward} in training), {time.perf_counter() - started:.0f} s in all")
    print("| pixels kept (k) | test accuracy |")
    print("|---|---|")
    for k, (accuracy, _) in results.items():
        print(f"| {k} | {accuracy:.2%} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test_x, shape, k = data[2][:6], data[4], max(results)
    with torch.no_grad():
        mask = exact_top_k(bounded(results[k][1](test_x)), k)
    fig, axes = plt.subplots(2, 6, figsize=(9, 3.2))
    for i in range(6):
        axes[0, i].imshow(test_x[i].reshape(shape), cmap="gray")
        axes[1, i].imshow((test_x[i] * mask[i]).reshape(shape) + 0.3 * mask[i].reshape(shape), cmap="magma")
        axes[0, i].axis("off")
        axes[1, i].axis("off")
    fig.suptitle(f"test images (top) and the {k} pixels the explainer chose (bottom)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
