"""The record a sample keeps of the log-space point it was drawn from (and, for the identity at a distribution's
own sample, its noise), and the rule for using it: only while the sample, the noise and the distribution's
parameters provably hold the values they had at sampling time. Keyed by identity (as torch's Transform cache
with cache_size=1) and held weakly.

A record is read only by a distribution that maps values to log-space points as the one that made it (its
*reading*: the family, and for HardConcrete its stretch): the point of a BinConcrete sample is logit(x), which a
LogitBinConcrete, reading its values as logits, must not use.

The proof is a *stamp* taken at sampling time and compared before every use, at O(1) cost and with no host
synchronisation on CUDA: a tensor's version counter, data pointer, storage offset, shape, stride, dtype and
device. PyTorch bumps the version counter on every in-place change through the tensor or any view of it (under
``no_grad`` and ``inference_mode`` too), so a changed sample, changed noise or changed parameters fail the
comparison and ``log_prob`` computes the density from the values.

Two routes leave no trace in a version counter:

* *inference tensors* (made under ``torch.inference_mode()``) have none. Their record keeps a snapshot of the
  sample's values and compares it before use (the only case that pays a pass over memory);
* writes through ``.data`` or a NumPy alias, which PyTorch documents as invisible to autograd's own checks. Into
  the sample, they are seen all the same: its storage is shared copy-on-write with the record (below). Noise the
  caller gives is copied by the distribution, so no one else can write it. Into the parameters, they are seen only
  under the ``"values"`` guard of ``record_guard``: ``"stamp"`` (the default), ``"values"`` (also compare
  snapshots of the sample, noise and parameters before every use, at the cost of copies and comparisons) or
  ``"off"`` (never use a record; every value is scored from its values, which underflow at low temperature).

Nothing is remembered under ``torch.compile`` or inside a ``torch.func`` transform (a record keyed by object
identity would break the graph; a functorch wrapper has no storage to stamp): such samples are scored from their
values, and ``sample_and_log_prob`` returns the exact density with the sample.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from concretelab.functional import traced

__all__ = ["Recalled", "recall", "record_guard", "remember_log", "set_record_guard"]

Guard = Literal["stamp", "values", "off"]
_GUARDS: tuple[str, ...] = ("stamp", "values", "off")
_guard: list[str] = ["stamp"]  # the current mode, in a list so that the context manager can restore it


def set_record_guard(mode: Guard) -> None:
    """Set how a remembered point is proven current (see the module docstring): ``"stamp"`` (default),
    ``"values"`` or ``"off"``."""
    if mode not in _GUARDS:
        raise ValueError(f"mode must be one of {', '.join(map(repr, _GUARDS))}, got {mode!r}")
    _guard[0] = mode


@contextlib.contextmanager
def record_guard(mode: Guard) -> Iterator[None]:
    """Within the block, remembered points are proven current by ``mode``
    ([`set_record_guard`][concretelab.distributions.set_record_guard])."""
    previous = _guard[0]
    set_record_guard(mode)
    try:
        yield
    finally:
        _guard[0] = previous


# Copy-on-write (PyTorch's lazy clone): while the record holds a lazy clone of the sample, the sample's storage is
# shared copy-on-write, and *any* write to it (in place, through a view, ``.data``, a NumPy alias, which takes a
# mutable pointer) first copies it, after which PyTorch no longer reports the sample as copy-on-write. Reads never
# copy. So an O(1) query proves the sample unchanged by every route. A private API: where this torch lacks it, or a
# device refuses it, the sample's proof falls back to the stamp.
_COPY_ON_WRITE = hasattr(torch, "_lazy_clone") and hasattr(torch._C, "_is_cow_tensor")


def _lazy_clone(tensor: Tensor) -> Tensor | None:
    if not _COPY_ON_WRITE or (tensor.is_cuda and torch.cuda.is_current_stream_capturing()):
        return None
    try:
        with torch.no_grad():
            return torch._lazy_clone(tensor.detach())
    except (RuntimeError, NotImplementedError):  # a device or storage without copy-on-write
        return None


@dataclass(frozen=True)
class _Proof:
    """What ``tensor`` held at sampling time: its stamp; for a sample of ours, a lazy (copy-on-write) clone whose
    sharing any write breaks; and a copy of its values where neither can prove them (an inference tensor, or every
    tensor under the ``"values"`` guard)."""

    stamp: tuple[Any, ...] | None
    snapshot: Tensor | None
    lazy: Tensor | None = None

    @staticmethod
    def of(tensor: Tensor, *, values: bool, own: bool = False) -> _Proof:
        """``own``: the tensor is a sample we just made (no alias of it exists yet), proven by copy-on-write."""
        if tensor.is_inference() or values:
            with torch.no_grad():
                snapshot = tensor.detach().clone()
            return _Proof(None if tensor.is_inference() else _stamp(tensor), snapshot)
        lazy = _lazy_clone(tensor) if own else None
        return _Proof(_stamp(tensor, pointer=lazy is None), None, lazy)

    def holds(self, tensor: Tensor) -> bool:
        if tensor.is_inference() != (self.stamp is None):
            return False
        if self.lazy is not None and not torch._C._is_cow_tensor(tensor):
            return False  # written since (by any route): its storage was copied
        if self.stamp is not None and _stamp(tensor, pointer=self.lazy is None) != self.stamp:
            return False
        if self.snapshot is not None:
            with torch.no_grad():
                return tensor.shape == self.snapshot.shape and bool(torch.equal(tensor.detach(), self.snapshot))
        return True


def _stamp(tensor: Tensor, *, pointer: bool = True) -> tuple[Any, ...]:
    """Version counter, storage offset, shape, stride, dtype, device and (``pointer``) the data pointer. The data
    pointer is left out for a copy-on-write sample: reading it through ``data_ptr()`` would copy the storage."""
    return (tensor._version, tensor.data_ptr() if pointer else None, tensor.storage_offset(), tensor.shape,
            tensor.stride(), tensor.dtype, tensor.device)


@dataclass(frozen=True)
class _Origin:
    """Where a sample came from: the distribution that drew it, its noise (and exp(-noise) when drawn here), and
    proofs that the noise and the distribution's parameters are unchanged."""

    source: weakref.ref[Any]
    noise: Tensor
    exp_neg_noise: Tensor | None
    proofs: tuple[_Proof, _Proof, _Proof]  # noise, logits, temperature

    def current_for(self, dist: Any) -> bool:
        noise, logits, temperature = self.proofs
        return (self.source() is dist and noise.holds(self.noise) and logits.holds(dist.logits)
                and temperature.holds(dist.temperature))


