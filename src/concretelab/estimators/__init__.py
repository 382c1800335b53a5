r"""Gradient estimators for discrete random variables, behind one interface, and an exact reference.

Every estimator estimates $g(\theta) = \partial / \partial\theta\, \mathbb{E}_{b \sim p_\theta}[f(b)]$ for a factorised
Bernoulli (``family="bernoulli"``, $b \in \{0, 1\}$ shaped like the logits) or categorical
(``family="categorical"``, logits (..., K), b one-hot) distribution given by logits $\theta$ (VIMCO: the gradient of
$\log \operatorname{mean}_k \exp f(b^k)$ over its samples):

    est = get_estimator("rebar", family="bernoulli", temperature=0.5)
    grad = est.estimate(f, logits, num_samples=16, generator=gen)            # shaped like logits
    draws = est.per_draw(f, logits, num_samples=1, num_draws=1000)            # (1000, *logits.shape)
    exact = exact_gradient(f, logits)                                          # enumeration, <= 2**20 states

``f`` maps a batch (M, *logits.shape) to (M,), row by row, or, for logits that hold a batch of independent
examples, to one value per example (M, *batch), so that each example is scored against its own value (every
estimator; see ``concretelab.estimators._base``). ``estimate(..., reduce=False)`` returns the
draws whose mean is the estimate: one per sample for single-sample estimators, one row for the
multi-sample ones (``reinforce_loo``, ``vimco``, ``arms``), whose draw is the whole set of ``num_samples`` samples.
``per_draw`` returns independent estimates, each from ``num_samples`` samples, for variance and SNR.

Each class has ``name``, ``families``, ``unbiased``, ``evaluations_per_sample`` (None for ``indecater``, whose
count grows with the number of variables: ``est.evaluations(logits)`` gives it for any estimator),
``differentiable_f`` (f differentiated: called at relaxed points by ``concrete``, ``rebar`` and ``relax``, and
differentiated at the exact samples by ``double_cv`` and ``rodeo``), ``multi_sample``, ``min_samples`` and
``stateful``. Stateful estimators (``reinforce``'s moving-average baseline, ``nvil``'s baseline network,
``rebar``'s η and λ, ``relax``'s control variate, ``double_cv``'s α, ``rodeo``'s α and β) adapt their parameters
after every call to ``estimate``/``per_draw``, using only past draws for the current estimate
(``rebar``/``relax``/``double_cv``/``rodeo`` use them in the current estimate too, which keeps it unbiased since
any control variate does); ``reset()`` restores their initial state and their initialisation is seeded.

Supported combinations (an unsupported one raises ValueError at ``get_estimator``):

| name | bernoulli | categorical | unbiased | f-evaluations per sample |
|---|---|---|---|---|
| `reinforce` | yes | yes | yes | 1 |
| `reinforce_loo` | yes | yes | yes | 1 (num_samples >= 2) |
| `nvil` | yes | yes | yes | 1 |
| `vimco` | yes | yes | yes* | 1 (num_samples >= 2; *multi-sample objective) |
| `straight_through` | yes | yes | no | 1 (+ backward through f) |
| `st_gumbel` | yes | yes | no | 1 (+ backward) |
| `gumbel_rao` | yes | yes | no | 1 (+ backward; M inner noise samples) |
| `reinmax` | yes | yes | no | 1 (+ backward) |
| `concrete` | yes | yes | no | 1 at a relaxed point (+ backward) |
| `rebar` | yes | yes | yes | 3 (+ double backward when adapting) |
| `relax` | yes | yes | yes | 3 (+ double backward when adapting) |
| `arm` | yes | no | yes | 2 |
| `disarm` | yes | no | yes | 2 |
| `arms` | yes | no | yes | 1 (num_samples >= 2, copula-coupled) |
| `indecater` | yes | yes | yes | 1 + n (K − 1) for n variables of K categories |
| `double_cv` | yes | no | yes | 1 + backward (num_samples >= 2) |
| `rodeo` | yes | no | yes | 1 + backward (num_samples >= 2) |

ARM, DisARM and ARMS are binary only (their categorical generalisations ARSM and U2G are not implemented); so are
``double_cv`` and ``rodeo``, whose control variates here are written for binary variables (the papers' categorical
forms are not implemented). ``indecater`` takes both families.

The score-function pieces (log-probabilities, scores, leave-one-out and VIMCO signals, NVIL's running
moments and ``surrogate_loss``) are in `concretelab.estimators.score` for trainers that need
per-example learning signals and layer-wise baselines.
"""

