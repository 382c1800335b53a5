"""Figures of a run: learning curves, samples from the model and reconstructions of test images (PNG).

Reconstructions show, for a test image x, the pixel probabilities p(x | h) at one latent draw
h ~ q(h | x). The model protocol gives log p(x | h) rather than the probabilities; for Bernoulli pixels
log p(x | h) = sum_d x_d a_d - softplus(a_d) is linear in x, so its gradient with respect to x is exactly
the logits a(h), read off with one backward pass. A model may instead offer ``reconstruct(x, generator=)``,
which is used when present; conditional (structured-prediction) models show the lower half predicted
from the upper half (``generate(condition=x)``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import Tensor

from concretelab.data import load_dataset
from concretelab.files import save_figure
from concretelab.train.config import load_config
from concretelab.train.load import load_run
from concretelab.train.metrics import read_metrics

__all__ = ["plot_run", "reconstruction_probs"]

logger = logging.getLogger(__name__)


def reconstruction_probs(model: torch.nn.Module, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Pixel probabilities of x's reconstruction, shape ``(batch, D)``, from one posterior draw."""
    if hasattr(model, "reconstruct"):
        return model.reconstruct(x, generator=generator)
    if getattr(model, "conditional", False):
        return model.generate(x.shape[0], generator=generator, condition=x)
    with torch.no_grad():
        h, _ = model.sample_posterior(x, 1, generator=generator)  # each (1, batch, units[, K])
    with torch.enable_grad():
        probe = x.detach().clone().requires_grad_(True)
        log_lik = model.log_likelihood(probe, h)  # (1, batch), linear in the pixels
        (logits,) = torch.autograd.grad(log_lik.sum(), probe)
    return torch.sigmoid(logits)


def _grid(images: Tensor, shape: tuple[int, int], columns: int) -> Tensor:
    """Tile ``(n, H*W)`` images into one ``(rows*H, columns*W)`` array with a 1-pixel gap."""
    n = images.shape[0]
    rows = math.ceil(n / columns)
    h, w = shape
    canvas = torch.full((rows * (h + 1) - 1, columns * (w + 1) - 1), 0.5)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = images[i].reshape(h, w)
    return canvas


def _save_image(array: Tensor, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 6 * array.shape[0] / array.shape[1] + 0.4))
    ax.imshow(array.numpy(), cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def _pair_canvas(originals: Tensor, reconstructions: Tensor, shape: tuple[int, int], columns: int
                 ) -> tuple[Tensor, list[float], list[str]]:
    """Originals and their reconstructions as paired rows: each row of ``columns`` test images directly above the
    row of their reconstructions (1 pixel apart; pairs a quarter image apart). Returns the canvas (NaN where there
    is no image), and the centre and label of each row."""
    h, w = shape
    n = originals.shape[0]
    pairs = math.ceil(n / columns)
    inner, outer = 1, max(3, h // 4)
    height = pairs * (2 * h + inner) + (pairs - 1) * outer
    canvas = torch.full((height, columns * (w + 1) - 1), float("nan"))
    centres, labels = [], []
    for p in range(pairs):
        top = p * (2 * h + inner + outer)
        for row, images, label in ((top, originals, "test"), (top + h + inner, reconstructions, "reconstruction")):
            for c in range(min(columns, n - p * columns)):
                canvas[row : row + h, c * (w + 1) : c * (w + 1) + w] = images[p * columns + c].reshape(h, w)
            centres.append(row + (h - 1) / 2)
            labels.append(label)
    return canvas, centres, labels


def _save_pairs(originals: Tensor, reconstructions: Tensor, shape: tuple[int, int], columns: int, path: Path,
                title: str) -> None:
    """The figure of ``_pair_canvas``, each row labelled on the left, the background white."""
    canvas, centres, labels = _pair_canvas(originals, reconstructions, shape, columns)
    fig, ax = plt.subplots(figsize=(7, 7 * canvas.shape[0] / canvas.shape[1] + 0.5))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    ax.imshow(canvas.numpy(), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_yticks(centres, labels, fontsize=7)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def plot_learning_curves(run: str | Path, path: Path) -> None:
    """Training loss (−relaxed bound) and validation −L_k against the step, on one axis (nats)."""
    rows = read_metrics(Path(run) / "metrics.jsonl")
    train = [(r["step"], r["loss"]) for r in rows if isinstance(r.get("loss"), (int, float))]
    valid = [
        (r["step"], r["valid_nll"], r.get("valid_k")) for r in rows if isinstance(r.get("valid_nll"), (int, float))
    ]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="train: −relaxed bound", lw=1)
    if valid:
        k = valid[-1][2]
        ax.plot([v[0] for v in valid], [v[1] for v in valid], "o-", label=f"validation: −L_{k}", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("nats per image")
    config_file = Path(run) / "config.toml"
    model = load_config(config_file).model if config_file.is_file() else "?"
    ax.set_title(f"learning curves: {model} ({Path(run).resolve().name})")
    if train or valid:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def plot_run(
    run: str | Path, *, checkpoint: str | None = None, num_images: int = 64, seed: int = 0
) -> list[Path]:
    """Write ``RUN/plots/{learning_curves,samples,reconstructions}.png``; return their paths."""
    run = Path(run)
    model, config = load_run(run, checkpoint=checkpoint)  # a missing run folder or checkpoint is named first
    out = run / "plots"
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "learning_curves.png", out / "samples.png", out / "reconstructions.png"]
    plot_learning_curves(run, paths[0])

    dataset = load_dataset(config.data)
    shape = dataset.image_shape
    columns = math.ceil(math.sqrt(num_images))
    generator = torch.Generator().manual_seed(seed)
    # evenly spaced test images: the binarized MNIST test split is sorted by digit
    index = torch.linspace(0, dataset.test.shape[0] - 1, min(num_images, dataset.test.shape[0])).long()
    test = dataset.test[index].to(torch.float32)  # (n, D) 0/1
    if getattr(model, "conditional", False):
        samples = model.generate(test.shape[0], generator=generator, condition=test)
    else:
        samples = model.generate(num_images, generator=generator)  # (n, D) probabilities
    _save_image(_grid(samples.cpu(), shape, columns), paths[1], f"{config.model}: pixel probabilities of samples")

    recon = reconstruction_probs(model, test, generator).detach().cpu()
    _save_pairs(test, recon, shape, min(columns * 2, 16), paths[2],
                f"{config.model}: each test image above its reconstruction p(x | h), h ~ q(h | x)")
    logger.info("plots written to %s", out)
    return paths
