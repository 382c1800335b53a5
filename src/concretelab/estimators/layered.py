"""The estimators applied layer by layer to a discrete-latent model: what ``concretelab train --estimator NAME``
trains with. The same estimators as the lab's (``concretelab.estimators``), with the features a model needs:
per-layer learning signals, input-dependent baselines per layer and running moments per layer.

Each class is a module called like the relaxed objectives, ``est(model, x, *, samples, generator=None) ->
(batch,)``: the value is the training bound (L_m for VIMCO, the mean of the m single-sample log-weights
otherwise) and the gradient is the estimator's. The model needs the relaxed and discrete protocols
(``concretelab.objectives.RelaxedModel``, ``DiscreteModel``); a model with
``proposal_is_prior = True`` (structured prediction) is handled as below. Layers are in proposal order (0 next
to the data). With ``log w = log p(x, h) − log q(h | x)``:

- ``LayeredVIMCO`` (m >= 2, Mnih & Rezende 2016, eq. 8-10): L_m = log (1/m) Σ_i w_i; gradient
  Σ_i (L̂ − L̂_{−i}) ∇_φ log q(h_i | x) + Σ_i w̃_i ∇ log w_i (``vimco_signals``).
  One global signal per sample (VIMCO has no per-layer form).
- ``LayeredNVIL`` (any m; Mnih & Gregor 2014, Sec. 3): generative gradient ∇_θ log p(x, h); proposal layer
  l gets its *local* learning signal l_l (``local_signals``), centred by a baseline network c_ψl of its
  conditioning input (x for layer 0, h_{l−1} above) and by the running mean c̄_l, divided by max(1, s_l)
  (``RunningMoments``, one pair per layer, advanced in training mode only).
- ``LayeredReinforceLOO`` (m >= 2, Kool et al. 2019): as NVIL, with the mean of the other m − 1 samples'
  local signals as the baseline (``leave_one_out_baseline``).
- ``LayeredDisARM`` (binary layers, Dong, Mnih & Tucker 2020, eq. 5, per layer): for layer l, the antithetic
  pair of ``logistic_pair`` given one sample's layers below, each branch
  completed from q; the gradient ½ (f(b) − f(b̃)) ``disarm_weight`` with f
  the layer's local signal is backpropagated through the layer's logits. Layer 0's pair gives the bound and the
  generative gradient (over its 2m samples).
- ``LayeredARMS`` (binary layers, m = K >= 2; Dimitriev & Zhou 2021): as DisARM, with the pair replaced by K
  samples of layer l coupled by the Dirichlet copula (``dirichlet_copula_bernoulli``)
  given one trunk h_0..h_{l−1} per example, each branch completed from q, and the gradient
  1/(1 − ρ) ⊙ (1/(K − 1)) Σ_k (f_k − f̄)(b^k − σ(a)) (``arms_weight``) with f the
  layer's local signal. Layer 0's K samples give the bound and the generative gradient.

The proposal's own pathwise term E[−∇_φ log q(h | x)] is zero and is left out for NVIL, REINFORCE-LOO, DisARM
and ARMS (as in Mnih & Gregor 2014); VIMCO keeps Σ_i w̃_i ∇ log w_i, whose proposal part is not zero for m >= 2.

Structured prediction (``proposal_is_prior``): log q(h | u) = log p(h | u), log w = log p(y | h), and one set of
parameters is both generative and proposal; the pathwise term is ∇ log w = ∇ log p(y | h) and every layer's
local signal is log p(y | h) (the prior and proposal terms downstream of a layer cancel).

References
    [1] Mnih & Gregor, "Neural Variational Inference and Learning in Belief Networks", ICML 2014.
    [2] Mnih & Rezende, "Variational inference for Monte Carlo objectives", ICML 2016.
    [3] Kool, van Hoof & Welling, "Buy 4 REINFORCE samples, get a baseline for free!", ICLR 2019 workshop.
    [4] Dong, Mnih & Tucker, "DisARM: An Antithetic Gradient Estimator for Binary Latent Variables",
        NeurIPS 2020.
    [5] Dimitriev & Zhou, "ARMS: Antithetic-REINFORCE-Multi-Sample Gradient for Binary Variables", ICML 2021.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from concretelab.checks import check_int
from concretelab.estimators._base import arms_weight, dirichlet_copula_bernoulli, disarm_weight, logistic_pair
from concretelab.estimators.score import RunningMoments, leave_one_out_baseline, surrogate_loss, vimco_signals
from concretelab.functional import sample_discrete
from concretelab.objectives import layer_log_prob
from concretelab.objectives.protocols import DiscreteModel, RelaxedModel

__all__ = [
    "DiscreteDraw",
    "LayeredARMS",
    "LayeredDisARM",
    "LayeredEstimator",
    "LayeredNVIL",
    "LayeredReinforceLOO",
    "LayeredVIMCO",
    "local_signals",
    "sample_draw",
]

BASELINE_HIDDEN = 100  # tanh units of each NVIL baseline network (Mnih & Gregor 2014, experiments)
MOMENT_DECAY = 0.8  # α of NVIL's running mean and variance (Mnih & Gregor 2014)


class _Model(RelaxedModel, DiscreteModel):  # type: ignore[misc]
    """Both protocols (for the type hints only)."""


@dataclasses.dataclass
class DiscreteDraw:
    """m discrete samples per example from q(h | x) with their log-densities kept per layer.

    h: one tensor per layer (proposal order), (m, batch, units) 0/1 or (m, batch, units, K) one-hot;
    log_q: (L, m, batch), log q(h_l | h_{l−1}) with h_{−1} = x;
    log_p: (L + 1, m, batch), [log p(x | h_0), log p(h_0 | h_1), ..., log p(h_{L−1})] (the last is the top prior;
    for structured prediction log p(y | h_{L−1}), then log p(h_l | h_{l−1}) with h_{−1} = u).
    """

    h: list[Tensor]
    log_q: Tensor
    log_p: Tensor

    @property
    def log_weight(self) -> Tensor:
        """log w = log p(x, h) − log q(h | x), (m, batch)."""
        return self.log_p.sum(0) - self.log_q.sum(0)


def _draw_layer(model: _Model, i: int, x: Tensor, h: Sequence[Tensor], num: int, generator: torch.Generator | None
                ) -> tuple[Tensor, Tensor]:
    """Layer i of the proposal given the layers below: its logits and ``num`` discrete draws per example."""
    categories = model.latent_categories[i]
    logits = model.proposal_logits(i, x, h)
    tail = logits.shape[-2:] if categories == 2 else logits.shape[-3:]  # (batch, units[, K])
    return logits, sample_discrete(categories, logits, (num, *tail), generator)


def sample_draw(model: _Model, x: Tensor, num_samples: int, *, generator: torch.Generator | None = None
                ) -> DiscreteDraw:
    """h ~ q(h | x) layer by layer and every term of log p(x, h) and log q(h | x).

    Draws the same noise, in the same order, as ``model.sample_posterior(x, num_samples, generator=...)`` of the
    built-in models."""
    check_int("num_samples", num_samples, 1)
    h: list[Tensor] = []
    log_q = []
    for i, k in enumerate(model.latent_categories):
        logits, value = _draw_layer(model, i, x, h, num_samples, generator)
        log_q.append(layer_log_prob(k, logits, value))
        h.append(value)
    terms = [model.log_likelihood(x, h)]
    for k, logits, value in zip(model.latent_categories, model.prior_logits(x, h), h, strict=True):
        terms.append(layer_log_prob(k, logits, value).expand_as(terms[0]))
    return DiscreteDraw(h, torch.stack(log_q), torch.stack(terms))


def local_signals(draw: DiscreteDraw, *, proposal_is_prior: bool = False) -> Tensor:
    """NVIL's local learning signals (Mnih & Gregor 2014, "local learning signals"), (L, m, batch), detached.

    In a chain the terms of log w that involve only x, h_0, ..., h_{l−1} are fixed given layer l's conditioning
    set, so they only add variance to layer l's score term: l_l = Σ_{j >= l} log_p[j] − Σ_{j >= l} log_q[j];
    l_0 is the full log w. ``proposal_is_prior`` (chain u → h_0 → ... → h_{L−1} → y): the terms downstream of
    layer l are log p(y | h_{L−1}) and log p(h_j | h_{j−1}) − log q(h_j | h_{j−1}) for j >= l, so
    l_l = log_p[0] + Σ_{j >= l} (log_p[j + 1] − log_q[j]), which is log p(y | h) = log w for every layer.
    """
    log_p, log_q = draw.log_p.detach(), draw.log_q.detach()
    if proposal_is_prior:
        return log_p[0] + (log_p[1:] - log_q).flip(0).cumsum(0).flip(0)
    p_tail = log_p.flip(0).cumsum(0).flip(0)[: log_q.shape[0]]  # Σ_{j >= l} log_p[j], l = 0..L−1
    return p_tail - log_q.flip(0).cumsum(0).flip(0)


def _value_with_gradient_of(value: Tensor, gradient_of: Tensor) -> Tensor:
    """A tensor equal to ``value`` (detached) whose gradient is that of ``gradient_of``."""
    return value.detach() + (gradient_of - gradient_of.detach())


class LayeredEstimator(nn.Module):
    """An estimator applied layer by layer to a model; subclasses implement
    [`estimate`][concretelab.estimators.LayeredEstimator.estimate].

    ``min_samples``: the smallest m it is defined for; ``binary_only``: it needs binary layers;
    ``structured``: it supports ``proposal_is_prior`` models."""

    min_samples: ClassVar[int] = 1
    binary_only: ClassVar[bool] = False
    structured: ClassVar[bool] = True

    @classmethod
    def for_model(cls, model: _Model, *, input_width: int, **options: Any) -> LayeredEstimator:
        """The estimator sized for ``model`` whose data rows have ``input_width`` entries (options as the
        class takes them)."""
        return cls(**options)

    def forward(self, model: _Model, x: Tensor, *, samples: int, generator: torch.Generator | None = None,
                **ignored: Any) -> Tensor:
        """Per-example bound (batch,) carrying the estimator's gradient (temperatures are ignored)."""
        check_int("samples", samples, self.min_samples)
        if not isinstance(x, Tensor) or x.dim() != 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a (batch, D) tensor, got {shape}")
        return self.estimate(model, x, samples, generator)

    def estimate(self, model: _Model, x: Tensor, samples: int, generator: torch.Generator | None
                 ) -> Tensor:  # pragma: no cover - every estimator overrides it
        raise NotImplementedError


