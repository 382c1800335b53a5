"""Small discrete problems with exactly enumerable gradients, for measuring gradient estimators.

A ``Problem`` is a factorised Bernoulli or categorical distribution given by ``logits`` and an
objective f; the estimand is g* = ∂/∂θ E_{b ~ p_θ}[f(b)], computed exactly by enumeration. f maps a batch
(M, *logits.shape) to (M,) and accepts real-valued (relaxed) points as well as exact samples, because the
relaxing estimators evaluate and differentiate it at points of [0, 1] or of the simplex.

Problems:

* ``toy``: f(b) = Σ_i (b_i − t)², the toy problem of Tucker et al. (2017, Sec. 6.1) with t = 0.49 or
  0.499; in one dimension g* = σ'(θ)(1 − 2t), tiny next to the spread of most estimators.
* ``sbn``: a sigmoid belief net with ``latents`` binary latent units (few enough to enumerate 2^latents
  states) and a 784-pixel Bernoulli decoder, fitted briefly by exact marginal likelihood to a few binarized
  MNIST images; f(b) = log p(x | b) + log p(b) for one held-out image x. This is the part of the ELBO
  E_q[log p(x, b) − log q(b)] that depends on θ only through the sampling distribution; the −log q term is
  left out because f must not depend on θ, and its gradient (that of the entropy) is analytic.
* ``categorical``: n categorical variables with K categories and the non-linear
  f(b) = (Σ_i ⟨w_i, b_i⟩ − c)² + Σ_{i<j} b_iᵀ A_ij b_j with seeded Gaussian w, A.

References
    [1] Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein, "REBAR", NeurIPS 2017 (Sec. 6.1, toy problem).
    [2] Neal, "Connectionist learning of belief networks", AI 1992 (sigmoid belief networks).
    [3] Larochelle & Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011 (binarized MNIST).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from concretelab.checks import check_int
from concretelab.functional import bernoulli_log_prob_sum, softplus

__all__ = [
    "PROBLEMS",
    "Problem",
    "categorical_problem",
    "load_binarized_mnist_rows",
    "sbn_problem",
    "toy_problem",
]

log = logging.getLogger(__name__)

PROBLEMS: tuple[str, ...] = ("toy", "sbn", "categorical")


Objective = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Problem:
    """A discrete distribution (``family``, ``logits``) and an objective ``f`` with a known gradient.

    ``key`` names the instance in tables (e.g. ``toy-t0.49``); ``info`` holds JSON-able settings.
    """

    key: str
    name: str
    family: str
    logits: Tensor
    f: Objective
    description: str
    info: dict[str, Any] = field(default_factory=dict)


def toy_problem(target: float = 0.49, logits: tuple[float, ...] | list[float] = (0.0,)) -> Problem:
    """E_{b ~ Bernoulli(σ(θ))}[Σ_i (b_i − t)²] (Tucker et al. 2017, Sec. 6.1), one coordinate per logit."""
    if not (isinstance(target, (int, float)) and math.isfinite(target)):
        raise ValueError(f"target must be a finite number, got {target!r}")
    values = [float(v) for v in logits]
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"toy logits must be a non-empty list of finite numbers, got {logits!r}")
    t = float(target)

    def f(b: Tensor) -> Tensor:
        return ((b - t) ** 2).sum(dim=-1)

    theta = torch.tensor(values, dtype=torch.float64)
    return Problem(
        key=f"toy-t{t:g}" if values == [0.0] else f"toy-t{t:g}-theta{'_'.join(f'{v:g}' for v in values)}",
        name="toy",
        family="bernoulli",
        logits=theta,
        f=f,
        description=f"E[sum_i (b_i - {t:g})^2], b_i ~ Bernoulli(sigmoid(theta_i)), theta = {values}",
        info={"target": t, "logits": values},
    )


def categorical_problem(
    variables: int = 4, categories: int = 4, *, offset: float = 0.5, seed: int = 0
) -> Problem:
    """f(b) = (Σ_i ⟨w_i, b_i⟩ − c)² + Σ_{i<j} b_iᵀ A_ij b_j over ``variables`` one-hot b_i of size K."""
    check_int("variables", variables, 2)
    check_int("categories", categories, 2)
    if categories**variables > 2**16:
        raise ValueError(
            f"categories**variables must be at most 2**16 to enumerate, got {categories}**{variables}"
        )
    gen = torch.Generator().manual_seed(seed)
    n, k = variables, categories
    w = torch.randn(n, k, generator=gen, dtype=torch.float64)
    a = torch.randn(n, n, k, k, generator=gen, dtype=torch.float64)
    upper = torch.triu(torch.ones(n, n, dtype=torch.float64), diagonal=1)[:, :, None, None]
    a = a * upper  # keep i < j only
    theta = torch.randn(n, k, generator=gen, dtype=torch.float64)
    c = float(offset)

    def f(b: Tensor) -> Tensor:
        linear = (b * w).sum(dim=(-2, -1))  # (M,)
        pair = torch.einsum("mik,ijkl,mjl->m", b, a, b)  # (M,)
        return (linear - c) ** 2 + pair

    return Problem(
        key=f"categorical-{n}x{k}",
        name="categorical",
        family="categorical",
        logits=theta,
        f=f,
        description=(
            f"{n} categorical variables with K = {k}; f(b) = (sum_i <w_i, b_i> - {c:g})^2 + "
            "sum_{i<j} b_i^T A_ij b_j, w, A, theta ~ N(0, 1) seeded"
        ),
        info={"variables": n, "categories": k, "offset": c, "seed": seed},
    )


def load_binarized_mnist_rows(rows: int, path: Path | None = None) -> tuple[Tensor, str]:
    """The first ``rows`` test images of binarized MNIST as float64 (rows, 784), and a note on their source.

    ``path`` None: the package's embedded subset (always present); otherwise any ``--data`` value
    ``concretelab.data.load_dataset`` accepts (a folder of .amat files, an .npz, ...) or a single
    ``.amat[.gz]`` file, read and checksum-verified by ``concretelab.data``. Nothing is downloaded.
    """
    check_int("rows", rows)
    from concretelab.data import load_dataset
    from concretelab.data.binarized_mnist import read_amat

    if path is None:
        images, source = load_dataset("embedded").test, "concretelab.data.load_dataset('embedded')"
    elif Path(path).is_file() and ".amat" in Path(path).name:
        images, source = torch.from_numpy(read_amat(path)), str(path)
    else:
        images, source = load_dataset(path).test, f"concretelab.data.load_dataset({str(path)!r})"
    if images.shape[0] < rows:
        raise ValueError(f"{source} holds {images.shape[0]} test images, fewer than the {rows} requested")
    return images[:rows].to(torch.float64), source


def _bernoulli_log_lik(x: Tensor, logits: Tensor) -> Tensor:
    """Σ_d log Bernoulli(x_d; σ(logits_d)) = Σ_d x_d l_d − softplus(l_d), over the last axis."""
    return bernoulli_log_prob_sum(logits, x)


def _fit_decoder(
    images: Tensor, latents: int, steps: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Prior logits a (H,), weights W (784, H), bias c (784,) maximising Σ_x log Σ_b p(b) p(x | b) exactly.

    Adam on the exact marginal likelihood (all 2^H states enumerated), from W ~ N(0, 0.1²) and c at the
    logit of the smoothed pixel means; float32, a fixed number of steps.
    """
    states = ((torch.arange(2**latents)[:, None] >> torch.arange(latents)) & 1).to(torch.float32)  # (S, H)
    x = images.to(torch.float32)
    mean = (x.mean(dim=0) * x.shape[0] + 0.5) / (x.shape[0] + 1.0)
    c = torch.log(mean / (1 - mean)).clone().requires_grad_(True)
    w = (0.1 * torch.randn(784, latents, generator=generator)).requires_grad_(True)
    a = torch.zeros(latents, requires_grad=True)
    optimiser = torch.optim.Adam([w, c, a], lr=0.05)
    for _ in range(steps):
        optimiser.zero_grad(set_to_none=True)
        log_prior = _bernoulli_log_lik(states, a)  # (S,)
        pixel_logits = states @ w.T + c  # (S, 784)
        log_lik = x @ pixel_logits.T - softplus(pixel_logits).sum(dim=1)  # (N, S): sum_d x_d a_d - softplus(a_d)
        loss = -torch.logsumexp(log_lik + log_prior, dim=1).mean()
        loss.backward()
        optimiser.step()
    log.info("sbn decoder: mean exact log p(x) after %d steps = %.2f nats", steps, -float(loss.detach()))
    return a.detach().double(), w.detach().double(), c.detach().double()