@dataclass(frozen=True)
class Recalled:
    """A remembered sample, proven unchanged: its log-space point (the sample itself for a family that samples
    in log space; it carries the sampling graph when the sample does) and where it came from."""

    log_point: Tensor
    origin: _Origin | None
    excluded: bool = False  # the point may hold -inf: it was drawn with some category excluded (logit -inf)

    def own_noise(self, dist: Any) -> tuple[Tensor, Tensor | None] | None:
        """``(noise, exp(-noise) or None)`` if ``dist`` drew the sample and its parameters and the noise are
        unchanged since (the identity at the own sample holds); None otherwise."""
        if self.origin is None or not self.origin.current_for(dist):
            return None
        return self.origin.noise, self.origin.exp_neg_noise


@dataclass(frozen=True)
class _Entry:
    sample: weakref.ref[Tensor]
    proof: _Proof
    log_value: Tensor | None  # None: the sample is its own log-space point (no strong reference to it here)
    origin: _Origin | None
    reading: Hashable  # how a value maps to its point: only a distribution that reads values so may use it
    excluded: bool


_LOG_CACHE: dict[int, _Entry] = {}


def _forget(key: int, ref: weakref.ref[Tensor]) -> None:
    entry = _LOG_CACHE.get(key)
    if entry is not None and entry.sample is ref:
        del _LOG_CACHE[key]


def remember_log(
    sample: Tensor,
    log_value: Tensor,
    *,
    reading: Hashable,
    excluded: bool = False,
    source: Any = None,
    noise: Tensor | None = None,
    exp_neg_noise: Tensor | None = None,
) -> None:
    """Remember that ``sample`` was produced from ``log_value`` (its logit or log-simplex coordinates) by a
    distribution that maps values to points by ``reading`` (``excluded``: with some category excluded, so the point
    may hold -inf), and, when given, by distribution ``source`` from ``noise`` (for the identity at the own
    sample)."""
    mode = _guard[0]
    if mode == "off" or traced(sample):
        return
    values = mode == "values"
    key = id(sample)
    ref = weakref.ref(sample, lambda r, key=key: _forget(key, r))
    origin = None
    if source is not None and noise is not None:
        proofs = (_Proof.of(noise, values=values), _Proof.of(source.logits, values=values),
                  _Proof.of(source.temperature, values=values))
        origin = _Origin(weakref.ref(source), noise, exp_neg_noise, proofs)
    _LOG_CACHE[key] = _Entry(ref, _Proof.of(sample, values=values, own=True),
                             None if log_value is sample else log_value, origin, reading, excluded)


def recall(value: Tensor, reading: Hashable) -> Recalled | None:
    """The record of ``value`` if it is (by identity) a sample we produced, by a distribution that maps values to
    points by ``reading`` as the caller does, and it holds the values it was drawn with (proven by the current
    ``record_guard``); None otherwise."""
    if _guard[0] == "off" or traced(value):
        return None
    entry = _LOG_CACHE.get(id(value))
    if entry is None or entry.reading != reading or entry.sample() is not value or not entry.proof.holds(value):
        return None
    if _guard[0] == "values" and entry.proof.snapshot is None:
        return None  # remembered under the stamp guard: its values cannot be proven now
    return Recalled(value if entry.log_value is None else entry.log_value, entry.origin, entry.excluded)
