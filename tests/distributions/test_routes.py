"""One differential test: every public distribution x every route a user has x every derivative (issue 27).

A sample remembers the log-space point it was drawn from, and ``log_prob`` uses it (and, at a distribution's own
sample, the identity written from its noise). That record is an optimisation: apart from speed, nothing may show
that it exists. So for each family and each route, the value of ``log_prob`` and its derivatives with respect to
the logits (or probs), a tensor temperature and, where it is a leaf, the sample, must equal those of the general
formula.

The reference is written here, independently of ``concretelab.functional`` (torch's ``logsumexp``, ``softplus``
and ``lgamma`` on the formulas of Maddison et al. 2017, eq. 8, 20, 21, and Louizos et al. 2018, eq. 9-12), and
evaluated in float64 on independent copies of the parameters. The sample is rebuilt from the same noise, which
every route passes explicitly, so the reference knows the soft point of a straight-through sample too. Its
gradients are the semantics a user expects from a plain tensor:

* a sample that carries its sampling path (``rsample``, ``sample_and_log_prob``, ``expand``, ``Independent``,
  a ``TransformedDistribution``, ``clone``): the total derivative along the path;
* a sample with no path (``sample``, ``detach``, copies, pickles): the partial derivatives, the sample held fixed
  (the score function);
* a leaf sample (``sample().requires_grad_()``): also the partial derivative with respect to the sample. For the
  straight-through families, whose value is hard, that is the soft sample's (the straight-through convention).

Tolerances: the families run in float64 and the reference is float64, so values and gradients must agree to
rtol = atol = 1e-9, far above float64 rounding (about 1e-15 relative for these sizes) and far below any real
difference (a missing score-function gradient is of order 1). The float32 route (``.to(float64)`` of a float32
sample) is compared at rtol = atol = 1e-5 (float32 rounding of values of size 10 through a logsumexp).

The straight-through families refuse, with a ``ValueError``, any value that is not the unchanged sample they
returned (a copy of a hard value carries no soft point).
"""

from __future__ import annotations

import contextlib
import copy
import math
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Independent, TransformedDistribution
from torch.distributions.transforms import AffineTransform

import concretelab.distributions as dists

RTOL = ATOL = 1e-9
LOWER, UPPER = -0.1, 1.1  # HardConcrete's stretch


# ----------------------------------------------------------------------------------------------------------------
# The independent reference (float64).


def ref_exp_concrete(y: Tensor, a: Tensor, t: Tensor) -> Tensor:
    """log kappa(y), eq. 8: lgamma(n) + (n-1) log t + sum_k z_k - n logsumexp_k z_k, z = a - t y."""
    n = y.shape[-1]
    z = a - t.unsqueeze(-1) * y
    return math.lgamma(n) + (n - 1) * torch.log(t) + z.sum(-1) - n * torch.logsumexp(z, -1)


def ref_concrete(x: Tensor, a: Tensor, t: Tensor) -> Tensor:
    """log p(x) = log kappa(log x) - sum_k log x_k (eq. 1 through eq. 8)."""
    return ref_exp_concrete(x.log(), a, t) - x.log().sum(-1)


def ref_logit_bin(z: Tensor, a: Tensor, t: Tensor) -> Tensor:
    """eq. 21: log t - softplus(-u) - softplus(u), u = t z - a."""
    u = t * z - a
    return torch.log(t) - F.softplus(-u) - F.softplus(u)


def ref_bin(x: Tensor, a: Tensor, t: Tensor) -> Tensor:
    """eq. 20: the logit density less log x + log(1 - x)."""
    return ref_logit_bin(x.log() - torch.log1p(-x), a, t) - x.log() - torch.log1p(-x)


def ref_hard(v: Tensor, a: Tensor, t: Tensor) -> Tensor:
    """Louizos et al. eq. 9-12: masses at 0 and 1, the stretched BinConcrete density inside."""
    interior = (v > 0) & (v < 1)
    inside = torch.where(interior, v, torch.full_like(v, 0.5))
    s = (inside - LOWER) / (UPPER - LOWER)
    density = ref_bin(s, a, t) - math.log(UPPER - LOWER)
    at_zero = F.logsigmoid(t * math.log(-LOWER / UPPER) - a)
    at_one = F.logsigmoid(a - t * math.log((1 - LOWER) / (UPPER - 1)))
    return torch.where(interior, density, torch.where(v <= 0, at_zero, at_one))


