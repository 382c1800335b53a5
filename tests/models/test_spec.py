"""Spec parsing and build_model by name: valid forms, invalid strings, the n-ary bits rule."""

from __future__ import annotations

import pytest

from concretelab.models import (
    CategoricalVAE,
    SigmoidBeliefNet,
    StructuredPredictionSBN,
    build_model,
    parse_spec,
)


@pytest.mark.parametrize(
    ("spec", "hidden", "nonlinear", "visible", "conditioning"),
    [
        ("200H-784V", (200,), (False,), 784, 0),
        ("200H-200H-784V", (200, 200), (False, False), 784, 0),
        ("200H~784V", (200,), (True,), 784, 0),
        ("200H~200H~784V", (200, 200), (True, True), 784, 0),
        ("8H-784V", (8,), (False,), 784, 0),
        ("3H~5H-6V", (3, 5), (True, False), 6, 0),
        ("392V-240H-240H-392V", (240, 240), (False, False, False), 392, 392),
        ("200H\u2013784V", (200,), (False,), 784, 0),  # the paper's en dash
    ],
)
def test_valid_specs(spec, hidden, nonlinear, visible, conditioning):
    parsed = parse_spec(spec)
    assert parsed.hidden_bits == hidden
    assert parsed.units == hidden
    assert parsed.nonlinear == nonlinear
    assert parsed.visible == visible
    assert parsed.conditioning == conditioning


@pytest.mark.parametrize(("categories", "units"), [(2, 240), (4, 120), (8, 80), (16, 60)])
def test_nary_units_count_bits(categories, units):
    assert parse_spec("240H~784V", categories).units == (units,)
    model = SigmoidBeliefNet.from_spec("240H~784V", categories)
    assert model.latent_units == (units,)
    assert model.latent_categories == (categories,)


@pytest.mark.parametrize(("spec", "categories"), [("200H~784V", 8), ("240H-7H-784V", 4), ("5H-784V", 4)])
def test_bits_not_divisible_raise(spec, categories):
    with pytest.raises(ValueError, match="not divisible by log2"):
        parse_spec(spec, categories)


@pytest.mark.parametrize("categories", [3, 1, 0, 6, -2, True])
def test_categories_must_be_a_power_of_two(categories):
    with pytest.raises(ValueError, match="power of 2"):
        parse_spec("240H-784V", categories)


@pytest.mark.parametrize(
    "spec",
    ["784V", "200H", "", "200X-784V", "200H--784V", "200H-784V-200H", "784V-200H", "200H-784V-", "0H-784V",
     "200H-10V-20H-784V", "H-784V", "200h-784v", "200H 784V"],
)
def test_invalid_specs_raise_with_forms(spec):
    with pytest.raises(ValueError, match="200H~784V"):
        build_model(spec)


def test_build_model_by_name():
    assert isinstance(build_model("200H-784V"), SigmoidBeliefNet)
    assert isinstance(build_model("392V-240H-240H-392V"), StructuredPredictionSBN)
    vae = build_model("categorical-vae")
    assert isinstance(vae, CategoricalVAE)
    assert vae.latent_units == (20,) and vae.latent_categories == (10,)
    assert build_model("categorical-vae", categories=4).latent_categories == (4,)
    for bad in ("resnet", 42):
        with pytest.raises(ValueError, match="categorical-vae"):
            build_model(bad)


@pytest.mark.parametrize(("name", "categories"), [("200H~200H~784V", 2), ("240H-240H-784V", 4),
                                                  ("392V-240H-240H-392V", 2), ("categorical-vae", None)])
def test_model_args_rebuild_the_architecture(name, categories):
    import json

    model = build_model(name, categories=categories)
    args = json.loads(json.dumps(model.model_args()))
    rebuilt = build_model(**args)
    assert type(rebuilt) is type(model)
    rebuilt.load_state_dict(model.state_dict())  # same parameter names and shapes
