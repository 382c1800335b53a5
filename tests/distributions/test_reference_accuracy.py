"""log_prob of every family against an independent 50-digit mpmath reference (``_mp_reference.py``).

Contract: in float64, |log_prob - ref| <= 1e-9 (1 + |ref|) over the grid n in {2, 3, 10, 1000},
temperature in {1e-3, 0.1, 0.5, 1, 2, 10, 1e3}, logits spread up to +-50, points in the interior and near
the vertices (log-space coordinates down to -700). In float32, with the reference evaluated at the
float32-rounded input and log-space coordinates down to -80: finite, and |error| <= 1e-4 (1 + |ref|).
Gradients with respect to logits, temperature and value are finite over the same grid (see
``test_gradients_finite_over_grid`` for the one place where the exact gradient itself overflows).

The default run covers n = 1000 at two points per temperature; ``-m slow`` runs the full n = 1000 grid.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from concretelab.distributions import (
    BinConcrete,
    Concrete,
    ExpConcrete,
    HardConcrete,
    LogitBinConcrete,
    StraightThroughBinConcrete,
    StraightThroughConcrete,
)
from concretelab.distributions._record import remember_log

from . import _mp_reference as ref

TEMPERATURES = (1e-3, 0.1, 0.5, 1.0, 2.0, 10.0, 1e3)
FLOOR = {torch.float64: -700.0, torch.float32: -80.0}  # lowest log-space coordinate on the grid
RTOL = {torch.float64: 1e-9, torch.float32: 1e-4}
DTYPES = (torch.float64, torch.float32)


def _close(got: np.ndarray, want: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    return np.abs(got - want) <= RTOL[dtype] * (1 + np.abs(want))


def _report(got: np.ndarray, want: np.ndarray, ok: np.ndarray, labels: list[str]) -> str:
    bad = np.flatnonzero(~ok)[:8]
    return "\n".join(f"{labels[i]}: got {got[i]!r}, reference {want[i]!r}" for i in bad)


# ----------------------------------------------------------------------------------------------
# The categorical grid: rows of (temperature, logits, log-space point y), stacked into one batch.


@dataclass(frozen=True)
class CatGrid:
    temperature: np.ndarray  # (B,)
    logits: np.ndarray  # (B, n)
    y: np.ndarray  # (B, n) float64 log-space points, normalised (logsumexp 0)
    labels: list[str]


def _normalise(v: np.ndarray) -> np.ndarray:
    m = v.max()
    return v - (m + math.log(np.exp(v - m).sum()))


def _points(n: int, floor: float, rng: np.random.Generator, full: bool) -> dict[str, np.ndarray]:
    points = {
        "interior": _normalise(rng.normal(size=n)),
        "vertex": _normalise(np.concatenate([[0.0], rng.uniform(floor, floor + 30, size=n - 1)])),
    }
    # Every coordinate but one at the floor: the worst case for cancellation (kept in the default run).
    points["at floor"] = _normalise(np.concatenate([[0.0], np.full(n - 1, floor)]))
    if full:
        points["spread"] = _normalise(np.concatenate([[0.0], rng.uniform(floor, 0.0, size=n - 1)]))
        if n >= 3:
            edge = np.full(n, floor)
            edge[:2] = math.log(0.5)
            points["edge"] = _normalise(edge)
    return points


def _logit_sets(n: int, rng: np.random.Generator, full: bool) -> dict[str, np.ndarray]:
    extremes = rng.normal(scale=3.0, size=n)
    extremes[0], extremes[-1] = 50.0, -50.0
    sets = {"+-50": extremes}  # with the point "at floor", the case that once lost 3 nats in float32
    if full:
        sets["zeros"] = np.zeros(n)
        sets["spread 50"] = rng.uniform(-50, 50, size=n)
    return sets


@functools.cache
def cat_grid(n: int, dtype: torch.dtype, full: bool) -> CatGrid:
    rng = np.random.default_rng(1000 + n)
    temps, logits, ys, labels = [], [], [], []
    points = _points(n, FLOOR[dtype], rng, full)
    for lname, lg in _logit_sets(n, rng, full).items():
        for pname, y in points.items():
            for t in TEMPERATURES:
                temps.append(t)
                logits.append(lg)
                ys.append(y)
                labels.append(f"n={n} T={t} logits={lname} point={pname}")
    return CatGrid(np.array(temps), np.stack(logits), np.stack(ys), labels)


def _cat_full(n: int) -> bool:
    return n < 1000


CAT_CASES = [pytest.param(n, dtype, id=f"n{n}-{str(dtype)[6:]}") for n in (2, 3, 10, 1000) for dtype in DTYPES]
SLOW_CASES = [pytest.param(1000, dtype, marks=pytest.mark.slow, id=f"n1000-full-{str(dtype)[6:]}") for dtype in DTYPES]


def _cat_inputs(grid: CatGrid, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    temperature = torch.tensor(grid.temperature, dtype=dtype)
    logits = torch.tensor(grid.logits, dtype=dtype)
    y = torch.tensor(grid.y, dtype=dtype)  # float32: the rounded point is the input the reference sees
    return temperature, logits, y


@functools.cache
def cat_reference(kind: str, n: int, dtype: torch.dtype, full: bool) -> np.ndarray:
    """References at the exact inputs the library sees (float32-rounded where the dtype is float32)."""
    grid = cat_grid(n, dtype, full)
    temperature, logits, y = _cat_inputs(grid, dtype)
    x = y.exp()
    out = []
    for i in range(len(grid.labels)):
        t, lg = float(temperature[i]), logits[i].tolist()
        if kind == "exp":
            out.append(ref.exp_concrete_log_prob(y[i].tolist(), lg, t))
        elif kind == "simplex":
            out.append(ref.concrete_log_prob(x[i].tolist(), lg, t))
        else:  # "at log": Concrete at x = e^y exactly (a straight-through sample's soft point)
            out.append(ref.concrete_log_prob_at_log(y[i].tolist(), lg, t))
    return np.array(out)


def _scored_at_soft_point(dist, hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``dist.log_prob`` of a hard value recorded as drawn from the soft point ``soft`` by ``dist``, as its rsample
    records its own samples."""
    remember_log(hard, soft, reading=dist._reading)
    return dist.log_prob(hard)


