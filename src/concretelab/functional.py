"""Pure tensor kernels for the Concrete family: noise, relaxed sampling and log-densities.

Everything here imports only torch and works on plain tensors, so the functions compose with
``torch.compile(fullgraph=True)`` and ``torch.func.vmap`` once their noise is given.

Noise is finite by construction. ``torch.rand`` draws from the grid ``{0, 1/N, ..., 1 - 1/N}``
(N = 2**24 in float32, 2**53 in float64); its grid point 0 is replaced by half a grid step, so
every uniform lies in the open interval (0, 1) and every transform of it below is finite:
a standard Gumbel lies in [-2.86, 16.64] (float32) or [-3.63, 36.74] (float64), a standard logistic
in [-17.33, 16.64] (float32) or [-37.43, 36.74] (float64) (tests/test_functional.py checks these
bounds on the grid's end points). No value is clamped.

References
    [1] Maddison, Mnih & Teh, "The Concrete Distribution", ICLR 2017 (eq. 1, Def. 1, eq. 8).
    [2] Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017.
    [3] Kool, van Hoof & Welling, "Stochastic Beams and Where to Find Them", ICML 2019 (Gumbel-top-k).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "bernoulli_log_prob",
    "bernoulli_log_prob_sum",
    "binconcrete_log_density",
    "broadcast_shapes",
    "categorical_log_prob",
    "compute_dtype",
    "exp_concrete_log_density",
    "exp_concrete_log_density_at_noise",
    "gumbel_from_uniform",
    "gumbel_max",
    "gumbel_softmax",
    "gumbel_topk",
    "log_gumbel_softmax",
    "log_softmax_and_softmax",
    "logistic_from_uniform",
    "logit_binconcrete_log_density",
    "logit_binconcrete_log_density_at_noise",
    "one_hot_argmax",
    "open_uniform",
    "perturb_and_scale",
    "sample_bernoulli",
    "sample_categorical",
    "sample_discrete",
    "sample_gumbel",
    "sample_gumbel_and_exponential",
    "sample_logistic",
    "sample_logistic_and_log_pdf",
    "sample_uniform_open",
    "softplus",
    "traced",
]

_HALF_DTYPES = (torch.float16, torch.bfloat16)

ShapeLike = int | Sequence[int] | torch.Size


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype arithmetic runs in: float32 for float16/bfloat16 inputs, the input dtype otherwise."""
    return torch.float32 if dtype in _HALF_DTYPES else dtype


def _shape(shape: int | Sequence[int] | torch.Size) -> torch.Size:
    return torch.Size([shape]) if isinstance(shape, int) else torch.Size(shape)


def broadcast_shapes(*shapes: Sequence[int]) -> torch.Size:
    """The shape ``shapes`` broadcast to, as ``torch.broadcast_shapes`` (and the same ``RuntimeError`` when they
    do not broadcast), in plain Python: torch's version goes through its reference implementation and costs
    about 60 microseconds a call, which the distributions pay once or twice per object."""
    ndim = 0
    for shape in shapes:  # not max(..., default=0): torch.compile(fullgraph=True) cannot trace the keyword
        ndim = max(ndim, len(shape))
    out = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape, start=ndim - len(shape)):
            if size == 1 or size == out[i]:
                continue
            if out[i] != 1:
                raise RuntimeError(
                    f"shape mismatch: objects cannot be broadcast to a single shape, got {[tuple(s) for s in shapes]}"
                )
            out[i] = size
    return torch.Size(out)


def sample_uniform_open(shape: ShapeLike, *, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
                        device: torch.device | str | None = None) -> Tensor:
    """Uniform(0, 1) on the open interval: ``torch.rand``'s grid with its point 0 moved to half a step.

    Half-precision requests are drawn in float32 (their own grid is too coarse for the tails).
    """
    dtype = compute_dtype(dtype or torch.get_default_dtype())
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    u = torch.rand(_shape(shape), generator=generator, dtype=dtype, device=device)
    # In place, the same map as open_uniform: every grid point but 0 is at least a whole step, so raising
    # the floor to half a step moves 0 alone (one pass, no new tensor).
    return u.clamp_(min=torch.finfo(dtype).eps / 4)


