"""The record a sample keeps of the log-space point it was drawn from (and, for the identity at a distribution's
own sample, its noise), and the rule for using it: only while the sample provably holds the values it was drawn
with. Keyed by identity (as torch's Transform cache with cache_size=1) and held weakly.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["cached_log", "cached_own_noise", "remember_log"]

# ----------------------------------------------------------------------------------------------
# The log-space cache: rsample remembers, for the tensor it returns, the log-space value it came from.
# Keyed by identity (as torch's Transform cache with cache_size=1), held weakly, for every sample.

# A remembered point is used only for a tensor whose values are provably those it was drawn with: the entry
# keeps a snapshot of the sample's values and compares it (torch.equal) before every use. The version counter
# alone is not enough: a change through ``x.data`` (its own counter), an inference tensor (no counter) or
# a NumPy view leaves it untouched. When the values differ the point is ignored and the density is
# recomputed from the value (never the reverse).
@dataclass(frozen=True)
class _Origin:
    """Where a sample came from: the distribution that drew it, its noise, and snapshots of that
    distribution's parameters at the time (so a later change of the parameters, by any route, is noticed)."""

    source: weakref.ref[Any]
    noise: Tensor
    params: tuple[Tensor, Tensor]
    exp_neg_noise: Tensor | None


@dataclass(frozen=True)
class _Remembered:
    """The record kept for one sample: a weak reference to it, the snapshot of its values, the log-space
    point it came from (None when the sample is its own log-space point) and, for the own-sample identity,
    its origin."""

    sample: weakref.ref[Tensor]
    snapshot: Tensor
    log_value: Tensor | None
    origin: _Origin | None

    def log_point_of(self, value: Tensor) -> Tensor | None:
        """The log-space point, if ``value`` is the remembered sample and still holds the values it was drawn
        with; None otherwise."""
        if self.sample() is not value or not _same_values(value, self.snapshot):
            return None
        return value if self.log_value is None else self.log_value


_LOG_CACHE: dict[int, _Remembered] = {}


def _forget(key: int, ref: weakref.ref[Tensor]) -> None:
    entry = _LOG_CACHE.get(key)
    if entry is not None and entry.sample is ref:
        del _LOG_CACHE[key]


def _same_values(value: Tensor, snapshot: Tensor) -> bool:
    with torch.no_grad():
        return value.shape == snapshot.shape and bool(torch.equal(value.detach(), snapshot))


def _param_snapshot(dist: Any) -> tuple[Tensor, Tensor]:
    with torch.no_grad():
        return dist.logits.detach().clone(), dist.temperature.detach().clone()


def remember_log(
    sample: Tensor,
    log_value: Tensor,
    *,
    source: Any = None,
    noise: Tensor | None = None,
    exp_neg_noise: Tensor | None = None,
) -> None:
    """Remember that ``sample`` was produced from ``log_value`` (its logit or log-simplex coordinates),
    and, when given, by distribution ``source`` from ``noise`` (for the identity at the own sample).

    Under ``torch.compile`` nothing is remembered (a record keyed by object identity would break the graph and
    force a recompilation for every new sample): scored there, a sample is scored from its value."""
    if torch.compiler.is_compiling():
        return
    key = id(sample)
    ref = weakref.ref(sample, lambda r, key=key: _forget(key, r))
    origin = None
    if source is not None and noise is not None:
        origin = _Origin(weakref.ref(source), noise, _param_snapshot(source), exp_neg_noise)
    with torch.no_grad():
        snapshot = sample.detach().clone()
    # A sample that is its own log-space point (ExpConcrete, LogitBinConcrete) is stored as None: a strong
    # reference to it here would keep it alive forever.
    _LOG_CACHE[key] = _Remembered(ref, snapshot, None if log_value is sample else log_value, origin)


def cached_log(value: Tensor) -> Tensor | None:
    """The log-space value ``value`` was sampled from, if it is (by identity) a sample we produced and its
    values are unchanged since (compared with a snapshot); always None under ``torch.compile``."""
    if torch.compiler.is_compiling():
        return None
    entry = _LOG_CACHE.get(id(value))
    return None if entry is None else entry.log_point_of(value)


def cached_own_noise(value: Tensor, dist: Any) -> tuple[Tensor, Tensor, Tensor | None] | None:
    """``(log_value, noise, exp(-noise) or None)`` if ``value`` is an unmodified sample that ``dist`` itself
    drew and ``dist``'s parameters have not changed since; None otherwise (and under ``torch.compile``)."""
    if torch.compiler.is_compiling():
        return None
    entry = _LOG_CACHE.get(id(value))
    if entry is None or entry.origin is None:
        return None
    origin = entry.origin
    if origin.source() is not dist or not (
        _same_values(dist.logits, origin.params[0]) and _same_values(dist.temperature, origin.params[1])
    ):
        return None
    log_value = entry.log_point_of(value)
    return None if log_value is None else (log_value, origin.noise, origin.exp_neg_noise)
