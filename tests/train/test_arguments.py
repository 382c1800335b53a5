"""Arguments are checked before any work and any file (issue 10.5, 10.8, 10.9, 10.12): oversized values are
refused up front naming the flag, messages name the CLI flags, and the objectives validate their temperatures."""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.cli import main
from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES
from concretelab.train import TrainConfig, load_config, train

from ._helpers import small_config

FAST = ["--steps", "1", "--batch-size", "8", "--eval-every", "0", "--no-progress", "--threads", "1"]


# Refused by train before any file is written, each naming the flag (and by --dry-run, test below).
REFUSED = [
    (["--log-every", "100000000000", "--steps", "100000000000"], "--log-every 100000000000 would keep"),
    (["--model", "200000000H~784V"], "--model 200000000H~784V has"),
    (["--model", "8H-784V", "--samples", "1000000000"], "--samples 1000000000 x --batch-size 8"),
    (["--model", "8H-784V", "--eval-every", "1", "--eval-chunk-size", "1000000000"], "--eval-chunk-size"),
    (["--model", "8H-500V"], "--model 8H-500V has 500 visible units, but --data embedded has 784 pixels"),
    (["--model", "8H-784V", "--data", ""], "--data must not be empty"),
    (["--model", "8H-784V", "--objective", "relaxed", "--estimator", "vimco", "--samples", "2"],
     "--objective relaxed cannot be combined with --estimator vimco"),
    # issue 27: combinations --dry-run accepted
    (["--model", "8H-784V", "--estimator", "concrete"], "--estimator 'concrete' is not supported for training"),
    (["--model", "4H-4H-784V", "--estimator", "rebar"], "--estimator rebar is defined for one layer"),
    (["--model", "8H-784V", "--categories", "4", "--estimator", "disarm"],
     "--estimator disarm needs a binary SBN (--categories 2)"),
    (["--model", "8H-784V", "--estimator", "nvil", "--objective", "relaxed-logratio"],
     "--objective relaxed-logratio cannot be combined with --estimator nvil"),
    (["--model", "8H-784V", "--batch-size", "20000"], "--batch-size 20000 exceeds the 10000 training images"),
]


@pytest.mark.parametrize(("argv", "message"), REFUSED)
def test_refused_before_any_file(tmp_path, capsys, argv, message) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST, *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()  # no config.toml, no metrics.jsonl, no folder


@pytest.mark.parametrize(("argv", "message"), REFUSED)
def test_dry_run_refuses_what_train_refuses(tmp_path, capsys, argv, message) -> None:
    """Issue 27: ``--dry-run`` makes every check ``train`` makes before its first step, with the same message."""
    out = tmp_path / "run"
    assert main(["train", "--dry-run", *FAST, *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_dry_run_and_train_call_one_check(tmp_path, capsys, monkeypatch) -> None:
    """The dry run and training run the same check function (concretelab.train.loop.check_run), so what one
    accepts the other accepts: a refusal put into it refuses both."""
    from concretelab.train import loop

    calls = []

    def refuse(config, *, resume=False):
        calls.append(resume)
        raise ValueError("--model refused by the shared check")

    monkeypatch.setattr(loop, "check_run", refuse)
    out = tmp_path / "run"
    for dry in (["--dry-run"], []):
        assert main(["train", *dry, *FAST, "--model", "8H-784V", "--out", str(out)]) == 2
        assert "--model refused by the shared check" in capsys.readouterr().err
    assert calls == [False, False] and not out.exists()


def test_dry_run_makes_the_resume_checks_and_writes_nothing(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST[2:], "--model", "8H-784V", "--steps", "6", "--out", str(out)]) == 0
    before = {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
    capsys.readouterr()
    refused = [
        (["--model", "8H-784V"], "already holds a run (checkpoints/last.safetensors); pass --resume"),
        (["--resume", "--steps", "3"], "--steps 3 is below the 6 steps this run has already done"),
        (["--resume", "--lr", "0.01"], "cannot resume with --lr 0.01"),
        (["--resume", "--steps", "8", "--prior-temperature", "0.7"], "cannot resume with --prior-temperature 0.7"),
    ]
    for argv, message in refused:
        assert main(["train", "--dry-run", *argv, "--out", str(out)]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert main(["train", "--dry-run", "--resume", "--steps", "8", "--log-every", "3", "--out", str(out)]) == 0
    assert f"# resumes {out} at step 6" in capsys.readouterr().out
    assert {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()} == before


def test_evaluate_refuses_a_chunk_that_cannot_fit(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    train(small_config(out, steps=2))
    assert main(["evaluate", str(out), "--k", "1000000000", "--chunk-size", "1000000000", "--checkpoint", "last",
                 "--device", "cpu"]) == 2
    assert "--chunk-size 1000000000: one chunk of the bound" in capsys.readouterr().err
    assert not list(out.glob("eval-*.json"))


def test_resume_with_fewer_steps_is_an_error_naming_the_step(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST[2:], "--model", "8H-784V", "--steps", "6", "--out", str(out)]) == 0
    before = (out / "config.toml").read_bytes()
    assert main(["train", "--resume", "--steps", "3", "--out", str(out)]) == 2
    assert "--steps 3 is below the 6 steps this run has already done" in capsys.readouterr().err
    assert (out / "config.toml").read_bytes() == before and load_config(out / "config.toml").steps == 6


def test_config_that_is_a_directory_is_called_one(tmp_path, capsys) -> None:
    assert main(["train", "--config", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_help_shows_each_default_once(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text
    assert text.count("(default: 200H~784V)") == 1


@pytest.mark.parametrize("categories", [4, 8])
def test_nary_models_get_the_papers_temperatures(categories: int) -> None:
    config = TrainConfig(model="240H~784V", categories=categories)
    expected = {4: (2 / 3, 1.0), 8: (2 / 5, 2 / 3)}[categories]  # Maddison et al. (2017), App. C
    assert config.temperatures == pytest.approx(expected)
    assert TrainConfig(model="200H~784V").temperatures == pytest.approx((1 / 2, 2 / 3))
    # through flags too (the defaults are resolved when read, so --categories given later still counts)
    from concretelab.train import resolve_config

    assert resolve_config(overrides={"model": "240H~784V", "categories": categories}).temperatures == (
        pytest.approx(expected))
    assert resolve_config(overrides={"categories": 8, "prior_temperature": "1/3"}).temperatures == (
        pytest.approx((1 / 3, 2 / 3)))


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
@pytest.mark.parametrize("bad", [-0.5, 0.0, math.nan, math.inf])
@pytest.mark.parametrize("which", ["prior_temperature", "posterior_temperature"])
def test_objectives_refuse_bad_tensor_temperatures(name: str, bad: float, which: str) -> None:
    """A negative tensor temperature gave NaN (relaxed) or silently wrong finite values (the other two)."""
    model = build_model("4H-10V")
    x = torch.bernoulli(torch.full((3, 10), 0.5), generator=torch.Generator().manual_seed(0))
    temperatures = {"prior_temperature": torch.tensor(0.5), "posterior_temperature": torch.tensor(2 / 3)}
    if name != "relaxed" and which == "prior_temperature":
        return  # these two objectives do not use the prior temperature
    temperatures[which] = torch.tensor(bad)
    with pytest.raises(ValueError, match=f"{which} must be finite and positive"):
        OBJECTIVES[name](model, x, samples=2, generator=torch.Generator().manual_seed(1), **temperatures)
