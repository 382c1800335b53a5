"""``concretelab train --estimator NAME``: the trainer's adapter over ``concretelab.estimators.layered``.

The estimators, their per-layer learning signals, baselines and running moments live in
``concretelab.estimators.layered`` (one implementation for the lab and the trainer: the lab's estimator
classes name their layered form in ``layered``). This module checks a run's flags against the estimator
(``check_estimator_config``) and builds the estimator for a model (``build_estimator_objective``): its
baseline networks are initialised from the run's seed, and the trainer adds their parameters to its Adam
optimizer (same step size) and stores the module's ``state_dict`` in the checkpoint, so a resumed run replays an
uninterrupted one bit for bit. NVIL's running moments advance on every call in training mode (once per gradient
shard: with ``grad_accum`` > 1 a later shard uses the moments of the earlier ones; under data parallelism each
rank keeps its own moments and a checkpoint stores rank 0's). ``eval()`` freezes them.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from concretelab.estimators import ESTIMATORS
from concretelab.estimators.layered import (
    DiscreteDraw,
    LayeredEstimator,
    local_signals,
    sample_draw,
)
from concretelab.models import SigmoidBeliefNet, StructuredPredictionSBN, parse_spec
from concretelab.train.resources import model_input_size

__all__ = [
    "DISCRETE_OBJECTIVE",
    "TRAINING_ESTIMATORS",
    "DiscreteDraw",
    "EstimatorObjective",
    "build_estimator_objective",
    "check_estimator_config",
    "local_signals",
    "sample_draw",
]

logger = logging.getLogger(__name__)

#: The ``--objective`` value that names the discrete objective explicitly (the default ``relaxed`` is ignored).
DISCRETE_OBJECTIVE = "discrete"

#: Estimators the trainer supports (those with a layered form), with the smallest m each needs.
TRAINING_ESTIMATORS: dict[str, int] = {
    name: cls.layered.min_samples for name, cls in sorted(ESTIMATORS.items()) if cls.layered is not None
}

#: The trainer's objective for ``--estimator NAME`` (kept under its earlier name).
EstimatorObjective = LayeredEstimator


def _per_layer(cls: type) -> bool:
    """Whether an estimator class trains every layer of a model (not only one-layer models)."""
    return cls.layered is not None and not getattr(cls.layered, "single_layer", False)


def _not_trainable_note(name: str) -> str:
    """Why a known estimator without a trainer form cannot train."""
    if name == "concrete":
        return (": the Concrete relaxation trains the relaxed objective, the default (leave --estimator unset: "
                "--objective relaxed)")
    return ""


def check_estimator_config(config: Any) -> None:
    """ValueError naming the flag when ``config`` (a TrainConfig) asks for an estimator run it cannot do.

    Rules: ``--estimator`` must be one of ``TRAINING_ESTIMATORS``; ``--samples`` at least its minimum
    (VIMCO's and the leave-one-out signals are undefined at m = 1); ``--objective`` must be unset or
    ``discrete`` (an explicit ``relaxed`` is refused, not reinterpreted); ``--model`` an SBN spec (DisARM, ARMS:
    binary). A single-layer estimator (``concretelab.estimators.one_layer``) needs a model with one stochastic
    layer, and one with adapted state refuses ``--seeds`` with more than one seed; ``concrete`` is pointed to the
    relaxed objective. ``--objective discrete`` without ``--estimator`` is an error too. A structured-prediction
    spec is accepted by NVIL, VIMCO and REINFORCE-LOO only.
    """
    name = config.estimator
    if name is None:
        if config.objective == DISCRETE_OBJECTIVE:
            raise ValueError(
                f"--objective {DISCRETE_OBJECTIVE} needs --estimator NAME (one of {', '.join(TRAINING_ESTIMATORS)})"
            )
        return
    if name not in TRAINING_ESTIMATORS:
        raise ValueError(f"--estimator {name!r} is not supported for training{_not_trainable_note(name)}; expected one "
                         f"of {', '.join(TRAINING_ESTIMATORS)}")
    if config.samples < TRAINING_ESTIMATORS[name]:
        raise ValueError(
            f"estimator {name!r} with samples={config.samples} is not supported: --estimator {name} needs "
            f"--samples >= {TRAINING_ESTIMATORS[name]} (its leave-one-out signals are undefined at m = 1; "
            "at m = 1 use --estimator nvil)"
        )
    if config.objective not in (None, DISCRETE_OBJECTIVE):
        raise ValueError(
            f"--objective {config.objective} cannot be combined with --estimator {name}: an estimator trains the "
            f"discrete objective; leave --objective unset or pass --objective {DISCRETE_OBJECTIVE}"
        )
    _check_model(name, config)


def _check_model(name: str, config: Any) -> None:
    """ValueError naming --model, --categories or --seeds when estimator ``name`` cannot train that model so."""
    try:
        spec = parse_spec(config.model, 2 if config.categories is None else config.categories)
    except ValueError as error:
        raise ValueError(
            f"--estimator {name} trains sigmoid belief nets only; --model {config.model!r} is not an SBN spec "
            f"such as 200H-784V ({error})"
        ) from error
    layered = ESTIMATORS[name].layered
    if getattr(layered, "single_layer", False) and len(spec.hidden_bits) != 1:
        raise ValueError(
            f"--estimator {name} is defined for one layer of independent variables; --model {config.model!r} has "
            f"{len(spec.hidden_bits)} stochastic layers (use a one-layer model such as 200H-784V, or an estimator with "
            f"a per-layer form: {', '.join(n for n, c in ESTIMATORS.items() if _per_layer(c))})"
        )
    if not getattr(layered, "replicable", True) and len(config.seed_list) > 1:
        raise ValueError(
            f"--estimator {name} adapts its own parameters to the variance of the whole batch, so replicas stacked "
            f"in one process (--seeds {config.seeds}) would share them and not be independent runs; train one "
            "seed per process (--seed S)"
        )
    if spec.structured and not layered.structured:
        others = ", ".join(n for n, c in ESTIMATORS.items() if c.layered is not None and c.layered.structured)
        raise ValueError(
            f"--estimator {name} trains sigmoid belief nets only; --model {config.model!r} is a "
            f"structured-prediction spec (use --estimator {others})"
        )
    if layered.binary_only and spec.categories != 2:
        raise ValueError(
            f"--estimator {name} needs a binary SBN (--categories 2); --model {config.model!r} has "
            f"categories={spec.categories}"
        )


def build_estimator_objective(name: str, model: nn.Module, *, seed: int = 0, **options: Any) -> LayeredEstimator:
    """The layered form of estimator ``name`` for ``model`` (a SigmoidBeliefNet, or a StructuredPredictionSBN
    where the estimator supports it), its baseline networks initialised from ``seed`` (the global RNG is left
    untouched), on the model's device and dtype. ``options`` go to the estimator (e.g. ``normalise`` for NVIL)."""
    cls = ESTIMATORS[name].layered if name in ESTIMATORS else None
    if cls is None:
        raise ValueError(f"estimator {name!r} is not supported for training{_not_trainable_note(name)}; expected one "
                         f"of {', '.join(TRAINING_ESTIMATORS)}")
    allowed = (SigmoidBeliefNet, StructuredPredictionSBN) if cls.structured else (SigmoidBeliefNet,)
    if not isinstance(model, allowed):
        names = " or ".join(c.__name__ for c in allowed)
        raise ValueError(f"estimator {name!r} trains {names} models, got {type(model).__name__}")
    if cls.binary_only and any(k != 2 for k in model.latent_categories):
        raise ValueError(f"estimator {name!r} needs a binary SBN, got latent_categories={model.latent_categories}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        objective = cls.for_model(model, input_width=model_input_size(model), **options)
    first = next(model.parameters())
    objective = objective.to(device=first.device, dtype=first.dtype)
    logger.info("training the discrete objective with estimator %s", name)
    return objective