def _check_categorical(n: int, dtype: torch.dtype, full: bool) -> None:
    grid = cat_grid(n, dtype, full)
    temperature, logits, y = _cat_inputs(grid, dtype)
    x = y.exp()
    hard = torch.zeros_like(y).scatter_(-1, y.argmax(-1, keepdim=True), 1.0)
    results = {
        "exp": ExpConcrete(temperature, logits=logits).log_prob(y),
        "simplex": Concrete(temperature, logits=logits).log_prob(x),
        "at log": _scored_at_soft_point(StraightThroughConcrete(temperature, logits=logits), hard, y),
    }
    for kind, got in results.items():
        assert got.dtype == dtype
        got_np = got.double().numpy()
        want = cat_reference(kind, n, dtype, full)
        assert np.all(np.isfinite(got_np)), _report(got_np, want, np.isfinite(got_np), grid.labels)
        ok = _close(got_np, want, dtype)
        assert ok.all(), f"{kind}:\n" + _report(got_np, want, ok, grid.labels)


@pytest.mark.parametrize(("n", "dtype"), CAT_CASES)
def test_categorical_log_prob_matches_mpmath(n: int, dtype: torch.dtype) -> None:
    _check_categorical(n, dtype, _cat_full(n))


@pytest.mark.parametrize(("n", "dtype"), SLOW_CASES)
def test_categorical_log_prob_matches_mpmath_full_n1000(n: int, dtype: torch.dtype) -> None:
    _check_categorical(n, dtype, True)


def test_excluded_categories_match_reference_on_the_rest() -> None:
    logits = torch.tensor([[1.5, float("-inf"), -20.0, 3.0, float("-inf")]], dtype=torch.float64)
    y = torch.tensor([[-0.5, float("-inf"), -650.0, -0.97407698418010669, float("-inf")]], dtype=torch.float64)
    y = y - torch.logsumexp(y, -1, keepdim=True)
    for t in TEMPERATURES:
        got = ExpConcrete(t, logits=logits).log_prob(y).item()
        want = ref.exp_concrete_log_prob(y[0].tolist(), logits[0].tolist(), t)
        assert abs(got - want) <= 1e-9 * (1 + abs(want)), (t, got, want)
        got = Concrete(t, logits=logits).log_prob(y.exp()).item()
        want = ref.concrete_log_prob(y.exp()[0].tolist(), logits[0].tolist(), t)
        assert abs(got - want) <= 1e-9 * (1 + abs(want)), (t, got, want)


