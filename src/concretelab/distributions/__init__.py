"""Concrete-family distributions: torch.distributions subclasses, exact in log space.

Families (one per module): :class:`ExpConcrete` and :class:`Concrete` (``concrete.py``),
:class:`BinConcrete` and :class:`LogitBinConcrete` (``binary_concrete.py``), the straight-through
variants (``straight_through.py``) and :class:`HardConcrete` (``hard_concrete.py``). :func:`record_guard` sets
how a sample's remembered log-space point is proven current (``_record.py``).
"""

from concretelab.distributions._record import record_guard, set_record_guard
from concretelab.distributions.binary_concrete import BinConcrete, LogitBinConcrete
from concretelab.distributions.concrete import Concrete, ExpConcrete
from concretelab.distributions.hard_concrete import HardConcrete
from concretelab.distributions.straight_through import (
    StraightThroughBinConcrete,
    StraightThroughConcrete,
)

__all__ = [
    "BinConcrete",
    "Concrete",
    "ExpConcrete",
    "HardConcrete",
    "LogitBinConcrete",
    "StraightThroughBinConcrete",
    "StraightThroughConcrete",
    "record_guard",
    "set_record_guard",
]
