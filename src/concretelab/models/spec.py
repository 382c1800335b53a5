"""Parsing of network spec strings (the notation of Maddison et al. 2017, Sec. 5, after Mnih & Gregor 2014).

A spec lists layers from the top of the generative model down: ``NH`` is a stochastic layer of N bits,
``NV`` a visible layer of N pixels; ``-`` joins two layers with a linear (affine) map, ``~`` with two
deterministic tanh layers as wide as the stochastic layer above them. Forms:

- SBN: ``200H-784V``, ``200H~784V``, ``200H-200H-784V``, ``200H~200H~784V`` (any sizes);
- structured prediction: ``392V-240H-240H-392V``: p(lower | upper) with the conditioning pixels first.

With K-ary units (``categories`` = K, a power of 2) N counts bits: a layer holds N / log2(K) K-way units.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["SPEC_FORMS", "NetworkSpec", "bits_per_unit", "parse_spec"]

SPEC_FORMS = (
    "SBN specs such as '200H-784V', '200H~784V', '200H-200H-784V', '200H~200H~784V' (stochastic layers NH top "
    "to bottom, then the visible NV; '-' linear, '~' two tanh layers), structured prediction "
    "'392V-240H-240H-392V' (conditioning pixels first), or 'categorical-vae'"
)

_TOKEN = re.compile(r"(\d+)([HV])")
_FULL = re.compile(r"\d+[HV](?:[-~]\d+[HV])+")


@dataclass(frozen=True)
class NetworkSpec:
    """A parsed spec.

    spec: the canonical string; hidden_bits: stochastic layer sizes in bits, in generative order (top first
    for an SBN, first after the conditioning pixels for structured prediction); units: K-way units per layer;
    nonlinear: one flag per connection, in the order of the string; visible: pixels modelled;
    conditioning: conditioning pixels (0 for an SBN); categories: K.
    """

    spec: str
    hidden_bits: tuple[int, ...]
    units: tuple[int, ...]
    nonlinear: tuple[bool, ...]
    visible: int
    conditioning: int
    categories: int

    @property
    def structured(self) -> bool:
        return self.conditioning > 0


def bits_per_unit(categories: int) -> int:
    """log2(K) for K a power of 2 >= 2; ValueError otherwise."""
    if isinstance(categories, bool) or not isinstance(categories, int) or categories < 2 or (
        categories & (categories - 1)
    ):
        raise ValueError(f"categories must be a power of 2 >= 2 (2, 4, 8, ...), got {categories!r}")
    return int(math.log2(categories))


def parse_spec(spec: str, categories: int = 2) -> NetworkSpec:
    """Parse an SBN or structured-prediction spec; ValueError naming the problem and the accepted forms."""
    if not isinstance(spec, str):
        raise ValueError(f"spec must be a string, got {spec!r}; expected {SPEC_FORMS}")
    text = spec.strip().replace("\u2013", "-").replace("\u2014", "-")
    if not _FULL.fullmatch(text):
        raise ValueError(f"cannot parse model spec {spec!r}; expected {SPEC_FORMS}")
    bits = bits_per_unit(categories)
    tokens = [(int(n), kind) for n, kind in _TOKEN.findall(text)]
    nonlinear = tuple(sep == "~" for sep in re.findall(r"[-~]", text))
    kinds = "".join(kind for _, kind in tokens)
    if re.fullmatch(r"H+V", kinds):
        conditioning = 0
        hidden = tuple(n for n, _ in tokens[:-1])
    elif re.fullmatch(r"VH+V", kinds):
        conditioning = tokens[0][0]
        hidden = tuple(n for n, _ in tokens[1:-1])
    else:
        raise ValueError(
            f"model spec {spec!r} has layers {kinds!r}: expected one or more H layers then one V layer "
            f"(an SBN) or V, H layers, V (structured prediction); {SPEC_FORMS}"
        )
    if any(n < 1 for n, _ in tokens):
        raise ValueError(f"every layer size in model spec {spec!r} must be >= 1; expected {SPEC_FORMS}")
    for n in hidden:
        if n % bits:
            raise ValueError(
                f"layer {n}H in model spec {spec!r} is not divisible by log2(categories) = {bits}: with "
                f"categories={categories} every stochastic layer size counts bits and must be a multiple of {bits}"
            )
    return NetworkSpec(
        spec=text,
        hidden_bits=hidden,
        units=tuple(n // bits for n in hidden),
        nonlinear=nonlinear,
        visible=tokens[-1][0],
        conditioning=conditioning,
        categories=categories,
    )