def ref_categorical_sample(a: Tensor, t: Tensor, g: Tensor) -> Tensor:
    """x = softmax((a + G) / t) (Def. 1)."""
    return torch.softmax((a + g) / t.unsqueeze(-1), -1)


def ref_binary_sample(a: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    return torch.sigmoid((a + noise) / t)


def ref_hard_sample(a: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    return (ref_binary_sample(a, t, noise) * (UPPER - LOWER) + LOWER).clamp(0.0, 1.0)


# ----------------------------------------------------------------------------------------------------------------
# The families.


@dataclass(frozen=True)
class Family:
    """A public distribution with parameters, noise and its reference: ``soft(a, t, noise)`` is the point the
    reference scores (the sample, or a straight-through sample's soft point), ``density(point, a, t)`` its
    log-density, ``changed`` a valid value to write into a sample (None where a changed sample is refused)."""

    name: str
    make: Callable[..., Any]
    logits: list[Any]
    temperature: list[float]
    noise: Callable[[tuple[int, ...]], Tensor]
    soft: Callable[[Tensor, Tensor, Tensor], Tensor]
    density: Callable[[Tensor, Tensor, Tensor], Tensor]
    changed: float | list[float] | None
    straight_through: bool = False
    by_probs: bool = False
    event_dims: int = 1

    def params(self, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
        """Fresh leaves: the logits (or probs, when ``by_probs``) and a tensor temperature."""
        a = torch.tensor(self.logits, dtype=dtype)
        if self.by_probs:
            a = torch.softmax(a, -1) if self.event_dims else torch.sigmoid(a)
        return a.requires_grad_(), torch.tensor(self.temperature, dtype=dtype).requires_grad_()

    def dist(self, a: Tensor, t: Tensor, **kw: Any) -> Any:
        key = "probs" if self.by_probs else "logits"
        return self.make(t, **{key: a}, **kw)

    def ref_logits(self, a: Tensor) -> Tensor:
        """The logits the reference uses: the parameter itself, or log alpha of the probs given."""
        if not self.by_probs:
            return a
        return a.log() if self.event_dims else a.log() - torch.log1p(-a)


def _gumbel(shape: tuple[int, ...]) -> Tensor:
    u = torch.rand(shape, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    return -torch.log(-torch.log(u))


def _logistic(shape: tuple[int, ...]) -> Tensor:
    u = torch.rand(shape, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    return torch.log(u) - torch.log1p(-u)


def _hard_noise(shape: tuple[int, ...]) -> Tensor:
    """Logistic noise with entries far out on both sides, so that samples are clipped to 0 and to 1 as well."""
    noise = _logistic(shape)
    flat = noise.view(-1)
    flat[0::3] = -9.0
    flat[1::3] = 9.0
    return noise


CAT_LOGITS = [[0.3, -1.2, 2.0, 0.5], [1.0, 0.0, -1.0, 0.2]]
BIN_LOGITS = [[0.3, -1.2, 2.0], [1.0, 0.0, -0.7]]


def _cat(name: str, cls: Any, density: Callable[..., Tensor], changed: Any, **kw: Any) -> Family:
    soft = ref_categorical_sample
    if cls is dists.ExpConcrete:
        soft = lambda a, t, g: ref_categorical_sample(a, t, g).log()  # noqa: E731 - the log-space point
    return Family(name, cls, CAT_LOGITS, [0.5, 0.8], _gumbel, soft, density, changed, **kw)


FAMILIES = [
    _cat("Concrete", dists.Concrete, ref_concrete, [0.1, 0.2, 0.3, 0.4]),
    _cat("Concrete[probs]", dists.Concrete, ref_concrete, [0.1, 0.2, 0.3, 0.4], by_probs=True),
    _cat("ExpConcrete", dists.ExpConcrete, ref_exp_concrete, [math.log(0.1), math.log(0.2), math.log(0.3),
                                                             math.log(0.4)]),
    _cat("StraightThroughConcrete", dists.StraightThroughConcrete, ref_concrete, None, straight_through=True),
    Family("BinConcrete", dists.BinConcrete, BIN_LOGITS, [0.5, 0.8, 1.5], _logistic, ref_binary_sample, ref_bin,
           0.3, event_dims=0),
    Family("BinConcrete[probs]", dists.BinConcrete, BIN_LOGITS, [0.5, 0.8, 1.5], _logistic, ref_binary_sample,
           ref_bin, 0.3, event_dims=0, by_probs=True),
    Family("LogitBinConcrete", dists.LogitBinConcrete, BIN_LOGITS, [0.5, 0.8, 1.5], _logistic,
           lambda a, t, n: (a + n) / t, ref_logit_bin, -0.4, event_dims=0),
    Family("StraightThroughBinConcrete", dists.StraightThroughBinConcrete, BIN_LOGITS, [0.5, 0.8, 1.5], _logistic,
           ref_binary_sample, ref_bin, None, event_dims=0, straight_through=True),
    Family("HardConcrete", lambda t, logits, **kw: dists.HardConcrete(t, logits=logits, **kw), BIN_LOGITS,
           [0.5, 0.8, 1.5], _hard_noise, ref_hard_sample, ref_hard, 0.3, event_dims=0),
]

SAMPLE_SHAPE = (3,)


def _noise(family: Family, d: Any, sample_shape: tuple[int, ...] = SAMPLE_SHAPE) -> Tensor:
    return family.noise(tuple(sample_shape) + tuple(d.batch_shape) + tuple(d.event_shape))


def test_every_public_distribution_is_covered() -> None:
    public = {getattr(dists, n) for n in dists.__all__ if isinstance(getattr(dists, n), type)}
    covered = {f.make for f in FAMILIES if isinstance(f.make, type)} | {dists.HardConcrete}
    assert public <= covered, sorted(c.__name__ for c in public - covered)


# ----------------------------------------------------------------------------------------------------------------
# The routes. Each returns what was scored and what to differentiate with respect to.


@dataclass
class Scored:
    """``log_prob``'s result on a route; ``sample_leaf`` is the sample when it is a leaf that requires grad, and
    ``value`` the values the reference scores (None: the sample the noise gives)."""

    log_prob: Tensor
    sample_leaf: Tensor | None = None
    value: Tensor | None = None
    extra_log_det: float = 0.0


def _guard(mode: str) -> contextlib.AbstractContextManager[None]:
    guard = getattr(dists, "record_guard", None)  # absent before issue 27: records compared snapshots then
    return guard(mode) if guard is not None else contextlib.nullcontext()


def _with_noise(d: Any, noise: Tensor) -> Any:
    """``d`` whose rsample() draws with ``noise`` (for wrappers that call ``base.rsample(shape)``)."""
    bound = type(d).rsample
    d.rsample = lambda sample_shape=(), **kw: bound(d, sample_shape, noise=noise)
    return d


def _changed_value(family: Family, like: Tensor) -> Tensor:
    return torch.tensor(family.changed, dtype=like.dtype).expand_as(like).clone()


def route_rsample(family: Family, d: Any) -> Scored:
    return Scored(d.log_prob(d.rsample(SAMPLE_SHAPE, noise=_noise(family, d))))


def route_sample(family: Family, d: Any) -> Scored:
    return Scored(d.log_prob(d.sample(SAMPLE_SHAPE, noise=_noise(family, d))))


def route_leaf(family: Family, d: Any) -> Scored:
    x = d.sample(SAMPLE_SHAPE, noise=_noise(family, d)).requires_grad_(True)
    return Scored(d.log_prob(x), sample_leaf=x)


def route_sample_and_log_prob(family: Family, d: Any) -> Scored:
    return Scored(d.sample_and_log_prob(SAMPLE_SHAPE, noise=_noise(family, d))[1])


def route_noise_reused(family: Family, d: Any) -> Scored:
    """Issue 27, Why 2: the caller's noise buffer is overwritten after sampling."""
    g = _noise(family, d).clone()
    x = d.rsample(SAMPLE_SHAPE, noise=g)
    with torch.no_grad():
        g.copy_(g.flip(0) + 0.25)
    return Scored(d.log_prob(x))


def route_expand(family: Family, d: Any) -> Scored:
    big = d.expand(SAMPLE_SHAPE + tuple(d.batch_shape))
    return Scored(big.log_prob(big.rsample(noise=_noise(family, big, ()))))


def route_independent(family: Family, d: Any) -> Scored:
    wrapped = Independent(_with_noise(d, _noise(family, d)), 1)
    return Scored(wrapped.log_prob(wrapped.rsample(SAMPLE_SHAPE)), extra_log_det=math.nan)  # sums the last dim


def route_transformed(family: Family, d: Any) -> Scored:
    scale = AffineTransform(0.0, 2.0, event_dim=family.event_dims, cache_size=1)
    wrapped = TransformedDistribution(_with_noise(d, _noise(family, d)), [scale], validate_args=False)
    size = d.event_shape.numel()
    return Scored(wrapped.log_prob(wrapped.rsample(SAMPLE_SHAPE)), extra_log_det=-size * math.log(2.0))


def _copied(how: Callable[[Tensor], Tensor]) -> Callable[[Family, Any], Scored]:
    def route(family: Family, d: Any) -> Scored:
        x = how(d.sample(SAMPLE_SHAPE, noise=_noise(family, d)))
        return Scored(d.log_prob(x), value=x.detach())

    return route


def route_clone_keeps_the_path(family: Family, d: Any) -> Scored:
    x = d.rsample(SAMPLE_SHAPE, noise=_noise(family, d)).clone()
    return Scored(d.log_prob(x))


def _changed(how: str, guard: str = "stamp") -> Callable[[Family, Any], Scored]:
    def route(family: Family, d: Any) -> Scored:
        with _guard(guard):
            x = d.sample(SAMPLE_SHAPE, noise=_noise(family, d))
            if family.changed is not None:
                new = _changed_value(family, x)
            else:  # a straight-through sample: another hard value (each one-hot rolled, each bit flipped)
                new = x.roll(1, -1) if family.event_dims else 1 - x
            if how == "in place":
                x.copy_(new)
            elif how == "view":
                x.view(-1)[:] = new.view(-1)
            elif how == ".data":
                x.data.copy_(new)
            elif how == "numpy":
                x.numpy()[...] = new.numpy()
            return Scored(d.log_prob(x), value=new)

    return route


ROUTES: dict[str, Callable[[Family, Any], Scored]] = {
    "rsample": route_rsample,
    "sample": route_sample,
    "sample().requires_grad_()": route_leaf,
    "sample_and_log_prob": route_sample_and_log_prob,
    "rsample(noise=g), then g changed": route_noise_reused,
    "expand": route_expand,
    "Independent": route_independent,
    "TransformedDistribution": route_transformed,
    "detach": _copied(lambda x: x.detach()),
    "clone of a sample()": _copied(lambda x: x.clone()),
    "clone of an rsample()": route_clone_keeps_the_path,
    "copy.deepcopy": _copied(copy.deepcopy),
    "pickle": _copied(lambda x: pickle.loads(pickle.dumps(x))),
    "changed in place": _changed("in place"),
    "changed through a view": _changed("view"),
    "changed through .data": _changed(".data"),
    "changed through NumPy": _changed("numpy"),
    "changed through .data (values guard)": _changed(".data", "values"),
}
# Routes whose value is not the unchanged sample: a straight-through family refuses them.
NOT_THE_SAMPLE = {"detach", "clone of a sample()", "clone of an rsample()", "copy.deepcopy", "pickle"} | {
    name for name in ROUTES if name.startswith("changed")
}
# Routes whose sample carries its sampling path (the total derivative is expected).
WITH_PATH = {"rsample", "sample_and_log_prob", "rsample(noise=g), then g changed", "expand", "Independent",
             "TransformedDistribution", "clone of an rsample()"}


def reference(family: Family, route: str, a: Tensor, t: Tensor, scored: Scored) -> tuple[Tensor, Tensor | None]:
    """The general formula on independent copies ``a``, ``t`` (leaves): the log-density the route should give,
    and the leaf standing for the sample when the route differentiates with respect to it."""
    logits = family.ref_logits(a)
    if route == "expand":
        batch = logits.shape[: logits.dim() - family.event_dims]
        logits, temp = logits.expand(SAMPLE_SHAPE + logits.shape), t.expand(SAMPLE_SHAPE + batch)
        point = family.soft(logits, temp, family.noise(tuple(logits.shape)))
        return family.density(point, logits, temp), None
    noise = family.noise(SAMPLE_SHAPE + tuple(logits.shape))
    point = family.soft(logits, t, noise)
    leaf = None
    if scored.value is not None:
        point = scored.value.detach().to(torch.float64)
    elif route not in WITH_PATH:
        point = point.detach()
        if scored.sample_leaf is not None:
            leaf = point.requires_grad_(True)
    log_p = family.density(point, logits, t)
    if route == "Independent":
        log_p = log_p.sum(-1)
    return log_p + scored.extra_log_det if route != "Independent" else log_p, leaf


def _grads(output: Tensor, inputs: list[Tensor]) -> list[Tensor]:
    grads = torch.autograd.grad(output.sum(), inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)]


def _cases() -> Iterator[Any]:
    for family in FAMILIES:
        for route in ROUTES:
            yield pytest.param(family, route, id=f"{family.name}-{route}")


@pytest.mark.parametrize(("family", "route"), list(_cases()))
def test_value_and_gradients_equal_the_general_formula(family: Family, route: str) -> None:
    a, t = family.params()
    d = family.dist(a, t)
    if family.straight_through and route in NOT_THE_SAMPLE:
        with pytest.raises(ValueError, match="soft"):
            ROUTES[route](family, d)
        return
    scored = ROUTES[route](family, d)
    a_ref, t_ref = (p.detach().clone().requires_grad_(True) for p in (a, t))
    expected, leaf_ref = reference(family, route, a_ref, t_ref, scored)
    torch.testing.assert_close(scored.log_prob, expected, rtol=RTOL, atol=ATOL, msg=lambda m: f"value: {m}")
    ours = [a, t] + ([scored.sample_leaf] if scored.sample_leaf is not None else [])
    theirs = [a_ref, t_ref] + ([leaf_ref] if leaf_ref is not None else [])
    for name, got, want in zip(("logits", "temperature", "sample"), _grads(scored.log_prob, ours),
                               _grads(expected, theirs), strict=False):
        torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL, msg=lambda m, n=name: f"d/d {n}: {m}")


# ----------------------------------------------------------------------------------------------------------------
# Routes that need their own harness: double backward, torch.func, inference mode, float32 -> float64.


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("route", ["sample", "rsample", "sample().requires_grad_()"])
def test_double_backward(family: Family, route: str) -> None:
    """create_graph=True: the gradient of the squared gradient norm (a Hessian-vector product) matches too."""
    a, t = family.params()
    d = family.dist(a, t)
    scored = ROUTES[route](family, d)
    a_ref, t_ref = (p.detach().clone().requires_grad_(True) for p in (a, t))
    expected, _ = reference(family, route, a_ref, t_ref, scored)

    def second(log_p: Tensor, params: list[Tensor]) -> list[Tensor]:
        first = torch.autograd.grad(log_p.sum(), params, create_graph=True)
        penalty = sum((g**2).sum() for g in first)
        return _grads(penalty, params)  # type: ignore[arg-type]

    for name, got, want in zip(("logits", "temperature"), second(scored.log_prob, [a, t]),
                               second(expected, [a_ref, t_ref]), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8, msg=lambda m, n=name: f"d2/d {n}: {m}")


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("method", ["rsample+log_prob", "sample_and_log_prob"])
def test_torch_func_grad_and_vmap(family: Family, method: str) -> None:
    """torch.func.grad (the total derivative along the path) and vmap over a batch of logits. Inside a torch.func
    transform nothing is remembered (a functorch tensor has no storage to stamp), so a straight-through sample,
    whose soft point is not in its value, is scored only by sample_and_log_prob (docs/api.md)."""
    a, t = family.params()
    a, t = a.detach(), t.detach()
    noise = family.noise(SAMPLE_SHAPE + tuple(family.dist(a, t).batch_shape) + tuple(family.dist(a, t).event_shape))

    def ours(a: Tensor) -> Tensor:
        d = family.dist(a, t)
        if method == "sample_and_log_prob":
            return d.sample_and_log_prob(SAMPLE_SHAPE, noise=noise)[1].sum()
        return d.log_prob(d.rsample(SAMPLE_SHAPE, noise=noise)).sum()

    def theirs(a: Tensor) -> Tensor:
        logits = family.ref_logits(a)
        return family.density(family.soft(logits, t, noise), logits, t).sum()

    if family.straight_through and method == "rsample+log_prob":
        with pytest.raises(ValueError, match="sample_and_log_prob"):
            torch.func.grad(ours)(a)
        return
    torch.testing.assert_close(torch.func.grad(ours)(a), torch.func.grad(theirs)(a), rtol=RTOL, atol=ATOL)
    batch = torch.stack([a, a * 0.5 + (0.1 if not family.by_probs else 0.0)])
    if family.by_probs:
        batch = torch.stack([a, a.flip(-1) if family.event_dims else 1 - a])
    torch.testing.assert_close(torch.func.vmap(ours)(batch), torch.func.vmap(theirs)(batch), rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(torch.func.jacrev(ours)(a), torch.func.jacrev(theirs)(a), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("family", [f for f in FAMILIES if not f.straight_through], ids=lambda f: f.name)
def test_inference_mode_change_is_seen(family: Family) -> None:
    """An inference tensor has no version counter; a change of it in place is still seen."""
    a, t = family.params()
    with torch.inference_mode():
        d = family.dist(a.detach(), t.detach())
        x = d.sample(SAMPLE_SHAPE, noise=_noise(family, d))
        new = _changed_value(family, x)
        x.copy_(new)
        got = d.log_prob(x)
    torch.testing.assert_close(got, family.density(new.clone(), family.ref_logits(a.detach()), t.detach()),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("family", [f for f in FAMILIES if not f.straight_through], ids=lambda f: f.name)
def test_float32_sample_moved_to_float64(family: Family) -> None:
    """``.to(float64)`` is a new tensor: scored from its values, with the partial derivatives (not validated: a
    float32 point of the simplex sums to 1 only to float32 rounding)."""
    a, t = family.params(torch.float32)
    d = family.dist(a, t, validate_args=False)
    x = d.sample(SAMPLE_SHAPE, noise=_noise(family, d).float()).to(torch.float64)
    got = d.log_prob(x)
    a_ref, t_ref = (p.detach().double().requires_grad_(True) for p in (a, t))
    want = family.density(x, family.ref_logits(a_ref), t_ref)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    for got_g, want_g in zip(_grads(got, [a, t]), _grads(want, [a_ref, t_ref]), strict=True):
        torch.testing.assert_close(got_g.double(), want_g, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_torch_compile_fullgraph(family: Family) -> None:
    """Building the distribution, rsample and sample_and_log_prob trace as one graph (fullgraph=True; AOT autograd
    traces the backward), with the eager values and gradients. Inside the graph nothing is remembered
    (_record.py), so log_prob of a sample there is the formula on its value."""
    a, t = family.params()
    a, t = a.detach(), t.detach()
    noise = family.noise(SAMPLE_SHAPE + tuple(family.dist(a, t).batch_shape) + tuple(family.dist(a, t).event_shape))

    def step(a: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        d = family.dist(a, t)
        x = d.rsample(SAMPLE_SHAPE, noise=noise)
        _, log_q = d.sample_and_log_prob(SAMPLE_SHAPE, noise=noise)
        return x, log_q

    torch._dynamo.reset()  # one code object, compiled once per family: keep under dynamo's recompilation limit
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    results = []
    for fn in (compiled, step):
        a_leaf, t_leaf = a.clone().requires_grad_(), t.clone().requires_grad_()
        x, log_q = fn(a_leaf, t_leaf)
        results.append((x, log_q, *torch.autograd.grad(x.sum() + log_q.sum(), (a_leaf, t_leaf))))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
