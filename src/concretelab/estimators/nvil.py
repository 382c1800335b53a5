"""NVIL: score-function estimator with an input-dependent learned baseline (Mnih & Gregor 2014).

Approximates
    ∂/∂θ E_{b ~ p_θ}[f(b)].
With
    ĝ = (f(b) − c_ψ(x) − c̄) ∇_θ log p_θ(b),
    where c_ψ is a small network of an input x (in ``estimate``: a feature vector of the logits, by default
    the flattened logits themselves) trained by least squares on f − c̄ (Mnih & Gregor 2014, Sec. 3.1),
    and c̄ is a running mean of f − c_ψ(x) (Sec. 3.3). Both come from previous calls only, so ĝ is
    unbiased. The paper also divides the signal by max(1, running std); that rescales the gradient, so
    ``estimate`` leaves it off and ``learning_signal(..., normalise=True)`` offers it to a trainer.
Requires
    f evaluated at exact samples only; one f-evaluation per sample.

State: ψ (a linear map, or a one-hidden-layer tanh MLP when ``hidden > 0``, created at the first call
for the feature size it sees, with its output layer starting at zero) and the running moments adapt after
each call; ``reset()`` restores the initial state (seeded by ``seed``).

References
    [1] Mnih & Gregor, "Neural Variational Inference and Learning in Belief Networks", ICML 2014.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from concretelab.checks import check_fraction, check_positive
from concretelab.checks import check_int as check_count
from concretelab.estimators._base import (
    Objective,
    SingleSampleEstimator,
    evaluate,
    exact_sample,
    mean_param,
    per_element,
)
from concretelab.estimators.layered import LayeredNVIL
from concretelab.estimators.score import RunningMoments

__all__ = ["NVIL"]


def _flatten(logits: Tensor) -> Tensor:
    return logits.reshape(-1)


class NVIL(SingleSampleEstimator):
    """NVIL (unbiased in ``estimate``; both families).

    Options: ``features`` (callable logits -> feature tensor (..., F); default: the flattened logits),
    ``hidden`` (0 for a linear baseline, default 0), ``lr`` (Adam step size for ψ, default 1e-2),
    ``decay`` (running-moment factor, default 0.8 as in the paper), ``seed`` (ψ's initialisation).
    """

    name = "nvil"
    layered = LayeredNVIL  # the same estimator applied layer by layer to a model (concretelab train)
    unbiased = True
    evaluations_per_sample = 1
    stateful = True

    def __init__(self, family: str = "bernoulli", *, features: Callable[[Tensor], Tensor] | None = None,
                 hidden: int = 0, lr: float = 1e-2, decay: float = 0.8, seed: int = 0) -> None:
        super().__init__(family)
        if features is not None and not callable(features):
            raise ValueError(f"features must be a callable mapping logits to a feature tensor, got {features!r}")
        self.features = features or _flatten
        self.hidden = check_count("hidden", hidden, 0)
        self.lr = check_positive("lr", lr)
        self.decay = check_fraction("decay", decay)
        self.seed = int(seed)
        self.moments = RunningMoments(self.decay).double()  # the lab's problems are float64
        self.reset()

    def reset(self) -> None:
        self.net: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.moments.reset()

    def state_dict(self) -> dict[str, Any]:
        net = None if self.net is None else {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        return {"net": net, "moments": {k: v.clone() for k, v in self.moments.state_dict().items()},
                "optimizer": None if self.optimizer is None else copy.deepcopy(self.optimizer.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        self.moments.load_state_dict(state["moments"])
        if state["net"] is None:
            return
        weight = state["net"]["0.weight" if self.hidden else "weight"]
        self._network(torch.zeros(weight.shape[1], dtype=weight.dtype))  # built as the first call would
        assert self.net is not None and self.optimizer is not None
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])

    def _network(self, features: Tensor) -> nn.Module:
        size = features.shape[-1]
        if self.net is None:
            gen = torch.Generator().manual_seed(self.seed)
            if self.hidden:
                first = skip_init(nn.Linear, size, self.hidden, dtype=features.dtype)
                with torch.no_grad():
                    first.weight.normal_(0.0, size**-0.5, generator=gen)
                    first.bias.zero_()
                last = skip_init(nn.Linear, self.hidden, 1, dtype=features.dtype)
                net: nn.Module = nn.Sequential(first, nn.Tanh(), last)
            else:
                last = skip_init(nn.Linear, size, 1, dtype=features.dtype)
                net = last
            with torch.no_grad():
                last.weight.zero_()
                last.bias.zero_()
            self.net = net.to(features.device)
            self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        first_layer = self.net[0] if isinstance(self.net, nn.Sequential) else self.net
        if first_layer.in_features != size:
            raise ValueError(
                f"nvil's baseline was built for {first_layer.in_features} features, got features of shape "
                f"{tuple(features.shape)}; call reset() before switching problems"
            )
        return self.net

    def baseline(self, features: Tensor) -> Tensor:
        """c_ψ(x) for features of shape (..., F) -> (...)."""
        net = self._network(features)
        dtype = next(net.parameters()).dtype
        return net(features.to(dtype)).squeeze(-1).to(features.dtype)

    def learning_signal(self, values: Tensor, features: Tensor, *, normalise: bool = True) -> Tensor:
        """(f − c_ψ(x) − c̄) / max(1, s) (or without the division), detached; values broadcast with (...)."""
        with torch.no_grad():
            moments = self.moments.to(values.device)
            centred = values - self.baseline(features) - moments.mean.to(values.dtype)
            if normalise:
                centred = centred / moments.scale().to(values.dtype)
        return centred

    def update(self, values: Tensor, features: Tensor) -> None:
        """One Adam step of ψ on mean (f − c̄ − c_ψ(x))², then fold f − c_ψ(x) into the running moments."""
        values = values.detach()
        moments = self.moments.to(values.device)
        with torch.enable_grad():
            residual = values - moments.mean.to(values.dtype) - self.baseline(features.detach())
            loss = residual.pow(2).mean()
            if self.optimizer is None:  # created by baseline() above
                raise RuntimeError("nvil: the baseline optimizer was not created")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            moments.update(values - self.baseline(features.detach()))

    def per_sample(self, f: Objective, logits: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
        b = exact_sample(logits, num, self.family, generator)
        with torch.no_grad():
            values = evaluate(f, b).detach().to(logits.dtype)
        features = self.features(logits)
        signal = self.learning_signal(values, features, normalise=False)  # (num,)
        score = b - mean_param(logits, self.family)
        grads = per_element(signal, 1 + logits.dim()) * score
        self.update(values, features)
        return grads
