"""Discrete-latent models: sigmoid belief nets (binary or K-ary units), structured prediction, and the
categorical VAE of Jang et al. (2017). Build them by name with [`build_model`][concretelab.models.build_model].

Every model implements the discrete-model protocol (``sample_posterior``, ``log_joint``; see
docs/dev/contracts.md), the relaxed protocol of [`concretelab.objectives`][concretelab.objectives], ``generate`` and
``model_args()`` (``build_model(**model.model_args())`` rebuilds the architecture).
"""

from __future__ import annotations

from torch import Tensor

from concretelab.models.base import LatentModel
from concretelab.models.categorical_vae import CategoricalVAE
from concretelab.models.networks import OUTPUT_BIAS_SMOOTHING
from concretelab.models.sbn import SigmoidBeliefNet
from concretelab.models.spec import SPEC_FORMS, NetworkSpec, parse_spec
from concretelab.models.structured import StructuredPredictionSBN

__all__ = [
    "OUTPUT_BIAS_SMOOTHING",
    "SPEC_FORMS",
    "CategoricalVAE",
    "LatentModel",
    "NetworkSpec",
    "SigmoidBeliefNet",
    "StructuredPredictionSBN",
    "build_model",
    "parse_spec",
]


def build_model(name: str, *, categories: int | None = None, train_mean: Tensor | None = None,
                activation: str = "tanh") -> LatentModel:
    """A model by name: an SBN spec (``200H~784V``), a structured-prediction spec (``392V-240H-240H-392V``)
    or ``categorical-vae``. ``categories`` None means the model's default (2 for specs, 10 for
    ``categorical-vae``); ``train_mean`` (D,) initialises the output bias; ``activation`` names the hidden
    nonlinearity of an SBN's ``~`` maps (``tanh``, or ``leaky_relu`` as DisARM's nonlinear models). Unknown names
    raise ValueError.
    """
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {name!r}; expected {SPEC_FORMS}")
    spec = None if name.strip() == "categorical-vae" else parse_spec(name, 2 if categories is None else categories)
    if activation != "tanh" and (spec is None or spec.structured):
        raise ValueError(f"activation {activation!r} is for sigmoid belief nets; --model {name} takes the default tanh")
    if spec is None:
        return CategoricalVAE(10 if categories is None else categories, train_mean=train_mean)
    if spec.structured:
        return StructuredPredictionSBN(spec, train_mean=train_mean)
    return SigmoidBeliefNet(spec, train_mean=train_mean, activation=activation)