def open_uniform(u: Tensor) -> Tensor:
    """Move the grid point 0 of ``torch.rand`` to half a grid step, so that u lies in (0, 1).

    ``torch.rand`` draws k * eps/2 (2**-24 in float32, 2**-53 in float64), k = 0, ..., 2/eps - 1.
    """
    half_step = torch.finfo(u.dtype).eps / 4
    return torch.where(u > 0, u, half_step)


def gumbel_from_uniform(u: Tensor) -> Tensor:
    """G = -log(-log u): finite for every u in (0, 1), in particular on the whole grid of ``open_uniform``."""
    return -torch.log(-torch.log(u))


def logistic_from_uniform(u: Tensor) -> Tensor:
    """L = log u - log(1 - u): finite for every u in (0, 1), in particular on the whole grid of ``open_uniform``."""
    return torch.log(u) - torch.log1p(-u)


def sample_gumbel(shape: ShapeLike, *, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
                  device: torch.device | str | None = None) -> Tensor:
    """Standard Gumbel noise G = -log(-log U), U ~ Uniform(0, 1) open; never +-inf."""
    out_dtype = dtype or torch.get_default_dtype()
    u = sample_uniform_open(shape, generator=generator, dtype=out_dtype, device=device)
    return u.log_().neg_().log_().neg_().to(out_dtype)  # gumbel_from_uniform, in place


