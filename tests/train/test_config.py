"""TrainConfig: defaults, TOML overrides, then flags; types checked, unknown keys rejected."""

from __future__ import annotations

import pytest

from concretelab.train.config import TrainConfig, load_config, parse_number, resolve_config, write_config


def test_fractions_and_numbers() -> None:
    assert parse_number("2/3") == pytest.approx(2 / 3, abs=0)
    assert parse_number("1e-4") == 1e-4
    assert parse_number(3) == 3.0
    with pytest.raises(ValueError, match="fraction"):
        parse_number("two thirds")
    with pytest.raises(ValueError, match="boolean"):
        parse_number(True)


def test_precedence_defaults_then_file_then_flags(tmp_path) -> None:
    path = tmp_path / "cell.toml"
    path.write_text('model = "16H~784V"\nlr = 3e-4\nposterior_temperature = "1/2"\nsteps = 50\n')
    config = resolve_config(config_file=path, overrides={"steps": "7", "prior_temperature": "1/3"})
    assert config.model == "16H~784V"  # from the file
    assert config.lr == 3e-4  # from the file
    assert config.posterior_temperature == 0.5  # a fraction in TOML
    assert config.steps == 7  # the flag wins over the file
    assert config.prior_temperature == pytest.approx(1 / 3, abs=0)  # flag
    assert config.batch_size == TrainConfig().batch_size  # default untouched


def test_unknown_key_is_named(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("learning_rate = 0.1\n")
    with pytest.raises(ValueError, match="unknown configuration key 'learning_rate'"):
        load_config(path)
    with pytest.raises(ValueError, match="unknown configuration key 'batchsize'"):
        resolve_config(overrides={"batchsize": 3})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("steps", 1.5, "--steps must be an integer"),
        ("steps", "many", "--steps must be an integer"),
        ("batch_size", True, "--batch-size must be int"),
        ("model", 3, "--model must be str"),
        ("prior_temperature", -0.5, "--prior-temperature must be a positive"),
        ("posterior_temperature", "0", "--posterior-temperature must be a positive"),
        ("lr", 0, "--lr must be a positive"),
        ("progress", "maybe", "--progress must be true or false"),
        ("prior_schedule", "cosine:1", "bad temperature schedule"),
        ("device", "tpu", "device must be"),
        ("batch_size", 0, "--batch-size must be >= 1"),
    ],
)
def test_bad_values_are_named(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_config(overrides={key: value})


def test_batch_must_split_into_shards() -> None:
    with pytest.raises(ValueError, match="divisible by --grad-accum"):
        TrainConfig(batch_size=10, grad_accum=3)


def test_written_config_reads_back(tmp_path) -> None:
    config = resolve_config(overrides={"model": "8H-784V", "eval_images": 10, "prior_schedule": "exp:1e-3:0.5"})
    write_config(config, tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml") == config


def test_tables_are_rejected(tmp_path) -> None:
    path = tmp_path / "nested.toml"
    path.write_text("[train]\nsteps = 3\n")
    with pytest.raises(ValueError, match="tables are not supported"):
        load_config(path)
