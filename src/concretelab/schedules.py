"""Temperature schedules for the Concrete relaxation: constant, exponential decay with a floor, linear,
and a learnable temperature with a floor.

A schedule is a small frozen dataclass: ``schedule(step) -> float`` gives the temperature at a training
step, and ``to_dict()`` / ``schedule_from_dict`` round-trip it through TOML configs and checkpoints.
Prior and posterior temperatures are scheduled separately; ``paper_temperatures`` gives the constant
pairs of Maddison et al. (2017), Appendix C.

References
    [1] Maddison, Mnih & Teh, "The Concrete Distribution", ICLR 2017 (Sec. 4, Appendix C: temperatures).
    [2] Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017 (Sec. 4.1:
        tau = max(0.5, exp(-r t)), updated every N steps).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from concretelab.checks import check_int, parse_number

__all__ = [
    "ConstantTemperature",
    "ExponentialDecayTemperature",
    "LearnableTemperature",
    "LinearTemperature",
    "Schedule",
    "paper_temperatures",
    "parse_schedule",
    "parse_temperature",
    "schedule_from_dict",
]


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return v


def _step(step: int) -> int:
    return check_int("step", step, 0)


def parse_temperature(text: str | float | int) -> float:
    """A temperature from a number or a fraction string: ``"2/3"`` -> 0.666..., ``"0.5"``, ``1``.

    Raises ``ValueError`` for anything that is not a finite positive number (``"0"``, ``"-1"``, ``"nan"``,
    ``"inf"``, ``"1/0"``, ``"abc"``).
    """
    try:
        value = parse_number(text, "temperature")
    except ValueError:
        raise ValueError(
            f"temperature must be a finite positive number or fraction such as '2/3', got {text!r}"
        ) from None
    return _positive("temperature", value)


@dataclass(frozen=True)
class ConstantTemperature:
    """lambda(t) = value."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _positive("value", self.value))

    def __call__(self, step: int) -> float:
        _step(step)
        return self.value

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "constant", **asdict(self)}


@dataclass(frozen=True)
class ExponentialDecayTemperature:
    """lambda(t) = max(floor, start * exp(-rate * interval * floor(t / interval))).

    With start = 1 and interval = N this is Jang et al. (2017)'s tau = max(0.5, exp(-r t)) updated every N
    steps (they use N = 1000, floor 0.5).
    """

    rate: float
    floor: float
    start: float = 1.0
    interval: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.rate, bool) or not isinstance(self.rate, int | float) or not (
            math.isfinite(self.rate) and self.rate >= 0
        ):
            raise ValueError(f"rate must be a finite number >= 0, got {self.rate!r}")
        object.__setattr__(self, "rate", float(self.rate))
        object.__setattr__(self, "floor", _positive("floor", self.floor))
        object.__setattr__(self, "start", _positive("start", self.start))
        check_int("interval", self.interval, 1)

    def __call__(self, step: int) -> float:
        t = _step(step) // self.interval * self.interval
        return max(self.floor, self.start * math.exp(-self.rate * t))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "exponential", **asdict(self)}


@dataclass(frozen=True)
class LinearTemperature:
    """lambda(t) = start + (end - start) * min(t, steps) / steps: start -> end over ``steps`` steps, then end."""

    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _positive("start", self.start))
        object.__setattr__(self, "end", _positive("end", self.end))
        check_int("steps", self.steps, 1)

    def __call__(self, step: int) -> float:
        frac = min(_step(step), self.steps) / self.steps
        return self.start + (self.end - self.start) * frac

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "linear", **asdict(self)}


Schedule = ConstantTemperature | ExponentialDecayTemperature | LinearTemperature

_KINDS: dict[str, type] = {
    "constant": ConstantTemperature,
    "exponential": ExponentialDecayTemperature,
    "linear": LinearTemperature,
}