def sample_gumbel_and_exponential(
    shape: ShapeLike, *, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
    device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Standard Gumbel noise G and E = exp(-G) = -log U, a standard exponential, from the same draw.

    E is the intermediate of G = -log E that [`sample_gumbel`][concretelab.functional.sample_gumbel] discards; the
    identity at a Concrete distribution's own sample needs log sum_k exp(-G_k) = log sum_k E_k, which E gives in one
    pass. Both are in the compute dtype (float32 for half-precision requests).
    """
    u = sample_uniform_open(shape, generator=generator, dtype=dtype or torch.get_default_dtype(), device=device)
    exponential = u.log_().neg_()
    return exponential.log().neg_(), exponential


def sample_logistic(shape: ShapeLike, *, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
                    device: torch.device | str | None = None) -> Tensor:
    """Standard logistic noise L = log U - log(1 - U), U ~ Uniform(0, 1) open; never +-inf."""
    out_dtype = dtype or torch.get_default_dtype()
    u = sample_uniform_open(shape, generator=generator, dtype=out_dtype, device=device)
    return logistic_from_uniform(u).to(out_dtype)


def sample_logistic_and_log_pdf(
    shape: ShapeLike, *, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
    device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Standard logistic noise L = log U - log(1 - U) and its log-density at L, from the same draw as
    [`sample_logistic`][concretelab.functional.sample_logistic]:

        log f(L) = -softplus(-L) - softplus(L) = log U + log(1 - U),

    so the density costs one addition of the two logs the noise needs anyway. Both are in the compute dtype.
    """
    u = sample_uniform_open(shape, generator=generator, dtype=dtype or torch.get_default_dtype(), device=device)
    log_u, log_1mu = u.log(), torch.log1p(-u)
    return log_u - log_1mu, log_u + log_1mu


# Discrete draws decide in float64 whatever the dtype of the logits. torch.rand's float32 grid has 2**24 points,
# so a float32 comparison gives any state a probability that is a multiple of 2**-24: `rand() < sigmoid(a)`
# proposes h = 1 with probability 2**-24 (the grid point 0) even when sigmoid(a) is 1e-13, and an
# importance weight p/q built with the true q is then wrong by a factor of 1e6 or more. In float64 every
# state is proposed with a probability within 2**-53 of its own and never when that is below 2**-54.
_DECISION_DTYPE = torch.float64


def _decision_device(device: torch.device) -> torch.device:
    """Where a float64 decision can run: the tensor's device, or the CPU on backends without float64 (MPS)."""
    return torch.device("cpu") if device.type == "mps" else device


def sample_bernoulli(
    logits: Tensor,
    shape: Sequence[int] | torch.Size | None = None,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """b ~ Bernoulli(sigmoid(logits)) as 0/1 in the dtype of ``logits``, of ``shape`` (logits broadcast to it).

    b = 1[U < sigmoid(a)] with U open-uniform and the comparison in float64, so P(b = 1) lies within 2**-53
    of sigmoid(a), is 0 when sigmoid(a) <= 2**-54, and likewise for b = 0 (see ``_DECISION_DTYPE``). Not
    differentiable; the logits are detached.
    """
    shape = logits.shape if shape is None else torch.Size(shape)
    device = _decision_device(logits.device)
    u = sample_uniform_open(shape, generator=generator, dtype=_DECISION_DTYPE, device=device)
    probs = torch.sigmoid(logits.detach().to(device=device, dtype=_DECISION_DTYPE))
    return (u < probs).to(device=logits.device, dtype=logits.dtype)


def sample_categorical(
    logits: Tensor,
    shape: Sequence[int] | torch.Size | None = None,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A one-hot draw of Categorical(softmax(logits)) along the last dim, in the dtype of ``logits``, of
    ``shape`` (logits broadcast to it): argmax_k (a_k + G_k) (the Gumbel-max trick, Maddison et al. eq. 3)
    with the Gumbels and the sums in float64, so a category is drawn with a probability within a few 2**-53
    of its own (see ``_DECISION_DTYPE``). A -inf logit is never drawn. Not differentiable.
    """
    shape = logits.shape if shape is None else torch.Size(shape)
    return one_hot_argmax(_float64_gumbel_scores(logits, shape, generator)).to(
        device=logits.device, dtype=logits.dtype
    )


def sample_discrete(
    categories: int, logits: Tensor, shape: Sequence[int], generator: torch.Generator | None = None
) -> Tensor:
    """A discrete draw of ``shape`` (logits broadcast to it) for a layer of ``categories``: Bernoulli(sigmoid(a))
    as 0/1 when it is 2 ([`sample_bernoulli`][concretelab.functional.sample_bernoulli]), else a one-hot
    Categorical(softmax(a)) by the Gumbel-max trick ([`sample_categorical`][concretelab.functional.sample_categorical];
    Maddison et al. 2017, eq. 3). Both decide in float64, so no state is proposed more often than its probability by
    float rounding."""
    if categories == 2:
        return sample_bernoulli(logits, shape, generator=generator)
    return sample_categorical(logits, shape, generator=generator)


def _float64_gumbel_scores(logits: Tensor, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
    device = _decision_device(logits.device)
    g = sample_gumbel(shape, generator=generator, dtype=_DECISION_DTYPE, device=device)
    return g.add_(logits.detach().to(device=device, dtype=_DECISION_DTYPE))


def one_hot_argmax(scores: Tensor, dim: int = -1) -> Tensor:
    """The one-hot of argmax along ``dim``, in the dtype and shape of ``scores`` (ties: the first index)."""
    index = scores.argmax(dim=dim, keepdim=True)
    if traced(scores):  # out of place: vmap has a batching rule for scatter, not for scatter_
        return torch.zeros_like(scores).scatter(dim, index, 1.0)
    return torch.zeros_like(scores).scatter_(dim, index, 1.0)


def _check_dim(logits: Tensor, dim: int) -> int:
    if logits.dim() == 0:
        raise ValueError("logits must have at least one dimension (the categories), got a scalar")
    if not -logits.dim() <= dim < logits.dim():
        raise ValueError(
            f"dim={dim} is out of range for logits of shape {tuple(logits.shape)} "
            f"(expected -{logits.dim()} <= dim < {logits.dim()})"
        )
    return dim % logits.dim()


def _check_noise(noise: Tensor, logits: Tensor) -> None:
    if noise.shape != logits.shape:
        raise ValueError(
            f"noise must have the shape of logits {tuple(logits.shape)}, got {tuple(noise.shape)}"
        )


def traced(tensor: Tensor) -> bool:
    """Whether ``tensor`` is being traced by ``torch.compile``, is inside a ``torch.func`` transform (vmap,
    grad, jacrev) or is on a CUDA stream being captured into a CUDA graph: there a check that reads its values
    (``bool(...)``, a host sync) would break the graph or fail, so value checks run only eagerly."""
    return (torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(tensor)
            or (tensor.is_cuda and torch.cuda.is_current_stream_capturing()))


def _check_temperature_values(temperature: Tensor) -> None:
    """Eager check that a tensor temperature is finite and positive (skipped where ``traced``)."""
    if traced(temperature):
        return
    if not bool((torch.isfinite(temperature) & (temperature > 0)).all()):
        raise ValueError(
            f"temperature must be finite and positive, got a tensor of shape {tuple(temperature.shape)} "
            f"with invalid values: {temperature.detach()}"
        )


def _temperature_for(temperature: float | Tensor, logits: Tensor, dim: int) -> float | Tensor:
    """A tensor temperature broadcasts against logits with the category dim removed."""
    if isinstance(temperature, Tensor):
        if not temperature.dtype.is_floating_point:
            raise ValueError(f"temperature must be a float or a floating-point tensor, got dtype {temperature.dtype}")
        _check_temperature_values(temperature)
        if temperature.dim() == logits.dim() and temperature.shape[dim] == 1:
            t = temperature
        elif temperature.dim() < logits.dim():
            # Right-align against logits.shape without dim (leading 1s), then put back the category dim.
            batch_dims = logits.dim() - 1
            t = temperature.reshape((1,) * (batch_dims - temperature.dim()) + tuple(temperature.shape))
            t = t.unsqueeze(dim)
        else:  # more dims than the batch of logits: extra leading dims, categories counted from the right
            t = temperature.unsqueeze(dim - logits.dim())
        try:
            torch.broadcast_shapes(t.shape, logits.shape)
        except RuntimeError:
            raise ValueError(
                f"temperature of shape {tuple(temperature.shape)} does not broadcast against logits of shape "
                f"{tuple(logits.shape)} with the category dim {dim} removed (expected a shape that broadcasts "
                f"to {tuple(logits.shape[:dim] + logits.shape[dim + 1 :])})"
            ) from None
        return t
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be a finite positive number, got {temperature!r}")
    return t


def perturb_and_scale(logits: Tensor, noise: Tensor, temperature: float | Tensor) -> Tensor:
    """(logits + G) / temperature, the argument of the Concrete softmax (Maddison et al. Def. 1).

    A -inf logit stays -inf, and it is masked before the division: otherwise the temperature's
    gradient would be 0 * inf = NaN wherever a category is excluded.
    """
    excluded = logits == float("-inf")
    finite = torch.where(excluded, 0.0, logits + noise)
    return torch.where(excluded, float("-inf"), finite / temperature)


def _check_logit_values(logits: Tensor, dim: int) -> None:
    """Eager check (skipped where ``traced``) that no logit is NaN and every slice along ``dim`` has a
    finite logit: otherwise the softmax is 0/0 and the sample NaN."""
    if traced(logits) or not logits.numel():
        return
    if bool(torch.isfinite(logits.amax(dim=dim)).all()):  # one pass: a NaN or a slice of -inf shows in its max
        return
    if bool(torch.isnan(logits).any()):
        raise ValueError(f"logits must not contain NaN, got a tensor of shape {tuple(logits.shape)} with NaN entries")
    if bool((logits == float("inf")).any()):
        raise ValueError(f"logits must be below +inf, got a tensor of shape {tuple(logits.shape)} with +inf entries")
    if not bool((logits > float("-inf")).any(dim=dim).all()):
        raise ValueError(
            f"logits must have at least one finite (not -inf) value in every slice along dim {dim}, got a tensor "
            f"of shape {tuple(logits.shape)} with a slice that excludes every category"
        )


def _concrete_scores(logits: Tensor, temperature: float | Tensor, dim: int, generator: torch.Generator | None,
                     noise: Tensor | None) -> tuple[int, Tensor]:
    """The category dim, counted from the right (a tensor temperature may add leading dims to the scores), and
    the scores (logits + G) / temperature, G drawn or given (Def. 1)."""
    dim = _check_dim(logits, dim)
    _check_logit_values(logits, dim)
    if noise is None:
        noise = sample_gumbel(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    else:
        _check_noise(noise, logits)
    return dim - logits.dim(), perturb_and_scale(logits, noise, _temperature_for(temperature, logits, dim))


def log_gumbel_softmax(
    logits: Tensor,
    temperature: float | Tensor = 1.0,
    dim: int = -1,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """ExpConcrete sample Y = log_softmax((logits + G) / temperature) along ``dim`` (Maddison et al. eq. 8).

    A category whose logit is -inf gets Y = -inf (X = exp(Y) = 0 exactly).
    """
    dim, scores = _concrete_scores(logits, temperature, dim, generator, noise)
    return scores - torch.logsumexp(scores, dim=dim, keepdim=True)


def gumbel_softmax(
    logits: Tensor,
    temperature: float | Tensor = 1.0,
    hard: bool = False,
    dim: int = -1,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """Concrete sample X = softmax((logits + G) / temperature) (Maddison et al. Def. 1; Jang et al. eq. 1).

    Same semantics as ``torch.nn.functional.gumbel_softmax`` (``hard=True`` returns the one-hot
    argmax in the forward pass with the gradient of the soft sample), plus a tensor temperature
    (a shape that broadcasts, right-aligned, against ``logits.shape`` without ``dim``, or that shape with
    ``dim`` of size 1; it must be finite and positive, checked in eager mode), a generator, given noise
    (standard Gumbel, shaped like ``logits``), and exact zeros for -inf logits (with finite gradients).
    """
    dim, scores = _concrete_scores(logits, temperature, dim, generator, noise)
    # exp(s - logsumexp(s)) rather than torch.softmax: the same value, and faster on CPU for short rows
    soft = torch.exp(scores - torch.logsumexp(scores, dim=dim, keepdim=True))
    if not hard:
        return soft
    index = soft.argmax(dim=dim, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter(dim, index, 1.0)  # out of place: vmap has a batching rule
    return one_hot - soft.detach() + soft  # straight-through: value one_hot, gradient of soft


def gumbel_max(
    logits: Tensor, dim: int = -1, generator: torch.Generator | None = None, noise: Tensor | None = None
) -> Tensor:
    """Index argmax_k (logits_k + G_k): an exact Categorical(softmax(logits)) draw (the Gumbel-max trick).

    Given ``noise`` (standard Gumbel, shaped like ``logits``) it is the argmax of the Concrete sample
    built from the same noise, at every temperature. Without it, the draw is decided in float64 (as in
    [`sample_categorical`][concretelab.functional.sample_categorical]), so no category is drawn more often than its
    probability by float rounding.
    """
    dim = _check_dim(logits, dim)
    if noise is None:  # an exact draw: decided in float64 (see sample_categorical)
        return _float64_gumbel_scores(logits, logits.shape, generator).argmax(dim=dim).to(logits.device)
    _check_noise(noise, logits)
    return (logits + noise).argmax(dim=dim)


def gumbel_topk(
    logits: Tensor,
    k: int,
    dim: int = -1,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """Indices of the k largest logits_k + G_k: k categories drawn without replacement, in order of
    selection (Kool et al. 2019, Gumbel-top-k). Categories with -inf logits are never drawn, so k must
    not exceed the number of finite logits along ``dim`` (checked). ``noise``: as in
    [`gumbel_max`][concretelab.functional.gumbel_max].
    """
    dim = _check_dim(logits, dim)
    size = logits.shape[dim]
    if not isinstance(k, int) or not 1 <= k <= size:
        raise ValueError(f"k must be an integer in [1, {size}] (the size of dim {dim}), got {k!r}")
    available = size if traced(logits) or not logits.numel() else int((logits > float("-inf")).sum(dim=dim).min())
    if k > available:
        raise ValueError(
            f"k={k} exceeds the number of categories with finite logits along dim {dim} (as few as {available})"
        )
    if noise is None:  # an exact draw: decided in float64 (see sample_categorical)
        return torch.topk(_float64_gumbel_scores(logits, logits.shape, generator), k, dim=dim).indices.to(
            logits.device
        )
    _check_noise(noise, logits)
    return torch.topk(logits + noise, k, dim=dim).indices


class _LogSoftmaxAndSoftmax(torch.autograd.Function):
    """(y, x) = (s - logsumexp(s), softmax(s)) along the last dim, in one pass of exp, with a fused backward:

        ds = dy + x * dx - x * (sum(dy) + sum(x * dx)).

    In the setup_context form, so that torch.func transforms (grad, vmap, jacrev) compose with it; the backward
    is written in differentiable operations on the saved softmax, so double backward works too.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(scores: Tensor) -> tuple[Tensor, Tensor]:
        # finite: every row has a finite logit (validated) and the noise is finite
        shift = scores.amax(dim=-1, keepdim=True)
        centred = scores - shift
        e = centred.exp()
        total = e.sum(dim=-1, keepdim=True)
        y = centred - total.log()
        x = e.div_(total)
        return y, x

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor], output: tuple[Tensor, Tensor]) -> None:
        ctx.save_for_backward(output[1])

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor | None, grad_x: Tensor | None) -> Tensor:
        (x,) = ctx.saved_tensors
        grad = torch.zeros_like(x) if grad_y is None else grad_y
        coefficient = torch.zeros_like(x[..., :1])
        if grad_y is not None:
            coefficient = coefficient + grad_y.sum(dim=-1, keepdim=True)
        if grad_x is not None:
            x_grad_x = x * grad_x
            coefficient = coefficient + x_grad_x.sum(dim=-1, keepdim=True)
            grad = grad + x_grad_x
        return grad - x * coefficient


