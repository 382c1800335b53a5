"""How sharp a trained model's proposal q(h | x) is, and how far its training bound is above its validation one.

A score-function estimator (NVIL, VIMCO) learns nothing more about a unit whose posterior probability has
saturated: its score b - sigma(a) is then almost always 0, and a proposal that is nearly deterministic on every
image makes the model an autoencoder with a binary code, which can fit its training images better than it
generalises. This prints, for a run folder's checkpoint, on a fixed subset of training and of validation images
(the same images for every run, :func:`concretelab.data.fixed_subset`):

- -L_k of each split (their difference measures overfitting);
- per proposal layer (layer 0 next to the data; layers above are conditioned on one draw of the layers below),
  the mean entropy of q(h_l | h_{l-1}) per image in nats, summed over the layer's units, and the share of units
  whose most likely state has probability above 1 - 10^-3 ("saturated").

    python scripts/posterior_sharpness.py ../runs/table1/CELL-tuned-1000000 --checkpoint best --images 1000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from concretelab.data import SUBSET_SEED, fixed_subset, load_dataset
from concretelab.estimators.layered import sample_draw
from concretelab.objectives import discrete_bound_per_image
from concretelab.train.checkpoint import load_checkpoint
from concretelab.train.load import checkpoint_path, model_from_checkpoint

SATURATED = 1e-3  # a unit whose most likely state has probability above 1 - SATURATED


def unit_probabilities(logits: Tensor, categories: int) -> Tensor:
    """The probabilities of each unit's states, (..., units, K): [1 - sigma(a), sigma(a)] for binary units."""
    if categories == 2:
        p = torch.sigmoid(logits.double())
        return torch.stack([1 - p, p], dim=-1)
    return torch.softmax(logits.double(), dim=-1)


def layer_sharpness(model: torch.nn.Module, images: Tensor, generator: torch.Generator) -> list[tuple[float, float]]:
    """(mean entropy per image in nats, share of saturated units) of each proposal layer on ``images``."""
    draw = sample_draw(model, images, 1, generator=generator)  # the layers each higher layer is conditioned on
    out = []
    for layer, categories in enumerate(model.latent_categories):
        logits = model.proposal_logits(layer, images, draw.h[:layer])
        probs = unit_probabilities(logits, categories)
        entropy = -torch.special.xlogy(probs, probs).sum(-1)  # (..., units); xlogy: 0 log 0 = 0
        saturated = probs.amax(-1) > 1 - SATURATED
        out.append((entropy.sum(-1).mean().item(), saturated.double().mean().item()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder written by concretelab train or reproduce table1")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--images", type=int, default=1000, help="images of each split (a fixed subset)")
    parser.add_argument("--k", type=int, default=100, help="samples of the bound L_k")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.images < 1 or args.k < 1:
        parser.error(f"--images and --k must be >= 1, got {args.images} and {args.k}")
    saved = load_checkpoint(checkpoint_path(args.run, args.checkpoint))
    model = model_from_checkpoint(saved)
    dataset = load_dataset(saved.config["data"])
    print(f"{args.run} ({args.checkpoint} checkpoint, step {saved.step}), {args.images} images per split, "
          f"-L_{args.k}")
    print("| split | -L_k | layer | entropy of q per image (nats) | units | saturated units |")
    print("|---|---|---|---|---|---|")
    for split in ("train", "valid"):
        images = dataset.binary_split(split)
        subset = fixed_subset(images.shape[0], min(args.images, images.shape[0]), SUBSET_SEED)
        images = (images if subset is None else images[subset]).float()
        generator = torch.Generator().manual_seed(args.seed)
        with torch.no_grad():
            nll = -discrete_bound_per_image(model, images, args.k, batch_size=100, generator=generator).mean()
            sharpness = layer_sharpness(model, images, generator)
        for layer, (entropy, saturated) in enumerate(sharpness):
            units = model.latent_units[layer] if getattr(model, "latent_units", None) else "?"
            print(f"| {split} | {nll:.2f} | {layer} | {entropy:.1f} | {units} | {saturated:.3f} |")


if __name__ == "__main__":
    main()