# ----------------------------------------------------------------------------------------------
# Binary families.

BIN_LOGITS = (-50.0, -7.5, 0.0, 2.3, 50.0)
BIN_X = {
    torch.float64: (math.exp(-700), math.exp(-50), 1e-3, 0.3, 0.5, 0.9, 1 - 1e-10, 1 - 2**-53),
    torch.float32: (math.exp(-80), math.exp(-20), 1e-3, 0.3, 0.5, 0.9, 1 - 2**-20, 1 - 2**-24),
}
BIN_Z = {
    torch.float64: (-700.0, -80.0, -3.0, 0.0, 0.7, 40.0, 700.0),
    torch.float32: (-80.0, -30.0, -3.0, 0.0, 0.7, 40.0, 80.0),
}
HARD_Z = {
    torch.float64: (0.0, 1e-300, 1e-3, 0.5, 0.999, 1 - 2**-53, 1.0),
    torch.float32: (0.0, 1e-37, 1e-3, 0.5, 0.999, 1 - 2**-24, 1.0),
}
HARD_BOUNDS = ((-0.1, 1.1), (-1e-3, 1.5))


def _bin_grid(points: tuple[float, ...], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t, a, p = np.meshgrid(TEMPERATURES, BIN_LOGITS, points, indexing="ij")
    as_t = functools.partial(torch.tensor, dtype=dtype)
    return as_t(t.ravel()), as_t(a.ravel()), as_t(p.ravel())


@functools.cache
def bin_reference(kind: str, dtype: torch.dtype, bounds: tuple[float, float] | None = None) -> np.ndarray:
    points = {"bin": BIN_X, "logit": BIN_Z, "st": BIN_Z, "hard": HARD_Z}[kind][dtype]
    temperature, logits, value = _bin_grid(points, dtype)
    rows = zip(value.tolist(), logits.tolist(), temperature.tolist(), strict=True)
    if kind == "bin":
        return np.array([ref.bin_concrete_log_prob(v, a, t) for v, a, t in rows])
    if kind == "logit":
        return np.array([ref.logit_bin_concrete_log_prob(v, a, t) for v, a, t in rows])
    if kind == "st":
        return np.array([ref.bin_concrete_log_prob_at_logit(v, a, t) for v, a, t in rows])
    assert bounds is not None
    return np.array([ref.hard_concrete_log_prob(v, a, t, *bounds) for v, a, t in rows])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["bin", "logit", "st", "hard"])
def test_binary_log_prob_matches_mpmath(kind: str, dtype: torch.dtype) -> None:
    points = {"bin": BIN_X, "logit": BIN_Z, "st": BIN_Z, "hard": HARD_Z}[kind][dtype]
    temperature, logits, value = _bin_grid(points, dtype)
    labels = [
        f"T={t} logit={a} value={v!r}"
        for t, a, v in zip(temperature.tolist(), logits.tolist(), value.tolist(), strict=True)
    ]
    cases = []
    if kind == "bin":
        cases.append((BinConcrete(temperature, logits=logits).log_prob(value), bin_reference(kind, dtype)))
    elif kind == "logit":
        cases.append((LogitBinConcrete(temperature, logits=logits).log_prob(value), bin_reference(kind, dtype)))
    elif kind == "st":  # a straight-through sample whose soft point has logit ``value``
        straight_through = StraightThroughBinConcrete(temperature, logits=logits)
        got = _scored_at_soft_point(straight_through, (value > 0).to(dtype), value)
        cases.append((got, bin_reference(kind, dtype)))
    else:
        for lower, upper in HARD_BOUNDS:
            got = HardConcrete(temperature, logits, lower=lower, upper=upper).log_prob(value)
            cases.append((got, bin_reference(kind, dtype, (lower, upper))))
    for got, want in cases:
        assert got.dtype == dtype
        got_np = got.double().numpy()
        assert np.all(np.isfinite(got_np)), _report(got_np, want, np.isfinite(got_np), labels)
        ok = _close(got_np, want, dtype)
        assert ok.all(), _report(got_np, want, ok, labels)


# ----------------------------------------------------------------------------------------------
# Gradients over the same grids.


def _grads_finite(loss: torch.Tensor, *inputs: torch.Tensor) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss.sum(), inputs)
    return [g for g in grads if not bool(torch.isfinite(g).all())]