class LayeredVIMCO(LayeredEstimator):
    """VIMCO on a model's latents (m >= 2): one leave-one-out signal per sample for every proposal layer."""

    min_samples = 2

    def estimate(self, model: _Model, x: Tensor, samples: int, generator: torch.Generator | None) -> Tensor:
        draw = sample_draw(model, x, samples, generator=generator)
        log_w = draw.log_weight  # (m, batch), differentiable in θ and φ at the fixed h
        signal, _ = vimco_signals(log_w.detach(), dim=0)  # (m, batch), L̂ − L̂_{−i}
        bound = torch.logsumexp(log_w, dim=0) - math.log(samples)  # L_m; its gradient is Σ w̃_i ∇ log w_i
        return _value_with_gradient_of(bound, bound + surrogate_loss(draw.log_q.sum(0), signal).sum(0))


class _LocalSignalEstimator(LayeredEstimator):
    """Score-function estimators with a local signal per layer: the generative gradient ∇ log p(x, h) (for
    structured prediction ∇ log w), and Σ_l signal_l ∇ log q(h_l | h_{l−1}), averaged over the m samples."""

    def signal(self, model: _Model, draw: DiscreteDraw, x: Tensor, local: Tensor) -> tuple[Tensor, Tensor]:
        """(centred signal (L, m, batch), a per-example loss of the estimator's own parameters (batch,))."""
        raise NotImplementedError  # pragma: no cover

    def estimate(self, model: _Model, x: Tensor, samples: int, generator: torch.Generator | None) -> Tensor:
        draw = sample_draw(model, x, samples, generator=generator)
        structured = bool(getattr(model, "proposal_is_prior", False))
        signal, own_loss = self.signal(model, draw, x, local_signals(draw, proposal_is_prior=structured))
        pathwise = draw.log_weight if structured else draw.log_p.sum(0)
        surrogate = (pathwise + surrogate_loss(draw.log_q, signal).sum(0)).mean(0)  # (batch,)
        return _value_with_gradient_of(draw.log_weight.detach().mean(0), surrogate - own_loss)


