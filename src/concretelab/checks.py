"""Argument checks shared by the whole package, each raising ``ValueError`` with a message that names the argument,
says what was wrong and what is expected."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

__all__ = ["check_fraction", "check_int", "check_positive", "parse_number"]


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an integer ``>= minimum`` (bools and floats are refused), or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _checked_float(name: str, value: Any, valid: Callable[[float], bool], expected: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not valid(number):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return number


def check_positive(name: str, value: Any) -> float:
    """``value`` as a finite positive float, or a ValueError naming ``name``."""
    return _checked_float(name, value, lambda v: math.isfinite(v) and v > 0, "a finite positive number")


def check_fraction(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1), or a ValueError naming ``name``."""
    return _checked_float(name, value, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def parse_number(value: Any, name: str = "value") -> float:
    """A float from a number or a string such as ``"0.5"``, ``"1e-4"``, ``"2/3"`` or ``"1 / 2"`` (a fraction of
    two decimal numbers), or a ValueError naming ``name``. Bools are refused; "nan" and "inf" parse (range
    checks are the caller's)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got the boolean {value}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                numerator, denominator = text.split("/", 1)
                if "/" not in denominator:
                    return float(Fraction(numerator.strip()) / Fraction(denominator.strip()))
                raise ValueError(text)
            return float(text)
        except (ValueError, ZeroDivisionError):
            pass
    raise ValueError(f"{name} must be a number or a fraction such as 2/3, got {value!r}")