@pytest.mark.parametrize(("n", "dtype"), CAT_CASES)
def test_categorical_gradients_finite_over_grid(n: int, dtype: torch.dtype) -> None:
    grid = cat_grid(n, dtype, _cat_full(n))
    temperature, logits, y = (v.requires_grad_() for v in _cat_inputs(grid, dtype))
    assert not _grads_finite(ExpConcrete(temperature, logits=logits).log_prob(y), temperature, logits, y)
    # Concrete in x: the exact gradient d log p / d x_k is of order n * lambda / x_k, which exceeds the
    # largest float where x_k = e^-700 (float64) or e^-80 (float32) and n * lambda is large. Check the rows
    # where it fits; the log-space form above is finite everywhere.
    x = y.detach().exp()
    bound = (n * temperature.detach() + temperature.detach() + 1) / x.min(-1).values
    fits = bound < torch.finfo(dtype).max / 16
    x = x[fits].requires_grad_()
    t_fit, l_fit = temperature.detach()[fits].requires_grad_(), logits.detach()[fits].requires_grad_()
    assert not _grads_finite(Concrete(t_fit, logits=l_fit).log_prob(x), t_fit, l_fit, x)
    assert int(fits.sum()) >= len(grid.labels) // 3  # the filter keeps a good part of the grid


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_binary_gradients_finite_over_grid(dtype: torch.dtype) -> None:
    for cls, points in ((BinConcrete, BIN_X), (LogitBinConcrete, BIN_Z)):
        temperature, logits, value = (v.requires_grad_() for v in _bin_grid(points[dtype], dtype))
        bad = _grads_finite(cls(temperature, logits=logits).log_prob(value), temperature, logits, value)
        assert not bad, cls.__name__
    temperature, logits, value = (v.requires_grad_() for v in _bin_grid(HARD_Z[dtype], dtype))
    for lower, upper in HARD_BOUNDS:
        lp = HardConcrete(temperature, logits, lower=lower, upper=upper).log_prob(value)
        assert not _grads_finite(lp, temperature, logits, value)


def _max_scaled_errors(full_n1000: bool = False) -> list[tuple[str, float]]:
    """Per case, max |log_prob - ref| / (1 + |ref|) over the grid (for reports; the tests assert the bounds)."""
    rows = []
    for n in (2, 3, 10, 1000):
        for dtype in DTYPES:
            full = _cat_full(n) or full_n1000
            grid = cat_grid(n, dtype, full)
            temperature, logits, y = _cat_inputs(grid, dtype)
            got = {
                "exp": ExpConcrete(temperature, logits=logits).log_prob(y),
                "simplex": Concrete(temperature, logits=logits).log_prob(y.exp()),
            }
            for kind, value in got.items():
                want = cat_reference(kind, n, dtype, full)
                err = np.abs(value.double().numpy() - want) / (1 + np.abs(want))
                rows.append((f"{kind} n={n} {str(dtype)[6:]} ({len(want)} points)", float(err.max())))
    for kind, cls in (("bin", BinConcrete), ("logit", LogitBinConcrete)):
        for dtype in DTYPES:
            points = {"bin": BIN_X, "logit": BIN_Z}[kind][dtype]
            temperature, logits, value = _bin_grid(points, dtype)
            want = bin_reference(kind, dtype)
            err = np.abs(cls(temperature, logits=logits).log_prob(value).double().numpy() - want) / (1 + np.abs(want))
            rows.append((f"{cls.__name__} {str(dtype)[6:]} ({len(want)} points)", float(err.max())))
    for dtype in DTYPES:
        temperature, logits, value = _bin_grid(HARD_Z[dtype], dtype)
        for lower, upper in HARD_BOUNDS:
            want = bin_reference("hard", dtype, (lower, upper))
            got = HardConcrete(temperature, logits, lower=lower, upper=upper).log_prob(value).double().numpy()
            err = np.abs(got - want) / (1 + np.abs(want))
            rows.append((f"HardConcrete({lower}, {upper}) {str(dtype)[6:]} ({len(want)} points)", float(err.max())))
    return rows


if __name__ == "__main__":  # cd tests && ../.venv/bin/python -m distributions.test_reference_accuracy
    for name, err in _max_scaled_errors():
        print(f"{name:50s} max |err|/(1+|ref|) = {err:.2e}")