from __future__ import annotations

import inspect
from typing import Any

from concretelab.estimators._base import FAMILIES, GradientEstimator, MultiSampleEstimator, SingleSampleEstimator
from concretelab.estimators.arm import ARM
from concretelab.estimators.arms import ARMS
from concretelab.estimators.concrete import Concrete
from concretelab.estimators.disarm import DisARM
from concretelab.estimators.double_cv import DoubleCV
from concretelab.estimators.exact import (
    MAX_STATES,
    exact_expectation,
    exact_gradient,
    exact_multisample_gradient,
)
from concretelab.estimators.gumbel_rao import GumbelRao
from concretelab.estimators.indecater import IndeCateR
from concretelab.estimators.layered import (
    LayeredDisARM,
    LayeredEstimator,
    LayeredNVIL,
    LayeredReinforceLOO,
    LayeredVIMCO,
)
from concretelab.estimators.nvil import NVIL
from concretelab.estimators.one_layer import ONE_LAYER, OneLayerEstimator, one_layer_form
from concretelab.estimators.rebar import REBAR
from concretelab.estimators.reinforce import Reinforce
from concretelab.estimators.reinforce_loo import ReinforceLOO
from concretelab.estimators.reinmax import ReinMax
from concretelab.estimators.relax import RELAX
from concretelab.estimators.rodeo import RODEO
from concretelab.estimators.st_gumbel import STGumbel
from concretelab.estimators.straight_through import StraightThrough
from concretelab.estimators.vimco import VIMCO

__all__ = [
    "ARM",
    "ARMS",
    "ESTIMATORS",
    "FAMILIES",
    "MAX_STATES",
    "NVIL",
    "REBAR",
    "RELAX",
    "RODEO",
    "VIMCO",
    "Concrete",
    "DisARM",
    "DoubleCV",
    "GradientEstimator",
    "GumbelRao",
    "IndeCateR",
    "LayeredDisARM",
    "LayeredEstimator",
    "LayeredNVIL",
    "LayeredReinforceLOO",
    "LayeredVIMCO",
    "MultiSampleEstimator",
    "OneLayerEstimator",
    "ReinMax",
    "Reinforce",
    "ReinforceLOO",
    "STGumbel",
    "SingleSampleEstimator",
    "StraightThrough",
    "estimator_options",
    "exact_expectation",
    "exact_gradient",
    "exact_multisample_gradient",
    "get_estimator",
]

ESTIMATORS: dict[str, type[GradientEstimator]] = {
    cls.name: cls
    for cls in (
        Reinforce,
        ReinforceLOO,
        NVIL,
        VIMCO,
        StraightThrough,
        STGumbel,
        GumbelRao,
        ReinMax,
        Concrete,
        REBAR,
        RELAX,
        ARM,
        DisARM,
        ARMS,
        IndeCateR,
        DoubleCV,
        RODEO,
    )
}


# The estimators defined for one layer of independent variables train a model with one stochastic layer through
# their one-layer form (``concretelab.estimators.one_layer``); the others name their per-layer form in the class.
for _name in ONE_LAYER:
    ESTIMATORS[_name].layered = one_layer_form(ESTIMATORS[_name])


def estimator_options(name: str) -> dict[str, Any]:
    """The keyword options of estimator ``name`` with their defaults (``family`` excluded)."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; expected one of {sorted(ESTIMATORS)}")
    params = inspect.signature(ESTIMATORS[name].__init__).parameters
    return {k: p.default for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def get_estimator(name: str, family: str = "bernoulli", **options: Any) -> GradientEstimator:
    """A new estimator ``name`` for ``family`` with the given options (see ``estimator_options(name)``)."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; expected one of {sorted(ESTIMATORS)}")
    allowed = estimator_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"estimator {name!r} got unknown option(s) {unknown}; its options are {sorted(allowed) or 'none'}"
        )
    return ESTIMATORS[name](family, **options)