def log_softmax_and_softmax(scores: Tensor) -> tuple[Tensor, Tensor]:
    """``(scores - logsumexp(scores), softmax(scores))`` along the last dim, sharing one exp pass and a
    fused backward: the Concrete sample in log space and on the simplex (Maddison et al. eq. 8 and Def. 1).
    A -inf score gives y = -inf and x = 0 exactly."""
    return _LogSoftmaxAndSoftmax.apply(scores)


def exp_concrete_log_density(log_x: Tensor, logits: Tensor, temperature: Tensor) -> Tensor:
    """log kappa(y) of ExpConcrete at y = ``log_x`` (Maddison et al. 2017, eq. 8 / Appendix C.2):

        log (n-1)! + (n-1) log lambda + sum_k (z_k - logsumexp_j z_j),   z_k = log alpha_k - lambda y_k,

    with respect to Lebesgue measure on the log-ratios (y_1 - y_n, ..., y_{n-1} - y_n). Categories
    whose logit is -inf are left out (n counts the others).

    y is first centred at its *minimum* over the included categories (the density does not change):
    then lambda * (y_k - y_min) >= 0, every z_k is at most log alpha_k, the logsumexp is of the size of
    the logits, and the sum adds nonpositive terms without cancellation. (Centring at the maximum makes
    z_k and the logsumexp both of size lambda |y| when many coordinates sit far below the largest one,
    and their difference then loses n * lambda |y| * eps: about 3 nats in float32 at n = 1000,
    lambda = 1000, y = -80, where the value is about 1200.)

    A point with y_k = -inf in an included category lies at infinity in the log-ratios, where kappa
    tends to 0 (as x_k^(lambda (n-1))): the result there is -inf, with zero gradient.

    Shapes: ``log_x`` and ``logits`` broadcast to (batch..., K); ``temperature`` broadcasts to (batch...).
    """
    included = logits > float("-inf")
    finite = included & (log_x > float("-inf"))
    neg_inf = torch.tensor(float("-inf"), dtype=log_x.dtype, device=log_x.device)
    # The density is shift-invariant in y, so the centring constant needs no gradient.
    y_min = torch.where(finite, log_x, float("inf")).amin(dim=-1, keepdim=True).detach()
    y_min = torch.where(torch.isfinite(y_min), y_min, 0.0)
    centred = torch.where(finite, log_x - y_min, 0.0)  # masked first: no 0 * inf in the backward pass
    z = torch.where(included, logits - temperature.unsqueeze(-1) * centred, neg_inf)
    n = included.sum(dim=-1).to(log_x.dtype)
    lse = torch.logsumexp(z, dim=-1, keepdim=True)
    centred_sum = torch.where(included, z - lse, 0.0).sum(dim=-1)
    log_kappa = torch.lgamma(n) + (n - 1) * temperature.log() + centred_sum
    at_infinity = (included & ~finite).any(dim=-1)
    return torch.where(at_infinity, neg_inf, log_kappa)


