"""Training sigmoid belief nets on the discrete objective with an unbiased score-function or antithetic
gradient estimator (``concretelab train --estimator NAME``).

The latents are sampled discretely from q(h | x) layer by layer (proposal order, layer 0 next to the
pixels) and scored with log p(x, h) and log q(h | x), kept per layer. With ``log w = log p(x, h) − log q(h | x)``
an :class:`EstimatorObjective` returns, per example, a tensor whose *value* is the training bound and
whose *gradient* is the estimator's (the trainer's ``loss = −bound.mean()`` then backpropagates it):

- ``vimco`` (m >= 2, Mnih & Rezende 2016, eq. 8-10): bound L_m = log (1/m) Σ_i w_i; gradient
  Σ_i (L̂ − L̂_{−i}) ∇_φ log q(h_i | x) + Σ_i w̃_i ∇ log w_i, w̃ = softmax(log w) (their gradient of
  L_m with the leave-one-out signals). One global signal per sample (VIMCO has no per-layer form).
- ``nvil`` (any m; m = 1 is the paper's, Mnih & Gregor 2014, Sec. 3): bound (1/m) Σ_i log w_i (= L_1 at
  m = 1); generative gradient ∇_θ log p(x, h); the proposal layer l gets the *local* learning signal
  ("local learning signals") l_l = Σ_{terms of log p that involve h_l, ..., h_top} − Σ_{j >= l} log q(h_j | h_{j−1}),
  i.e. log p(h_{l−1}, h_l, ..., h_top) − log q(h_l, ..., h_top | h_{l−1}) with h_{−1} = x (the full
  log w for layer 0), centred by an input-dependent baseline c_{ψ_l}(h_{l−1}) (a 100-unit tanh MLP of x for
  layer 0, of h_{l−1} above; trained by least squares on l_l − c̄_l) and by the running mean c̄_l,
  then divided by max(1, running std s_l) (variance normalisation: on in training, as in the paper;
  it rescales layer l's proposal gradient by a positive factor from past batches, so each layer's gradient
  keeps its direction). Each of the m samples is an independent single-sample estimate; they are averaged.
- ``reinforce_loo`` (m >= 2, Kool et al. 2019): bound and generative gradient as ``nvil``; the local signal
  of each layer minus the mean of the other m − 1 samples' local signals (no learned state).
- ``disarm`` (binary SBNs, Dong, Mnih & Tucker 2020, eq. 5, applied layer by layer): for proposal layer l,
  given h_0..h_{l−1} of one sample, an antithetic pair b = 1[u < σ(a_l)], b̃ = 1[1 − u < σ(a_l)] (a_l the
  layer's proposal logits), each completed by sampling the layers above from q; the proposal gradient
  ½ (f(b) − f(b̃)) (−1)^{b̃} 1[b ≠ b̃] σ(|a_l|) with f = layer l's local signal is backpropagated through a_l.
  Layer 0's pair gives the bound and the generative gradient (averaged over its 2m samples); the first
  sample of each pair is the conditioning prefix of the next layer. Like ARM it evaluates log w twice per
  sample (the decoder runs twice); each higher layer adds two evaluations of the terms above it (no decoder).

The proposal's own pathwise term E[−∇_φ log q(h | x)] is zero and is left out for ``nvil``,
``reinforce_loo`` and ``disarm`` (as in Mnih & Gregor 2014); VIMCO keeps Σ_i w̃_i ∇ log w_i, whose
proposal part is not zero for m >= 2.

Structured prediction (``392V-240H-240H-392V``, ``vimco``, ``nvil`` and ``reinforce_loo``; not ``disarm``):
the conditional prior p_θ(h | u) is the proposal, so log q(h | x) = log p(h | u), log w = log p(y | h) and
one set of parameters is both generative and proposal. The target gradient is
∇ E_{p_θ(h|u)}[log p_θ(y | h)] = E[log p(y | h) ∇ log p(h | u)] + E[∇ log p(y | h)] (m = 1), and for VIMCO
Σ_i (L̂ − L̂_{−i}) ∇ log p(h_i | u) + Σ_i w̃_i ∇ log p(y | h_i). VIMCO's surrogate above gives exactly this:
in ∇ log w_i the prior and proposal terms of h_i cancel, leaving ∇ log p(y | h_i). For ``nvil`` and
``reinforce_loo`` the pathwise term is ∇ log w = ∇ log p(y | h) (not ∇ log p(y, h | u), which would add the
zero-mean score Σ_l ∇ log p(h_l | h_{l−1}) a second time), and every layer's local signal is log p(y | h):
the terms downstream of layer l are log p(y | h) and log p(h_j | h_{j−1}) − log q(h_j | h_{j−1}) = 0 for
j >= l (see :func:`local_signals`). The baseline networks and running moments (``nvil``) are this
module's parameters and buffers: the trainer adds the parameters to its Adam optimizer (same step size) and
stores :meth:`torch.nn.Module.state_dict` in the checkpoint, so a resumed run replays an uninterrupted one
bit for bit. The running moments advance on every call in training mode (once per gradient shard: with
``grad_accum`` > 1 a later shard uses the moments of the earlier ones; under data parallelism each rank
keeps its own moments and a checkpoint stores rank 0's). ``eval()`` freezes them.

:meth:`concretelab.estimators.GradientEstimator.estimate` stays the interface for the lab and users'
scripts (one logits tensor, one f); this module is the trainer's view of the same estimators, built from
the pieces in :mod:`concretelab.estimators.score`.

References
    [1] Mnih & Gregor, "Neural Variational Inference and Learning in Belief Networks", ICML 2014.
    [2] Mnih & Rezende, "Variational inference for Monte Carlo objectives", ICML 2016.
    [3] Kool, van Hoof & Welling, "Buy 4 REINFORCE samples, get a baseline for free!", ICLR 2019 workshop.
    [4] Dong, Mnih & Tucker, "DisARM: An Antithetic Gradient Estimator for Binary Latent Variables",
        NeurIPS 2020.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import torch
from torch import Tensor, nn

from concretelab.estimators.score import leave_one_out_baseline, surrogate_loss, vimco_signals
from concretelab.functional import sample_logistic
from concretelab.models import SigmoidBeliefNet, StructuredPredictionSBN, parse_spec
from concretelab.models.base import flat, sample_discrete
from concretelab.objectives import layer_log_prob

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

#: Estimators the trainer supports, with the smallest m each needs.
TRAINING_ESTIMATORS: dict[str, int] = {"disarm": 1, "nvil": 1, "reinforce_loo": 2, "vimco": 2}

BASELINE_HIDDEN = 100  # tanh units of each NVIL baseline network (Mnih & Gregor 2014, experiments)
MOMENT_DECAY = 0.8  # α of NVIL's running mean and variance (Mnih & Gregor 2014; as RunningMoments)


def check_estimator_config(config: Any) -> None:
    """ValueError naming the flag when ``config`` (a TrainConfig) asks for an estimator run it cannot do.

    Rules: ``--estimator`` must be one of :data:`TRAINING_ESTIMATORS`; ``--samples`` at least its minimum
    (VIMCO's and the leave-one-out signals are undefined at m = 1); ``--objective`` must be unset or
    ``discrete`` (an explicit ``relaxed`` is refused, not reinterpreted); ``--model`` an SBN spec (DisARM:
    one binary stochastic layer).
    ``--objective discrete`` without ``--estimator`` is an error too. A structured-prediction spec is
    accepted by every estimator but ``disarm``.
    """
    name = config.estimator
    if name is None:
        if config.objective == DISCRETE_OBJECTIVE:
            raise ValueError(
                f"--objective {DISCRETE_OBJECTIVE} needs --estimator NAME (one of {', '.join(TRAINING_ESTIMATORS)})"
            )
        return
    if name not in TRAINING_ESTIMATORS:
        raise ValueError(
            f"--estimator {name!r} is not supported for training; expected one of {', '.join(TRAINING_ESTIMATORS)}"
        )
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
    try:
        spec = parse_spec(config.model, 2 if config.categories is None else config.categories)
    except ValueError as error:
        raise ValueError(
            f"--estimator {name} trains sigmoid belief nets only; --model {config.model!r} is not an SBN spec "
            f"such as 200H-784V ({error})"
        ) from error
    if spec.structured and name == "disarm":
        raise ValueError(
            f"--estimator disarm trains sigmoid belief nets only; --model {config.model!r} is a "
            "structured-prediction spec (use --estimator vimco, nvil or reinforce_loo)"
        )
    if name == "disarm" and spec.categories != 2:
        raise ValueError(
            f"--estimator disarm needs a binary SBN (--categories 2); --model {config.model!r} has "
            f"categories={spec.categories}"
        )


@dataclasses.dataclass
class DiscreteDraw:
    """m discrete samples per example from q(h | x) with their log-densities kept per layer.

    h: one tensor per layer (proposal order), (m, batch, units) 0/1 or (m, batch, units, K) one-hot;
    log_q: (L, m, batch), log q(h_l | h_{l−1}) with h_{−1} = x;
    log_p: (L + 1, m, batch), [log p(x | h_0), log p(h_0 | h_1), ..., log p(h_{L−1})] (the last is the top prior).
    """

    h: list[Tensor]
    log_q: Tensor
    log_p: Tensor

    @property
    def log_weight(self) -> Tensor:
        """log w = log p(x, h) − log q(h | x), (m, batch)."""
        return self.log_p.sum(0) - self.log_q.sum(0)


def sample_draw(
    model: SigmoidBeliefNet | StructuredPredictionSBN,
    x: Tensor,
    num_samples: int,
    *,
    generator: torch.Generator | None = None,
) -> DiscreteDraw:
    """h ~ q(h | x) layer by layer and every term of log p(x, h) and log q(h | x).

    Draws the same noise, in the same order, as ``model.sample_posterior(x, num_samples, generator=...)``.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
    h: list[Tensor] = []
    log_q = []
    for i, k in enumerate(model.latent_categories):
        logits = model.proposal_logits(i, x, h)
        value = sample_discrete(k, logits, model._layer_shape(i, (num_samples, x.shape[0])), generator)
        log_q.append(layer_log_prob(k, logits, value))
        h.append(value)
    return DiscreteDraw(h, torch.stack(log_q), _log_p_terms(model, x, h))


def _log_p_terms(model: SigmoidBeliefNet | StructuredPredictionSBN, x: Tensor, h: list[Tensor]) -> Tensor:
    """(L + 1, m, batch): log p(x | h_0), then log p(h_l | h_{l+1}) for l = 0..L−1 (top: the prior).

    Structured prediction: log p(y | h_{L−1}), then log p(h_l | h_{l−1}) with h_{−1} = u (= log_q[l])."""
    terms = [model.log_likelihood(x, h)]
    for k, logits, value in zip(model.latent_categories, model.prior_logits(x, h), h, strict=True):
        terms.append(layer_log_prob(k, logits, value).expand_as(terms[0]))
    return torch.stack(terms)


def local_signals(draw: DiscreteDraw, *, proposal_is_prior: bool = False) -> Tensor:
    """NVIL's local learning signals (Mnih & Gregor 2014, "local learning signals"), (L, m, batch), detached.

    In a chain SBN the terms of log w that involve only x, h_0, ..., h_{l−1} (log p(x | h_0), log p(h_j | h_{j+1})
    for j + 1 < l, log q(h_j | h_{j−1}) for j < l) are fixed given layer l's conditioning set, so they only add
    variance to layer l's score term: l_l = Σ_{j >= l} log_p[j] − Σ_{j >= l} log_q[j]. l_0 is the full log w.

    ``proposal_is_prior`` (structured prediction, chain u → h_0 → ... → h_{L−1} → y, with the draw's layout
    of :func:`_log_p_terms`): the terms downstream of layer l are log p(y | h_{L−1}) and
    log p(h_j | h_{j−1}) − log q(h_j | h_{j−1}) for j >= l, so l_l = log_p[0] + Σ_{j >= l} (log_p[j + 1] −
    log_q[j]), which is log p(y | h) = log w for every layer (the prior and proposal terms are equal).
    """
    log_p, log_q = draw.log_p.detach(), draw.log_q.detach()
    layers = log_q.shape[0]
    if proposal_is_prior:
        return log_p[0] + (log_p[1:] - log_q).flip(0).cumsum(0).flip(0)
    p_tail = log_p.flip(0).cumsum(0).flip(0)[:layers]  # Σ_{j >= l} log_p[j], l = 0..L−1
    q_tail = log_q.flip(0).cumsum(0).flip(0)
    return p_tail - q_tail


def _baseline_net(inputs: int, hidden: int) -> nn.Module:
    """c_ψ: inputs -> hidden tanh -> 1, output layer zero so the baseline starts at 0."""
    net = nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    with torch.no_grad():
        net[2].weight.zero_()
        net[2].bias.zero_()
    return net


def _magic(value: Tensor, gradient_of: Tensor) -> Tensor:
    """A tensor equal to ``value`` (detached) whose gradient is that of ``gradient_of``."""
    return value.detach() + (gradient_of - gradient_of.detach())


class EstimatorObjective(nn.Module):
    """The trainer's objective for ``--estimator NAME``: called like the relaxed objectives,
    ``obj(model, x, *, samples, generator=None, **ignored) -> (batch,)``; the value is the training bound
    (L_m for ``vimco``, the mean of the m single-sample log-weights otherwise), the gradient the estimator's.

    Args:
        name: one of :data:`TRAINING_ESTIMATORS`.
        model: the SigmoidBeliefNet or StructuredPredictionSBN (not for ``disarm``) it will train (sizes the
            baselines; checked for the estimator).
        normalise: ``nvil`` divides each layer's signal by max(1, running std) (default True, as in the paper).
        baseline_hidden: tanh units of each NVIL baseline network.
        decay: α of NVIL's running moments.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        *,
        normalise: bool = True,
        baseline_hidden: int = BASELINE_HIDDEN,
        decay: float = MOMENT_DECAY,
    ) -> None:
        super().__init__()
        if name not in TRAINING_ESTIMATORS:
            raise ValueError(f"estimator {name!r} is not supported for training; expected one of "
                             f"{', '.join(TRAINING_ESTIMATORS)}")
        if not isinstance(model, (SigmoidBeliefNet, StructuredPredictionSBN)) or (
            name == "disarm" and not isinstance(model, SigmoidBeliefNet)
        ):
            allowed = "SigmoidBeliefNet" + ("" if name == "disarm" else " or StructuredPredictionSBN")
            raise ValueError(f"estimator {name!r} trains {allowed} models, got {type(model).__name__}")
        if name == "disarm" and any(k != 2 for k in model.latent_categories):
            raise ValueError(
                f"estimator 'disarm' needs a binary SBN, got latent_categories={model.latent_categories}"
            )
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        if isinstance(baseline_hidden, bool) or not isinstance(baseline_hidden, int) or baseline_hidden < 1:
            raise ValueError(f"baseline_hidden must be an integer >= 1, got {baseline_hidden!r}")
        self.name = name
        self.normalise = bool(normalise)
        self.decay = float(decay)
        layers = len(model.latent_categories)
        self.baselines = nn.ModuleList()
        if name == "nvil":
            # layer 0's baseline sees the whole x (for structured prediction y too: fixed, not sampled)
            x_width = model.visible if isinstance(model, SigmoidBeliefNet) else model.upper + model.lower
            widths = [x_width] + [
                u if k == 2 else u * k
                for u, k in zip(model.latent_units[:-1], model.latent_categories[:-1], strict=True)
            ]
            self.baselines.extend(_baseline_net(w, baseline_hidden) for w in widths)
        # NVIL's running mean c̄_l and variance s_l² of l_l − c_ψ, on the device: no host sync
        self.register_buffer("moment_mean", torch.zeros(layers))
        self.register_buffer("moment_var", torch.ones(layers))
        self.register_buffer("moment_count", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, normalise={self.normalise}, decay={self.decay}"

    def forward(
        self,
        model: SigmoidBeliefNet | StructuredPredictionSBN,
        x: Tensor,
        *,
        samples: int,
        generator: torch.Generator | None = None,
        **ignored: Any,
    ) -> Tensor:
        """Per-example bound (batch,) carrying the estimator's gradient (temperatures are ignored)."""
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < TRAINING_ESTIMATORS[self.name]:
            raise ValueError(
                f"samples must be an integer >= {TRAINING_ESTIMATORS[self.name]} for estimator {self.name!r}, "
                f"got {samples!r}"
            )
        if not isinstance(x, Tensor) or x.dim() != 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a (batch, D) tensor, got {shape}")
        if self.name == "disarm":
            return self._disarm(model, x, samples, generator)
        draw = sample_draw(model, x, samples, generator=generator)
        if self.name == "vimco":
            return self._vimco(draw)
        log_w = draw.log_weight.detach()  # (m, batch)
        structured = isinstance(model, StructuredPredictionSBN)
        local = local_signals(draw, proposal_is_prior=structured)  # (L, m, batch)
        if self.name == "reinforce_loo":
            signal = local - leave_one_out_baseline(local, dim=1)
            extra = torch.zeros_like(log_w[0])
        else:
            signal, extra = self._nvil_signal(model, draw, x, local)
        # generative: ∇θ log p(x, h); proposal: Σ_l signal_l ∇φ log q(h_l | h_{l−1})  (mean over the m samples).
        # Structured prediction: ∇ log w = ∇ log p(y | h) (the prior's score is already the proposal's)
        pathwise = draw.log_weight if structured else draw.log_p.sum(0)
        surrogate = (pathwise + surrogate_loss(draw.log_q, signal).sum(0)).mean(0)  # (batch,)
        return _magic(log_w.mean(0), surrogate - extra)

    def _vimco(self, draw: DiscreteDraw) -> Tensor:
        log_w = draw.log_weight  # (m, batch), differentiable in θ and φ at the fixed h
        signal, _ = vimco_signals(log_w.detach(), dim=0)  # (m, batch), L̂ − L̂_{−i}
        bound = torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])  # L_m; its gradient is Σ w̃_i ∇ log w_i
        surrogate = bound + surrogate_loss(draw.log_q.sum(0), signal).sum(0)
        return _magic(bound, surrogate)

    def _nvil_signal(
        self, model: SigmoidBeliefNet | StructuredPredictionSBN, draw: DiscreteDraw, x: Tensor, local: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(l_l − c_ψl − c̄_l) / max(1, s_l), (L, m, batch); the baselines' least-squares loss per example
        (batch,); advances the running moments in training mode (after computing the signal)."""
        # layer l's baseline sees its conditioning input: x for layer 0, h_{l−1} above (sampled before h_l)
        inputs = [x] + [flat(v, k) for v, k in zip(draw.h[:-1], model.latent_categories[:-1], strict=True)]
        baseline = torch.stack([
            net(inp.to(net[0].weight.dtype)).squeeze(-1).to(local.dtype).expand_as(local[0])
            for net, inp in zip(self.baselines, inputs, strict=True)
        ])  # (L, m, batch)
        mean = self.moment_mean.to(local.dtype).reshape(-1, 1, 1)
        centred = local - baseline.detach() - mean
        if self.normalise:
            centred = centred / self.moment_var.to(local.dtype).sqrt().clamp(min=1.0).reshape(-1, 1, 1)
        regression = (local - mean - baseline).pow(2).sum(0).mean(0)  # (batch,), Σ_l mean_i (l − c̄ − c_ψ)²
        if self.training:
            self._update_moments((local - baseline.detach()).flatten(1))
        return centred, regression

    @torch.no_grad()
    def _update_moments(self, residual: Tensor) -> None:
        """c̄ ← α c̄ + (1 − α) mean, s² ← α s² + (1 − α) var per layer; the first batch sets them."""
        mean = residual.mean(1).to(self.moment_mean.dtype)
        var = residual.var(1, unbiased=False).to(self.moment_var.dtype) if residual.shape[1] > 1 else (
            torch.zeros_like(mean))
        first = self.moment_count == 0
        a = self.decay
        self.moment_mean.copy_(torch.where(first, mean, a * self.moment_mean + (1 - a) * mean))
        self.moment_var.copy_(torch.where(first, var, a * self.moment_var + (1 - a) * var))
        self.moment_count.add_(1)

    def _disarm(self, model: SigmoidBeliefNet, x: Tensor, m: int, generator: torch.Generator | None) -> Tensor:
        batch = x.shape[0]
        trunk: list[Tensor] = []  # h_0..h_{l−1} of the first sample of each pair, (m, batch, units)
        surrogate = x.new_zeros(batch)
        bound = x.new_zeros(batch)
        for layer in range(len(model.latent_categories)):
            a = model.proposal_logits(layer, x, trunk)  # (batch, units) for layer 0, else (m, batch, units)
            shape = (m, batch, model.latent_units[layer])
            # decided in float64, so no state is drawn more often than its probability (functional.sample_bernoulli)
            noise = sample_logistic(shape, generator=generator, dtype=torch.float64, device=a.device)
            a64 = a.detach().to(torch.float64)
            b = (a64 - noise > 0).to(a.dtype)  # 1[u < σ(a)], (m, batch, units)
            b_anti = (a64 + noise > 0).to(a.dtype)  # 1[1 − u < σ(a)]
            h = [torch.cat([t, t]) for t in trunk] + [torch.cat([b, b_anti])]  # (2m, batch, ...) per layer
            for i in range(layer + 1, len(model.latent_categories)):  # complete each branch from q
                h.append(sample_discrete(2, model.proposal_logits(i, x, h), (2 * m, batch, model.latent_units[i]),
                                         generator))
            log_q = torch.stack([layer_log_prob(2, model.proposal_logits(i, x, h[:i]), h[i])
                                 for i in range(layer, len(h))]).sum(0)  # Σ_{j >= l} log q(h_j | h_{j−1})
            if layer == 0:
                log_p = model.log_joint(x, h)  # (2m, batch); the generative gradient, both branches
                f = (log_p - log_q).detach()  # the full log w
                surrogate = surrogate + log_p.mean(0)
                bound = f.mean(0)
            else:  # local signal: the terms of log p that involve h_l, ..., h_top (no decoder)
                prior = model.prior_logits(x, h)
                log_p_upper = torch.stack([layer_log_prob(2, prior[i], h[i]).expand_as(log_q)
                                           for i in range(layer - 1, len(h))]).sum(0)
                f = (log_p_upper - log_q).detach()
            half_diff = 0.5 * (f[:m] - f[m:]).unsqueeze(-1)  # (m, batch, 1)
            grad_a = half_diff * (1 - 2 * b_anti) * (b != b_anti).to(a.dtype) * torch.sigmoid(a.detach().abs())
            surrogate = surrogate + (grad_a * a).sum(-1).mean(0)  # (batch,)
            trunk.append(b)
        return _magic(bound, surrogate)


def build_estimator_objective(name: str, model: nn.Module, *, seed: int = 0, **options: Any) -> EstimatorObjective:
    """An :class:`EstimatorObjective` whose baseline networks are initialised from ``seed`` (the global RNG
    is left untouched), on the model's device and dtype."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        objective = EstimatorObjective(name, model, **options)
    first = next(model.parameters())
    objective = objective.to(device=first.device, dtype=first.dtype)
    logger.info("training the discrete objective with estimator %s", name)
    return objective
