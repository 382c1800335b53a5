"""Straight-through Concrete: the hard (one-hot / 0-1) value forward, the relaxed sample's gradient backward.

A sample is ``hard + soft - soft.detach()`` (Bengio, Leonard & Courville 2013, arXiv:1308.3432; Jang,
Gu & Poole 2017, Sec. 2.2): its value is exactly hard, its gradient that of the Concrete sample. The density
of a hard vertex is not defined, so ``log_prob`` scores the soft point the sample came from: ``rsample`` and
``sample`` remember it in the same record as every other family's log-space point (``_record.py``), for the
tensor they return, while it holds the values it was drawn with. Any other tensor (a plain hard value, or a
copy, reshape or in-place change of a sample) has no soft point, and ``log_prob`` raises ``ValueError`` saying
so; ``sample_and_log_prob`` returns the density with the sample and needs no record (nor works under
``torch.compile``, where nothing is remembered).
"""

from __future__ import annotations

import torch
from torch import Tensor

from concretelab.distributions._base import GumbelDraw, remember_log
from concretelab.distributions.binary_concrete import BinConcrete
from concretelab.distributions.concrete import Concrete, ExpConcrete
from concretelab.functional import one_hot_argmax

__all__ = ["StraightThroughBinConcrete", "StraightThroughConcrete"]


def _no_soft_point(what: str) -> ValueError:
    """The error for a value with no remembered soft point (it is not the unchanged tensor rsample/sample returned)."""
    return ValueError(
        f"log_prob of a {what} needs the soft (relaxed) point the hard value came from: a hard value has no "
        "density. Pass the very tensor that rsample/sample returned, unchanged (a copy, reshape or detach of "
        "it, a plain tensor, or a sample changed after sampling carries no soft point), or draw with "
        "sample_and_log_prob, which returns the log-density with the sample."
    )


def _one_hot_of_log_point(y: Tensor) -> Tensor:
    return one_hot_argmax(y)


def _bit_of_logit(z: Tensor) -> Tensor:
    return (z > 0).to(z.dtype)


class StraightThroughConcrete(Concrete):
    """Concrete with straight-through samples: forward one-hot argmax of the Concrete sample, backward the
    Concrete sample's gradient (Jang et al. 2017, Sec. 2.2). ``log_prob`` scores the soft point.

    Args: as [`Concrete`][concretelab.distributions.Concrete].
    """

    _reading = "straight-through simplex"  # a one-hot value does not determine its soft point: only its record does

    def _value_of(self, y: Tensor, x: Tensor, draw: GumbelDraw) -> Tensor:
        """One-hot argmax of X = exp(y), with X's gradient."""
        return self._remember((_one_hot_of_log_point(y) - x.detach() + x).to(self.logits.dtype), y, draw)

    def _log_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        raise _no_soft_point("straight-through Concrete sample")

    def _point_slope(self, value: Tensor, point: Tensor) -> Tensor:
        """The straight-through convention: the hard value's gradient is the soft sample's, d log x / d x = 1/x."""
        return torch.exp(-point)

    @property
    def soft(self) -> ExpConcrete:
        """The relaxed distribution in log space whose samples these are."""
        return ExpConcrete(self.temperature, logits=self.logits, validate_args=False)


class StraightThroughBinConcrete(BinConcrete):
    r"""BinConcrete with straight-through samples: forward $\mathbb{1}[X > 1/2]$ (exactly 0 or 1), backward the
    gradient of $X = \sigma\bigl((\log \alpha + L)/\lambda\bigr)$. ``log_prob`` scores the soft point.

    Args: as [`BinConcrete`][concretelab.distributions.BinConcrete].
    """

    _reading = "straight-through sigmoid"  # a bit does not determine its soft point: only its record does

    def _value_of(self, z: Tensor) -> Tensor:
        """1[z > 0] with the gradient of sigmoid(z)."""
        soft = torch.sigmoid(z)
        value = (_bit_of_logit(z) - soft.detach() + soft).to(self.logits.dtype)
        remember_log(value, z, reading=self._reading)
        return value

    def _logit_of(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        raise _no_soft_point("straight-through BinConcrete sample")

    def _point_slope(self, value: Tensor, point: Tensor) -> Tensor:
        """The straight-through convention: the hard value's gradient is the soft sample's, 1 / (s (1 - s))."""
        soft = torch.sigmoid(point)
        return (soft * (1 - soft)).reciprocal()