def exp_concrete_log_density_at_noise(
    gumbel: Tensor,
    logits: Tensor,
    temperature: Tensor,
    *,
    has_excluded: bool = True,
    exp_neg_gumbel: Tensor | None = None,
) -> Tensor:
    """log kappa at the distribution's own sample y = log_softmax((log alpha + G)/lambda), from the noise:

        log (n-1)! + (n-1) log lambda - sum_k G_k - n logsumexp_k(-G_k),

    which holds for every alpha (see docs/math.md), so its gradient with respect to the logits is 0.
    ``has_excluded=False`` promises that no logit is -inf and skips the masking (three fewer passes);
    ``exp_neg_gumbel``, exp(-G) when already known (see
    [`sample_gumbel_and_exponential`][concretelab.functional.sample_gumbel_and_exponential]), turns logsumexp_k(-G_k)
    into log sum_k exp(-G_k) with no exp pass and no max-shift (it is finite and positive).
    """
    if not has_excluded:
        n = gumbel.shape[-1]
        total = gumbel.sum(dim=-1)
        if exp_neg_gumbel is not None:
            lse = exp_neg_gumbel.sum(dim=-1).log()
        else:
            lse = torch.logsumexp(-gumbel, dim=-1)
        return (math.lgamma(n) - total - n * lse) + (n - 1) * temperature.log()
    included = logits > float("-inf")
    neg_g = torch.where(included, -gumbel, float("-inf"))
    n = included.sum(dim=-1).to(gumbel.dtype)
    total = torch.where(included, -gumbel, 0.0).sum(dim=-1)
    return torch.lgamma(n) + (n - 1) * temperature.log() + total - n * torch.logsumexp(neg_g, dim=-1)


