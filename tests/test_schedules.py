"""Temperature schedules (concretelab.schedules; kept with the objectives' tests, whose callers use them)."""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.schedules import (
    ConstantTemperature,
    ExponentialDecayTemperature,
    LearnableTemperature,
    LinearTemperature,
    paper_temperatures,
    parse_schedule,
    parse_temperature,
    schedule_from_dict,
)


@pytest.mark.parametrize(("text", "value"), [("2/3", 2 / 3), (" 1/2 ", 0.5), ("0.25", 0.25), ("1e-3", 1e-3),
                                             (2, 2.0), (0.5, 0.5), ("3", 3.0)])
def test_parse_temperature(text, value):
    assert parse_temperature(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "-inf", "1/0", "0/3", "abc", "", "2/3/4", float("nan"),
                                 float("inf"), 0, -0.5, True, None])
def test_parse_temperature_rejects(bad):
    with pytest.raises(ValueError, match="temperature"):
        parse_temperature(bad)


def test_constant_exponential_linear():
    assert ConstantTemperature(0.5)(0) == ConstantTemperature(0.5)(10**6) == 0.5
    jang = ExponentialDecayTemperature(rate=1e-4, floor=0.5, interval=1000)  # Jang et al.: max(0.5, exp(-rt))
    assert jang(0) == 1.0
    assert jang(999) == 1.0
    assert jang(1000) == pytest.approx(math.exp(-0.1))
    assert jang(10**6) == 0.5
    general = ExponentialDecayTemperature(rate=0.01, floor=0.1, start=2.0)
    assert general(50) == pytest.approx(2 * math.exp(-0.5))
    linear = LinearTemperature(1.0, 0.5, 100)
    assert [linear(0), linear(50), linear(100), linear(1000)] == [1.0, 0.75, 0.5, 0.5]


@pytest.mark.parametrize("schedule", [ConstantTemperature(2 / 3), ExponentialDecayTemperature(3e-5, 0.5, 1.0, 1000),
                                      LinearTemperature(1.0, 0.5, 10)])
def test_dict_round_trip(schedule):
    data = schedule.to_dict()
    assert all(isinstance(v, (str, int, float)) for v in data.values())  # TOML-able
    assert schedule_from_dict(data) == schedule


def test_bad_schedules():
    with pytest.raises(ValueError, match="value"):
        ConstantTemperature(0.0)
    with pytest.raises(ValueError, match="rate"):
        ExponentialDecayTemperature(rate=-1.0, floor=0.5)
    with pytest.raises(ValueError, match="floor"):
        ExponentialDecayTemperature(rate=1.0, floor=float("nan"))
    with pytest.raises(ValueError, match="interval"):
        ExponentialDecayTemperature(rate=1.0, floor=0.5, interval=0)
    with pytest.raises(ValueError, match="steps"):
        LinearTemperature(1.0, 0.5, 0)
    with pytest.raises(ValueError, match="step"):
        ConstantTemperature(1.0)(-1)
    with pytest.raises(ValueError, match="kind"):
        schedule_from_dict({"kind": "cosine"})
    with pytest.raises(ValueError, match="fields"):
        schedule_from_dict({"kind": "linear", "start": 1.0})


def test_parse_schedule():
    assert parse_schedule("2/3") == ConstantTemperature(2 / 3)
    assert parse_schedule("exp:1e-4:0.5") == ExponentialDecayTemperature(1e-4, 0.5)
    assert parse_schedule("exp:1e-4:1/2:2:1000") == ExponentialDecayTemperature(1e-4, 0.5, 2.0, 1000)
    assert parse_schedule("linear:1:1/2:100") == LinearTemperature(1.0, 0.5, 100)
    for bad in ("exp:1e-4", "linear:1:0.5", "linear:1:0:10", "cosine:1:2", "exp:x:0.5", "0"):
        with pytest.raises(ValueError, match="schedule"):
            parse_schedule(bad)


def test_learnable_temperature():
    t = LearnableTemperature(2 / 3, floor=0.1)
    assert float(t().detach()) == pytest.approx(2 / 3, rel=1e-6)
    with torch.no_grad():
        t.theta.fill_(-1e4)  # however far the parameter goes, the temperature stays above the floor
    assert float(t().detach()) >= 0.1
    t2 = LearnableTemperature(50.0, floor=0.05)  # large gaps invert without overflow
    assert float(t2().detach()) == pytest.approx(50.0, rel=1e-6)
    t.theta.data.fill_(0.3)
    (t() ** 2).backward()
    assert t.theta.grad is not None and torch.isfinite(t.theta.grad)
    assert t.to_dict() == {"kind": "learnable", "initial": 2 / 3, "floor": 0.1}
    with pytest.raises(ValueError, match="exceed"):
        LearnableTemperature(0.05, floor=0.1)


def test_paper_temperatures():
    assert paper_temperatures(2) == (0.5, 2 / 3)
    assert paper_temperatures(4) == (2 / 3, 1.0)
    assert paper_temperatures(8) == (0.4, 2 / 3)
    with pytest.raises(ValueError, match="categories"):
        paper_temperatures(3)