class LayeredReinforceLOO(_LocalSignalEstimator):
    """REINFORCE with the leave-one-out baseline, per layer (m >= 2)."""

    min_samples = 2

    def signal(self, model: _Model, draw: DiscreteDraw, x: Tensor, local: Tensor) -> tuple[Tensor, Tensor]:
        return local - leave_one_out_baseline(local, dim=1), torch.zeros_like(local[0, 0])


def _baseline_net(inputs: int, hidden: int) -> nn.Module:
    """c_ψ: inputs -> hidden tanh -> 1, output layer zero so the baseline starts at 0."""
    net = nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    with torch.no_grad():
        net[2].weight.zero_()
        net[2].bias.zero_()
    return net


class LayeredNVIL(_LocalSignalEstimator):
    """NVIL per layer: a baseline network and running moments per layer.

    Args:
        input_widths: the width of each layer's conditioning input (x's for layer 0, the flattened layer below
            for the others); one baseline network each.
        normalise: divide each layer's signal by max(1, running std) (default True, as in the paper).
        baseline_hidden: tanh units of each baseline network.
        decay: α of the running moments.
    """

    def __init__(self, input_widths: Sequence[int], *, normalise: bool = True, baseline_hidden: int = BASELINE_HIDDEN,
                 decay: float = MOMENT_DECAY) -> None:
        super().__init__()
        check_int("baseline_hidden", baseline_hidden, 1)
        self.normalise = bool(normalise)
        self.baselines = nn.ModuleList(_baseline_net(int(w), baseline_hidden) for w in input_widths)
        self.moments = RunningMoments(decay, groups=len(self.baselines))

    @classmethod
    def for_model(cls, model: _Model, *, input_width: int, **options: Any) -> LayeredNVIL:
        """One baseline for each proposal layer: of x (``input_width``) for layer 0, of the layer below for the
        others (the model's ``latent_units``, times K for a K-ary layer)."""
        units, categories = getattr(model, "latent_units", None), model.latent_categories
        if units is None:
            raise ValueError("NVIL sizes a baseline per layer from the model's latent_units, which it does not have")
        below = [u if k == 2 else u * k for u, k in zip(units[:-1], categories[:-1], strict=True)]
        return cls([input_width, *below], **options)

    def extra_repr(self) -> str:
        return f"normalise={self.normalise}, decay={self.moments.decay}"

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # checkpoints written before the moments became a RunningMoments module keep them as moment_*
        for old in ("mean", "var", "count"):
            if prefix + "moment_" + old in state_dict:
                state_dict[prefix + "moments." + old] = state_dict.pop(prefix + "moment_" + old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def signal(self, model: _Model, draw: DiscreteDraw, x: Tensor, local: Tensor) -> tuple[Tensor, Tensor]:
        """(l_l − c_ψl − c̄_l) / max(1, s_l), and the baselines' least-squares loss Σ_l mean_i (l − c̄ − c_ψ)²;
        advances the running moments in training mode (after computing the signal)."""
        inputs = [x] + [v if k == 2 else v.flatten(-2)  # layer l's conditioning input, as the networks take it
                        for v, k in zip(draw.h[:-1], model.latent_categories[:-1], strict=True)]
        baseline = torch.stack([
            net(inp.to(net[0].weight.dtype)).squeeze(-1).to(local.dtype).expand_as(local[0])
            for net, inp in zip(self.baselines, inputs, strict=True)
        ])  # (L, m, batch)
        replicas = getattr(self, "replicas", 1)
        if replicas > 1:  # stacked replicas: moments (R, L), rows replica-major, each replica's own moments
            return self._replica_signal(local, baseline, replicas)
        mean = self.moments.mean.to(local.dtype).reshape(-1, 1, 1)
        centred = local - baseline.detach() - mean
        if self.normalise:
            centred = centred / self.moments.scale().to(local.dtype).reshape(-1, 1, 1)
        regression = (local - mean - baseline).pow(2).sum(0).mean(0)
        if self.training:
            self.moments.update((local - baseline.detach()).flatten(1))
        return centred, regression

    def _replica_signal(self, local: Tensor, baseline: Tensor, replicas: int) -> tuple[Tensor, Tensor]:
        """``signal`` for R replicas stacked by ``concretelab.train.replicas.stack_replicas``: the batch is R
        blocks of rows, and replica r's signal is centred and scaled by replica r's moments, which only its own
        rows update (moments of shape (R, L))."""
        layers, samples, rows = local.shape
        per_replica = (layers, samples, replicas, rows // replicas)  # (L, m, R, b)
        mean = self.moments.mean.t().to(local.dtype).reshape(layers, 1, replicas, 1)
        centred = local.view(per_replica) - baseline.detach().view(per_replica) - mean
        if self.normalise:
            centred = centred / self.moments.scale().t().to(local.dtype).reshape(layers, 1, replicas, 1)
        regression = (local.view(per_replica) - mean - baseline.view(per_replica)).pow(2).sum(0).mean(0)
        if self.training:  # (R, L, m b): each replica's groups, in the order of its moments
            self.moments.update((local - baseline.detach()).view(per_replica).permute(2, 0, 1, 3))
        return centred.reshape(local.shape), regression.reshape(rows)


def _branch_signals(model: _Model, x: Tensor, h: list[Tensor], layer: int, width: int,
                    generator: torch.Generator | None, logits: Tensor) -> tuple[Tensor, Tensor | None]:
    """Complete each of ``width`` branches (h holds layers 0..``layer``, each (width, batch, ...)) from q above
    ``layer``, and return each branch's learning signal for the layer, (width, batch), detached: at layer 0 the full
    log w = log p(x, h) − log q(h | x), returned with log p(x, h) for the generative gradient; above it the local
    signal, the terms of log p that involve h_layer, ..., h_top (no decoder) less Σ_{j >= layer} log q(h_j | h_{j−1}),
    and None. ``logits`` are q's logits of ``layer`` given the branches' layers below it, which the caller has
    computed already (shaped to broadcast against h[layer]): each layer's log q uses the logits its draw used, with
    no second pass of its encoder."""
    layers = len(model.latent_categories)
    drawn = {layer: logits}  # q's logits of each layer from ``layer`` up, given the branches below it
    for i in range(layer + 1, layers):
        drawn[i], value = _draw_layer(model, i, x, h, width, generator)
        h.append(value)
    log_q = torch.stack([layer_log_prob(2, drawn[i], h[i])
                         for i in range(layer, layers)]).sum(0)  # Σ_{j >= l} log q(h_j | h_{j−1})
    if layer == 0:
        log_p = model.log_joint(x, h)
        return (log_p - log_q).detach(), log_p
    prior = model.prior_logits(x, h)
    log_p_upper = torch.stack([layer_log_prob(2, prior[i], h[i]).expand_as(log_q)
                               for i in range(layer - 1, layers)]).sum(0)
    return (log_p_upper - log_q).detach(), None


class LayeredDisARM(LayeredEstimator):
    """DisARM per binary layer (any m >= 1; no structured prediction): twice the decoder evaluations of NVIL
    at layer 0, and two evaluations of the terms above each higher layer."""

    binary_only = True
    structured = False

    def estimate(self, model: _Model, x: Tensor, samples: int, generator: torch.Generator | None) -> Tensor:
        m, layers = samples, len(model.latent_categories)
        trunk: list[Tensor] = []  # h_0..h_{l−1} of the first sample of each pair, (m, batch, units)
        surrogate = bound = x.new_zeros(x.shape[0])
        for layer in range(layers):
            a = model.proposal_logits(layer, x, trunk)  # (batch, units) for layer 0, else (m, batch, units)
            _, b, b_anti = logistic_pair(a.expand(m, *a.shape[-2:]), 1, generator)
            b, b_anti = b[0], b_anti[0]  # (m, batch, units): 1[u < σ(a)], 1[1 − u < σ(a)]
            h = [torch.cat([t, t]) for t in trunk] + [torch.cat([b, b_anti])]  # (2m, batch, ...) per layer
            below = a if layer == 0 else torch.cat([a, a])  # both members of a pair share the trunk below
            f, log_p = _branch_signals(model, x, h, layer, 2 * m, generator, below)
            if log_p is not None:  # layer 0: the generative gradient (both branches) and the bound
                surrogate, bound = surrogate + log_p.mean(0), f.mean(0)
            half_diff = 0.5 * (f[:m] - f[m:]).unsqueeze(-1)  # (m, batch, 1)
            surrogate = surrogate + (half_diff * disarm_weight(b, b_anti, a) * a).sum(-1).mean(0)
            trunk.append(b)
        return _value_with_gradient_of(bound, surrogate)


class LayeredARMS(LayeredEstimator):
    """ARMS per binary layer (m = K >= 2 copula-coupled samples per example; no structured prediction): K decoder
    evaluations at layer 0, and K evaluations of the terms above each higher layer, whose K samples share one trunk."""

    min_samples = 2
    binary_only = True
    structured = False

    def estimate(self, model: _Model, x: Tensor, samples: int, generator: torch.Generator | None) -> Tensor:
        k, layers = samples, len(model.latent_categories)
        trunk: list[Tensor] = []  # h_0..h_{l−1} of the first of the K samples, (1, batch, units) each
        surrogate = bound = x.new_zeros(x.shape[0])
        for layer in range(layers):
            a = model.proposal_logits(layer, x, trunk)  # (batch, units) for layer 0, else (1, batch, units)
            a = a.reshape(a.shape[-2:])  # (batch, units): one trunk per example
            b = dirichlet_copula_bernoulli(a, k, generator)  # (K, batch, units), coupled along K
            h = [t.expand(k, *t.shape[1:]) for t in trunk] + [b]  # (K, batch, ...) per layer
            f, log_p = _branch_signals(model, x, h, layer, k, generator, a)  # (K, batch); a: one trunk
            if log_p is not None:  # layer 0: the generative gradient (every sample) and the bound
                surrogate, bound = surrogate + log_p.mean(0), f.mean(0)
            centred = (f - f.mean(0)).unsqueeze(-1)  # (K, batch, 1)
            signal = (centred * (b - torch.sigmoid(a.detach()))).sum(0) / (k - 1)  # (batch, units)
            surrogate = surrogate + (arms_weight(a, k) * signal * a).sum(-1)
            trunk.append(b[:1])
        return _value_with_gradient_of(bound, surrogate)
