"""concretelab/checks.py: the argument checks every module uses, with messages naming the argument."""

from __future__ import annotations

import math

import pytest

from concretelab.checks import check_fraction, check_int, check_positive, parse_number


def test_check_int_accepts_integers_at_or_above_the_minimum_only() -> None:
    assert check_int("k", 5) == 5 and check_int("seed", 0, 0) == 0
    for bad in (0, -3, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=r"^k must be an integer >= 1, got "):
            check_int("k", bad)


def test_check_positive_and_check_fraction() -> None:
    assert check_positive("lr", 3) == 3.0 and check_positive("lr", "1e-3") == 1e-3
    for bad in (0, -1.0, math.inf, math.nan, True, "abc", None):
        with pytest.raises(ValueError, match=r"^lr must be a finite positive number"):
            check_positive("lr", bad)
    assert check_fraction("decay", 0) == 0.0 and check_fraction("decay", 0.9) == 0.9
    for bad in (1.0, -0.1, math.nan, False, "x"):
        with pytest.raises(ValueError, match=r"^decay must be a number in \[0, 1\)"):
            check_fraction("decay", bad)


@pytest.mark.parametrize(("text", "value"), [("2/3", 2 / 3), (" 1 / 2 ", 0.5), ("1e-4", 1e-4), ("0.5/2", 0.25),
                                             (3, 3.0), (0.25, 0.25), ("inf", math.inf)])
def test_parse_number_reads_numbers_and_fractions(text, value) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["1/0", "abc", "1/2/3", "", True, None, [1]])
def test_parse_number_names_the_argument_when_it_cannot(text) -> None:
    with pytest.raises(ValueError, match=r"^--lr must be a number"):
        parse_number(text, "--lr")