def schedule_from_dict(data: dict[str, Any]) -> Schedule:
    """Rebuild a schedule from its ``to_dict()`` (``{"kind": ..., **fields}``); unknown kinds/keys raise."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ValueError(f"a schedule dict needs a 'kind' key (one of {sorted(_KINDS)}), got {data!r}")
    fields = dict(data)
    kind = fields.pop("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown schedule kind {kind!r}; expected one of {sorted(_KINDS)}")
    try:
        return _KINDS[kind](**fields)
    except TypeError as error:
        raise ValueError(f"bad fields for a {kind!r} schedule: {fields!r} ({error})") from None


def parse_schedule(text: str) -> Schedule:
    """A schedule from a CLI string:

    - ``"2/3"`` or ``"0.5"``: constant;
    - ``"exp:RATE:FLOOR[:START[:INTERVAL]]"``: ``ExponentialDecayTemperature``, e.g. ``"exp:1e-4:0.5"``;
    - ``"linear:START:END:STEPS"``: ``LinearTemperature``, e.g. ``"linear:1:1/2:10000"``.
    """
    if not isinstance(text, str):
        raise ValueError(f"schedule must be a string, got {text!r}")
    parts = [p.strip() for p in text.split(":")]
    kind = parts[0].lower()
    try:
        if kind in ("exp", "exponential") and len(parts) in (3, 4, 5):
            rate = float(parts[1])
            floor = parse_temperature(parts[2])
            start = parse_temperature(parts[3]) if len(parts) > 3 else 1.0
            interval = int(parts[4]) if len(parts) > 4 else 1
            return ExponentialDecayTemperature(rate=rate, floor=floor, start=start, interval=interval)
        if kind == "linear" and len(parts) == 4:
            return LinearTemperature(parse_temperature(parts[1]), parse_temperature(parts[2]), int(parts[3]))
        if len(parts) == 1:
            return ConstantTemperature(parse_temperature(parts[0]))
    except ValueError as error:
        raise ValueError(f"bad temperature schedule {text!r}: {error}") from None
    raise ValueError(
        f"bad temperature schedule {text!r}; expected a number or fraction ('2/3'), "
        "'exp:RATE:FLOOR[:START[:INTERVAL]]' or 'linear:START:END:STEPS'"
    )


class LearnableTemperature(nn.Module):
    """A learned temperature lambda = floor + softplus(theta), theta unconstrained, so lambda > floor always.

    ``forward()`` returns a 0-d tensor (pass it as ``prior_temperature`` or ``posterior_temperature``);
    ``to_dict()`` records the construction arguments (the learned value lives in the state dict).
    """

    def __init__(self, initial: float, floor: float = 0.05) -> None:
        super().__init__()
        initial = _positive("initial", initial)
        floor = _positive("floor", floor)
        if initial <= floor:
            raise ValueError(f"initial must exceed floor, got initial={initial} and floor={floor}")
        self.initial = initial
        self.floor = floor
        gap = initial - floor  # inverse softplus: theta = log(expm1(gap)), written stably for large gaps
        theta = gap + math.log(-math.expm1(-gap))
        self.theta = nn.Parameter(torch.tensor(theta, dtype=torch.get_default_dtype()))

    def forward(self) -> Tensor:
        return self.floor + nn.functional.softplus(self.theta)

    def __call__(self, step: int | None = None) -> Tensor:  # same call shape as the schedules
        return super().__call__()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "learnable", "initial": self.initial, "floor": self.floor}


_PAPER = {2: (1 / 2, 2 / 3), 4: (2 / 3, 1.0), 8: (2 / 5, 2 / 3)}


def paper_temperatures(categories: int) -> tuple[float, float]:
    """(prior, posterior) temperatures of Maddison et al. (2017), Appendix C: binary (1/2, 2/3),
    4-ary (2/3, 1), 8-ary (2/5, 2/3)."""
    if categories not in _PAPER:
        raise ValueError(f"the paper gives temperatures for categories in {sorted(_PAPER)}, got {categories!r}")
    return _PAPER[categories]
