"""Argument types shared by the subcommands: integers with a bound and strict comma-separated lists.

An argparse ``type`` raises ``argparse.ArgumentTypeError``, which argparse prints as
``concretelab COMMAND: error: argument --flag: ...`` with exit status 2, before any work starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

__all__ = ["comma_list", "int_at_least", "non_negative_int", "positive_int"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (underscores allowed, as in 10_000; no floats such as 1e5)."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def comma_list(
    text: str, flag: str, *, allowed: Sequence[str] | None = None, convert: Callable[[str], object] = str
) -> list:
    """The items of a comma-separated ``text`` for ``flag``: no empty item (``1,,2``, ``,``), no repeated item,
    each one of ``allowed`` when given and converted by ``convert``; ValueError naming the flag otherwise."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ValueError(f"{flag} must be a comma-separated list without empty items, got {text!r}")
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise ValueError(f"{flag} lists {', '.join(map(repr, repeated))} more than once: {text!r}")
    if allowed is not None:
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise ValueError(
                f"{flag}: unknown {', '.join(map(repr, unknown))}; expected some of {', '.join(allowed)}"
            )
    values = []
    for item in items:
        try:
            values.append(convert(item))
        except ValueError:
            raise ValueError(f"{flag} must list numbers, got {item!r} in {text!r}") from None
    return values
