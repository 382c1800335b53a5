"""Building blocks shared by the models: linear / tanh-MLP maps with Glorot initialisation, the output-bias
initialisation from pixel means, and the Bernoulli log-likelihood of binary pixels."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor, nn

from concretelab.functional import bernoulli_log_prob_sum

__all__ = [
    "ACTIVATIONS",
    "OUTPUT_BIAS_SMOOTHING",
    "bernoulli_log_likelihood",
    "glorot_init",
    "last_linear",
    "make_map",
    "mean_logits",
]

#: Pixel means p are smoothed to (p + eps) / (1 + 2 eps) before the logit, eps = 1e-4: add-one smoothing
#: with one pseudo-image of each value per 10,000 images. An always-0 pixel (97 in the MNIST training set)
#: gets logit(1e-4 / 1.0002) = -9.21 instead of -inf; pixels seen even once move by less than 1e-4 in p.
OUTPUT_BIAS_SMOOTHING = 1e-4


#: The nonlinearities of the hidden layers of a ``~`` map: tanh (Maddison et al. 2017, after Mnih & Gregor 2014)
#: or the leaky ReLU of negative slope 0.3 of DisARM's nonlinear models (Dong, Mnih & Tucker 2020, Sec. 6).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "leaky_relu": functools.partial(nn.LeakyReLU, 0.3),
}


def glorot_init(module: nn.Module) -> None:
    """Glorot & Bengio (2010) uniform weights and zero biases for every nn.Linear inside ``module``."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def make_map(in_dim: int, out_dim: int, hidden: int | None, activation: Callable[[], nn.Module] = nn.Tanh
             ) -> nn.Module:
    """An affine map (hidden None) or in -> hidden -> hidden -> out with ``activation`` after each hidden layer."""
    if hidden is None:
        net: nn.Module = nn.Linear(in_dim, out_dim)
    else:
        net = nn.Sequential(
            nn.Linear(in_dim, hidden), activation(), nn.Linear(hidden, hidden), activation(), nn.Linear(hidden, out_dim)
        )
    glorot_init(net)
    return net


def last_linear(net: nn.Module) -> nn.Linear:
    """The final nn.Linear of a map built by ``make_map``."""
    return net if isinstance(net, nn.Linear) else [m for m in net.modules() if isinstance(m, nn.Linear)][-1]


def mean_logits(train_mean: Tensor, size: int) -> Tensor:
    """logit((p + eps) / (1 + 2 eps)) of the training pixel means (OUTPUT_BIAS_SMOOTHING); finite on [0, 1]."""
    if not isinstance(train_mean, Tensor):
        raise ValueError(f"train_mean must be a tensor of shape ({size},), got {type(train_mean).__name__}")
    if train_mean.shape != (size,):
        raise ValueError(f"train_mean must have shape ({size},) (one mean per pixel), got {tuple(train_mean.shape)}")
    mean = train_mean.detach().to(torch.float64)
    if not bool(((mean >= 0) & (mean <= 1)).all()):
        raise ValueError("train_mean must hold pixel means in [0, 1] (no NaN), got values outside it")
    eps = OUTPUT_BIAS_SMOOTHING
    p = (mean + eps) / (1 + 2 * eps)
    return p.log() - (-p).log1p()


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """sum_d x_d a_d - softplus(a_d) = sum_d log Bernoulli(x_d; sigmoid(a_d)); a (..., batch, D), x (batch, D)."""
    return bernoulli_log_prob_sum(logits, x)