def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)), exact to rounding in float32 and float64 (torch's default threshold of 20
    replaces it by x with an absolute error of 2e-9; 40 keeps that error below 5e-18)."""
    return torch.nn.functional.softplus(x, beta=1.0, threshold=40.0)


def bernoulli_log_prob(logits: Tensor, value: Tensor) -> Tensor:
    """Elementwise log Bernoulli(value; sigmoid(logits)) = value * logits - softplus(logits) (no log of a sigmoid;
    = value log sigmoid(a) + (1 - value) log sigmoid(-a)); logits and value broadcast."""
    return value * logits - softplus(logits)


def bernoulli_log_prob_sum(logits: Tensor, value: Tensor) -> Tensor:
    """[`bernoulli_log_prob`][concretelab.functional.bernoulli_log_prob] summed over the last dimension: sum_d value_d
    a_d - sum_d softplus(a_d).

    The two sums are taken apart, so no (samples, batch, units) difference is allocated, and logits broadcast
    over samples (a posterior's (batch, units) against (samples, batch, units) values) pass softplus once
    (benchmarks/bernoulli_sum.py: 1.2-1.3x on L_k's likelihood term). The rounding differs from summing the
    elementwise form, by about as much as summing in another order. Logits that broadcast along the last
    dimension itself fall back to the elementwise form.
    """
    if logits.shape[-1:] != value.shape[-1:]:
        return bernoulli_log_prob(logits, value).sum(-1)
    return (value * logits).sum(-1) - softplus(logits).sum(-1)


def categorical_log_prob(logits: Tensor, value: Tensor, dim: int = -1) -> Tensor:
    """log Categorical(value; softmax(logits)) = sum_k value_k log_softmax(logits)_k along ``dim`` (value one-hot,
    or any weights); a -inf logit with a zero weight contributes 0."""
    log_p = torch.log_softmax(logits, dim=dim)
    return torch.where(value == 0, 0.0, value * log_p).sum(dim=dim)


def logit_binconcrete_log_density(z: Tensor, logits: Tensor, temperature: Tensor) -> Tensor:
    """Log-density of Z = (log alpha + L)/lambda, L standard logistic, at ``z`` (Maddison et al. eq. 21):

        log lambda - softplus(-t) - softplus(t),   t = lambda z - log alpha.
    """
    t = temperature * z - logits
    return temperature.log() - softplus(-t) - softplus(t)


def logit_binconcrete_log_density_at_noise(
    logistic: Tensor, temperature: Tensor, *, log_pdf: Tensor | None = None
) -> Tensor:
    """log q at the distribution's own sample z = (log alpha + L)/lambda, from its noise L (eq. 21 with
    lambda z - log alpha = L):

        log lambda - softplus(-L) - softplus(L),

    which does not depend on alpha. ``log_pdf``, the standard logistic log-density at L when already known
    (see [`sample_logistic_and_log_pdf`][concretelab.functional.sample_logistic_and_log_pdf]), replaces the two softplus
    passes.
    """
    if log_pdf is None:
        log_pdf = -softplus(-logistic) - softplus(logistic)
    return log_pdf + temperature.log()


def binconcrete_log_density(z: Tensor, logits: Tensor, temperature: Tensor) -> Tensor:
    """Log-density of X = sigmoid(Z) on (0, 1) at x = sigmoid(``z``) (Maddison et al. eq. 20):

        log p(x) = log q_Z(z) - log x - log(1 - x) = log q_Z(z) + softplus(-z) + softplus(z).
    """
    return logit_binconcrete_log_density(z, logits, temperature) + softplus(-z) + softplus(z)