def sbn_problem(
    latents: int = 12,
    *,
    train_images: int = 200,
    image_index: int = 0,
    steps: int = 150,
    seed: int = 0,
    data_path: Path | None = None,
) -> Problem:
    """f(b) = log p(x | b) + log p(b) of a briefly fitted sigmoid belief net, for one held-out image x.

    The first ``train_images`` images fit the decoder; image ``train_images + image_index`` is x. The
    proposal logits θ (the point where the gradient is measured) are seeded N(0, 1).
    """
    check_int("latents", latents)
    if latents > 16:
        raise ValueError(f"latents must be at most 16 so that 2**latents states can be enumerated, got {latents}")
    check_int("train_images", train_images)
    check_int("image_index", image_index, 0)
    check_int("steps", steps, 0)
    images, source = load_binarized_mnist_rows(train_images + image_index + 1, data_path)
    gen = torch.Generator().manual_seed(seed)
    a, w, c = _fit_decoder(images[:train_images], latents, steps, gen)
    x = images[train_images + image_index]  # (784,)
    theta = torch.randn(latents, generator=gen, dtype=torch.float64)

    def f(b: Tensor) -> Tensor:
        pixel_logits = b @ w.T + c  # (M, 784)
        return _bernoulli_log_lik(x, pixel_logits) + _bernoulli_log_lik(b, a)

    return Problem(
        key=f"sbn-{latents}",
        name="sbn",
        family="bernoulli",
        logits=theta,
        f=f,
        description=(
            f"sigmoid belief net {latents}H~784V fitted for {steps} Adam steps to {train_images} binarized MNIST "
            f"images ({source}); f(b) = log p(x|b) + log p(b) for image {train_images + image_index}"
        ),
        info={
            "latents": latents,
            "train_images": train_images,
            "image_index": train_images + image_index,
            "steps": steps,
            "seed": seed,
            "data": source,
        },
    )
