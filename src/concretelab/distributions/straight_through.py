"""Straight-through Concrete: the hard (one-hot / 0-1) value forward, the relaxed sample's gradient backward.

A sample is ``hard + soft - soft.detach()`` (Bengio, Leonard & Courville 2013, arXiv:1308.3432; Jang,
Gu & Poole 2017, Sec. 2.2): its value is exactly hard, its gradient that of the Concrete sample. The
sample is a :class:`StraightThroughSample`, a tensor that carries the log-space point of the soft
sample it came from, through ``clone``, ``detach``, ``to``, reshapes and indexing, so that ``log_prob``
scores that soft point (the density of a hard vertex is not defined). A hard value that no ``rsample``
produced cannot be scored, and ``log_prob`` raises ``ValueError`` saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from concretelab.distributions._base import GumbelDraw
from concretelab.distributions.binary_concrete import BinConcrete
from concretelab.distributions.concrete import Concrete, ExpConcrete
from concretelab.functional import one_hot_argmax

__all__ = ["StraightThroughBinConcrete", "StraightThroughConcrete", "StraightThroughSample"]


class StraightThroughSample(Tensor):
    """A hard sample that remembers the log-space soft point it came from (``soft_log``).

    Shape-preserving and shape-changing copies (clone, detach, to, float/double/half/bfloat16, contiguous,
    reshape, view, expand,
    squeeze/unsqueeze, flatten, permute/transpose, indexing) apply the same operation to ``soft_log``;
    every other operation returns a plain tensor.
    """

    soft_log: Tensor
    _PROPAGATE: ClassVar[frozenset[str]] = frozenset(
        {
            "clone", "detach", "to", "cpu", "cuda", "float", "double", "half", "bfloat16", "contiguous",
            "reshape", "view", "expand", "expand_as",
            "squeeze", "unsqueeze", "flatten", "unflatten", "permute", "transpose", "t", "__getitem__",
            "select", "narrow", "movedim", "requires_grad_", "detach_",
        }
    )  # fmt: skip

    @staticmethod
    def wrap(hard: Tensor, soft_log: Tensor) -> StraightThroughSample:
        out = hard.as_subclass(StraightThroughSample)
        out.soft_log = soft_log
        return out

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunctionSubclass():
            result = func(*_plain(args), **_plain(kwargs))
        name = getattr(func, "__name__", "")
        source = args[0] if args else None
        if (
            name in cls._PROPAGATE
            and isinstance(source, StraightThroughSample)
            and isinstance(result, Tensor)
            and not isinstance(result, StraightThroughSample)
        ):
            soft_args = (source.soft_log, *args[1:])
            if name in ("to", "cpu", "cuda", "float", "double", "half", "bfloat16"):  # keep the soft point's precision
                soft = _apply_device_only(source.soft_log, result)
            elif name == "expand_as":
                soft = source.soft_log.expand_as(_plain(args[1]))
            elif name in ("requires_grad_", "detach_"):
                soft = source.soft_log
            else:
                soft = func(*soft_args, **_plain(kwargs))
            if isinstance(soft, Tensor) and soft.shape == result.shape:
                return StraightThroughSample.wrap(result, soft)
        return result

    def __deepcopy__(self, memo: dict) -> StraightThroughSample:
        return StraightThroughSample.wrap(torch.Tensor.clone(self.as_subclass(Tensor)), self.soft_log.clone())

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickles as a plain tensor with its soft point
        return (StraightThroughSample.wrap, (self.as_subclass(Tensor), self.soft_log))


def _plain(obj: Any) -> Any:
    if isinstance(obj, StraightThroughSample):
        return obj.as_subclass(Tensor)
    if isinstance(obj, tuple):
        return tuple(_plain(o) for o in obj)
    if isinstance(obj, list):
        return [_plain(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _apply_device_only(soft: Tensor, like: Tensor) -> Tensor:
    return soft.to(device=like.device)


def _soft_log_or_raise(value: Tensor, what: str, hard_of: Callable[[Tensor], Tensor]) -> Tensor:
    """The soft point ``value`` carries, checked against the value: ``value`` must still equal the hard value
    of that point (``hard_of``), so a sample changed in place (``fill_``, ``.data``, ...) is never scored with
    the soft point of the sample it was before."""
    soft = getattr(value, "soft_log", None)
    if soft is None:
        raise ValueError(
            f"log_prob of a {what} needs the soft (relaxed) point the hard value came from: a hard value has no "
            "density. Pass the tensor returned by rsample/sample of a straight-through distribution (or a clone, "
            "detach, reshape or index of it); a plain tensor carries no soft point."
        )
    with torch.no_grad():
        plain = value.detach().as_subclass(Tensor)
        consistent = soft.shape == plain.shape and bool(((plain.float() - hard_of(soft).float()).abs() <= 1e-3).all())
    if not consistent:
        raise ValueError(
            f"log_prob of a {what}: the value no longer equals the hard value of the soft point it carries (it "
            "was changed after sampling), so that soft point cannot be scored; score the unchanged sample"
        )
    return soft


def _one_hot_of_log_point(y: Tensor) -> Tensor:
    return one_hot_argmax(y)


def _bit_of_logit(z: Tensor) -> Tensor:
    return (z > 0).to(z.dtype)


class StraightThroughConcrete(Concrete):
    """Concrete with straight-through samples: forward one-hot argmax of the Concrete sample, backward the
    Concrete sample's gradient (Jang et al. 2017, Sec. 2.2). ``log_prob`` scores the soft point.

    Args: as :class:`~concretelab.distributions.Concrete`.
    """

    def _value_of(self, y: Tensor, x: Tensor, draw: GumbelDraw) -> Tensor:
        """One-hot argmax of X = exp(y), with X's gradient."""
        value = (_one_hot_of_log_point(y) - x.detach() + x).to(self.logits.dtype)
        return StraightThroughSample.wrap(value, y)

    def _log_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        return _soft_log_or_raise(value, "straight-through Concrete sample", _one_hot_of_log_point).to(dtype)

    @property
    def soft(self) -> ExpConcrete:
        """The relaxed distribution in log space whose samples these are."""
        return ExpConcrete(self.temperature, logits=self.logits, validate_args=False)


class StraightThroughBinConcrete(BinConcrete):
    """BinConcrete with straight-through samples: forward 1[X > 1/2] (exactly 0 or 1), backward the gradient
    of X = sigmoid((log alpha + L)/lambda). ``log_prob`` scores the soft point.

    Args: as :class:`~concretelab.distributions.BinConcrete`.
    """

    def _value_of(self, z: Tensor) -> Tensor:
        """1[z > 0] with the gradient of sigmoid(z)."""
        soft = torch.sigmoid(z)
        value = (_bit_of_logit(z) - soft.detach() + soft).to(self.logits.dtype)
        return StraightThroughSample.wrap(value, z)

    def _logit_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        return _soft_log_or_raise(value, "straight-through BinConcrete sample", _bit_of_logit).to(dtype)
