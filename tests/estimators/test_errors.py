"""Bad arguments raise ValueError naming the argument."""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.estimators import ESTIMATORS, estimator_options, get_estimator

f = lambda b: b.reshape(b.shape[0], -1).sum(-1)  # noqa: E731
logits = torch.zeros(3)


def test_unknown_estimator_lists_the_names():
    with pytest.raises(ValueError, match=r"unknown estimator 'bogus'.*reinforce"):
        get_estimator("bogus")
    with pytest.raises(ValueError, match="unknown estimator"):
        estimator_options("bogus")


def test_unknown_option_lists_the_options():
    with pytest.raises(ValueError, match=r"unknown option.*'temperature'.*none"):
        get_estimator("arm", temperature=1.0)
    with pytest.raises(ValueError, match="inner_samples"):
        get_estimator("gumbel_rao", inner_sample=3)


@pytest.mark.parametrize("name", sorted(n for n in ESTIMATORS if "temperature" in estimator_options(n)))
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "warm", None])
def test_bad_temperature(name, bad):
    with pytest.raises(ValueError, match="temperature"):
        get_estimator(name, temperature=bad)


def test_bad_family():
    with pytest.raises(ValueError, match="family must be one of"):
        get_estimator("reinforce", family="gaussian")
    for name in ("arm", "disarm", "arms", "double_cv", "rodeo"):
        with pytest.raises(ValueError, match=f"{name}.*only family 'bernoulli'.*categorical"):
            get_estimator(name, family="categorical")


@pytest.mark.parametrize("name", ["reinforce_loo", "vimco", "arms", "double_cv", "rodeo"])
def test_multi_sample_estimators_need_two_samples(name):
    with pytest.raises(ValueError, match="num_samples must be an integer >= 2"):
        get_estimator(name).estimate(f, logits, 1)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "3"])
def test_bad_num_samples(bad):
    with pytest.raises(ValueError, match="num_samples"):
        get_estimator("reinforce").estimate(f, logits, bad)
    with pytest.raises(ValueError, match="num_draws"):
        get_estimator("reinforce").per_draw(f, logits, 1, bad)


def test_bad_logits():
    est = get_estimator("reinforce")
    with pytest.raises(ValueError, match="floating-point"):
        est.estimate(f, torch.zeros(3, dtype=torch.int64), 2)
    with pytest.raises(ValueError, match="finite"):
        est.estimate(f, torch.tensor([0.0, math.nan]), 2)
    with pytest.raises(ValueError, match=r"torch\.Tensor"):
        est.estimate(f, [0.0, 1.0], 2)
    with pytest.raises(ValueError, match=r"K >= 2.*\(3, 1\)"):
        get_estimator("reinforce", "categorical").estimate(f, torch.zeros(3, 1), 2)


def test_bad_objective():
    est = get_estimator("reinforce")
    with pytest.raises(ValueError, match="callable"):
        est.estimate("f", logits, 2)
    with pytest.raises(ValueError, match=r"f must map a batch of shape \(2, 3\) to values of shape \(2,\)"):
        est.estimate(lambda b: b, logits, 2)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("reinforce", {"decay": 1.0}, "decay"),
        ("nvil", {"lr": 0.0}, "lr"),
        ("nvil", {"hidden": -1}, "hidden"),
        ("nvil", {"features": 3}, "features"),
        ("rebar", {"eta": math.nan}, "eta"),
        ("relax", {"hidden": 0}, "hidden"),
        ("gumbel_rao", {"inner_samples": 0}, "inner_samples"),
        ("double_cv", {"alpha": math.inf}, "alpha"),
        ("double_cv", {"lr": -1.0}, "lr"),
        ("rodeo", {"beta": math.nan}, "beta"),
        ("rodeo", {"alpha": "1"}, "alpha"),
    ],
)
def test_bad_options(name, options, match):
    with pytest.raises(ValueError, match=match):
        get_estimator(name, **options)


@pytest.mark.parametrize("name", ["nvil", "relax"])
def test_learned_baselines_refuse_a_new_problem_size_until_reset(name):
    est = get_estimator(name)
    est.estimate(f, torch.zeros(3), 2)
    with pytest.raises(ValueError, match="reset"):
        est.estimate(f, torch.zeros(4), 2)
    est.reset()
    est.estimate(f, torch.zeros(4), 2)


# ----- issue 27: a pathwise estimator refuses an f it cannot differentiate, naming itself ---------------------

_WEIGHT = torch.tensor(1.0, requires_grad=True)
NON_DIFFERENTIABLE = {
    "no graph": lambda b: torch.ones(b.shape[0]),
    "detached": lambda b: b.detach().reshape(b.shape[0], -1).sum(-1),
    "argmax": lambda b: b.reshape(b.shape[0], -1).argmax(-1).to(b.dtype),
    "threshold": lambda b: (b > 0.5).to(b.dtype).reshape(b.shape[0], -1).sum(-1),
    "round": lambda b: b.round().reshape(b.shape[0], -1).sum(-1),
    "own parameters only": lambda b: _WEIGHT * (b > 0.5).to(b.dtype).reshape(b.shape[0], -1).sum(-1),
}
PATHWISE = sorted(name for name, cls in ESTIMATORS.items() if cls.differentiable_f)


def test_the_pathwise_estimators_include_rebar_and_relax():
    assert {"rebar", "relax", "concrete", "st_gumbel", "straight_through"} <= set(PATHWISE)


@pytest.mark.parametrize("name", PATHWISE)
@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
@pytest.mark.parametrize("how", sorted(NON_DIFFERENTIABLE))
def test_pathwise_estimators_refuse_a_non_differentiable_f(name, family, how):
    cls = ESTIMATORS[name]
    if family not in cls.families:
        pytest.skip(f"{name} has no {family} family")
    est = get_estimator(name, family)
    theta = torch.zeros(3, 4) if family == "categorical" else torch.zeros(3)
    message = rf"estimator '{name}'.*f must be differentiable with respect to its input"
    with pytest.raises(ValueError, match=message):
        est.estimate(NON_DIFFERENTIABLE[how], theta, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=message):
        est.per_draw(NON_DIFFERENTIABLE[how], theta, 2, 3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", PATHWISE)
def test_pathwise_estimators_accept_a_differentiable_f_that_also_rounds(name):
    """Rounding in f is refused only where it leaves no gradient: f = (b − round(b))² + Σ b is differentiable."""
    g = lambda b: (b - b.round()).pow(2).sum(-1) + b.sum(-1)  # noqa: E731
    est = get_estimator(name)
    grad = est.estimate(g, torch.zeros(3), 4, generator=torch.Generator().manual_seed(0))
    assert grad.shape == (3,) and bool(torch.isfinite(grad).all())


@pytest.mark.parametrize("name", sorted(n for n, c in ESTIMATORS.items() if not c.differentiable_f))
def test_score_function_estimators_take_a_non_differentiable_f(name):
    est = get_estimator(name)
    grad = est.estimate(NON_DIFFERENTIABLE["threshold"], torch.zeros(3), 4, generator=torch.Generator().manual_seed(0))
    assert grad.shape == (3,)
