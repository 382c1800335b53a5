"""Concrete-family distributions: torch.distributions subclasses, exact in log space.

Families (one per module): [`ExpConcrete`][concretelab.distributions.ExpConcrete] and
[`Concrete`][concretelab.distributions.Concrete] (``concrete.py``),
[`BinConcrete`][concretelab.distributions.BinConcrete] and
[`LogitBinConcrete`][concretelab.distributions.LogitBinConcrete] (``binary_concrete.py``), the straight-through variants
(``straight_through.py``) and [`HardConcrete`][concretelab.distributions.HardConcrete] (``hard_concrete.py``).
[`record_guard`][concretelab.distributions.record_guard] sets how a sample's remembered log-space point is proven
current (``_record.py``).
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
