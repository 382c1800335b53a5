"""``concretelab train`` / ``evaluate`` / ``plot`` through ``concretelab.cli.main`` in-process."""

from __future__ import annotations

import json

import pytest
import torch

import concretelab
from concretelab.cli import main
from concretelab.train import load_config

FAST = ["--model", "8H-784V", "--batch-size", "16", "--lr", "3e-3", "--device", "cpu", "--log-every", "2",
        "--eval-k", "4", "--eval-images", "20", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", *FAST, "--steps", "6", "--eval-every", "3", "--checkpoint-every", "3",
                 "--prior-temperature", "1/2", "--posterior-temperature", "2/3", "--out", str(out)])
    assert code == 0
    return str(out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "12Q-784V"], "model spec"),
        (["--prior-temperature", "-1"], "--prior-temperature must be a positive"),
        (["--posterior-temperature", "0/1"], "--posterior-temperature must be a positive"),
        (["--data", "/no/such/folder"], "/no/such/folder"),
        (["--steps", "ten"], "--steps must be an integer"),
        (["--objective", "elbo"], "--objective elbo: unknown objective"),
        (["--estimator", "vimco"], "not supported"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path, capsys, argv, message) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST, "--steps", "1", "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "checkpoints").exists()


def test_unknown_config_key_exits_2(tmp_path, capsys) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("stepz = 3\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "unknown configuration key 'stepz'" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 2


def test_flags_override_the_config_file(tmp_path) -> None:
    config = tmp_path / "cell.toml"
    config.write_text('model = "8H-784V"\nsteps = 50\nlr = 0.01\nbatch_size = 8\nprogress = false\neval_every = 0\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--steps", "2", "--device", "cpu", "--out", str(out)]) == 0
    saved = load_config(out / "config.toml")
    assert (saved.steps, saved.lr, saved.batch_size, saved.model) == (2, 0.01, 8, "8H-784V")
    # --resume reads the run's config.toml: only the changed flag is needed
    assert main(["train", "--out", str(out), "--resume", "--steps", "4"]) == 0
    assert load_config(out / "config.toml").steps == 4


def test_run_folder_layout(trained_run) -> None:
    from pathlib import Path

    run = Path(trained_run)
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"last.safetensors", "best.safetensors"}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("step" in row for row in rows) and any("loss" in row for row in rows)
    assert load_config(run / "config.toml").posterior_temperature == pytest.approx(2 / 3, abs=0)


def test_evaluate_writes_the_result_file(trained_run, capsys) -> None:
    from pathlib import Path

    assert main(["evaluate", trained_run, "--k", "5", "--split", "valid", "--checkpoint", "last", "--seed", "3",
                 "--num-images", "30", "--chunk-size", "2", "--device", "cpu"]) == 0
    assert "NLL" in capsys.readouterr().out
    result = json.loads((Path(trained_run) / "eval-valid-k5-last-subset30-seed3.json").read_text())
    assert {"split": "valid", "k": 5, "checkpoint": "last", "seed": 3, "n_images": 30}.items() <= result.items()
    assert result["nll"] > 0 and result["seconds"] >= 0 and result["nll_stderr"] > 0
    # same seed, same number; chunking does not change the samples' law, only their grouping
    assert main(["evaluate", trained_run, "--k", "5", "--split", "valid", "--checkpoint", "last", "--seed", "3",
                 "--num-images", "30", "--chunk-size", "2", "--device", "cpu"]) == 0
    again = json.loads((Path(trained_run) / "eval-valid-k5-last-subset30-seed3.json").read_text())
    assert again["nll"] == result["nll"]


def test_evaluate_never_replaces_another_setting(trained_run, capsys) -> None:
    """Issue 10.4: a 3-image check with another seed used to overwrite the full-split result of the same k."""
    from pathlib import Path

    run = Path(trained_run)
    assert main(["evaluate", trained_run, "--k", "10", "--checkpoint", "last", "--device", "cpu"]) == 0
    full = json.loads((run / "eval-test-k10-last.json").read_text())
    assert full["n_images"] == 1000  # the embedded test split
    assert main(["evaluate", trained_run, "--k", "10", "--checkpoint", "last", "--num-images", "3", "--seed", "5",
                 "--device", "cpu"]) == 0
    assert json.loads((run / "eval-test-k10-last.json").read_text()) == full
    small = json.loads((run / "eval-test-k10-last-subset3-seed5.json").read_text())
    assert (small["n_images"], small["seed"]) == (3, 5)
    capsys.readouterr()
    assert main(["evaluate", trained_run, "--k", "10", "--checkpoint", "last", "--num-images", "1",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr()
    assert "one image: no standard error" in printed.out and "± 0.000" not in printed.out + printed.err
    assert printed.out.count("NLL") == 1 and "NLL" not in printed.err  # the result is printed once


def test_evaluate_scores_the_training_images(trained_run, monkeypatch, capsys) -> None:
    """--split train: the bound on the training images, to set beside validation's when judging overfitting."""
    from pathlib import Path

    from concretelab.data import Dataset
    from concretelab.train import evaluate as evaluate_module

    assert main(["evaluate", trained_run, "--k", "2", "--split", "train", "--checkpoint", "last",
                 "--device", "cpu"]) == 0
    assert "train NLL" in capsys.readouterr().out
    result = json.loads((Path(trained_run) / "eval-train-k2-last.json").read_text())
    assert (result["split"], result["n_images"]) == ("train", 10_000)  # the embedded training split; valid has 1,000
    assert all(value > 0 for value in result["per_image_nll"])
    # a training split binarized afresh at every step has no fixed images: refused, naming the split
    grey = torch.randint(0, 256, (6, 784), dtype=torch.uint8)
    dynamic = Dataset("grey", grey, grey[:3] // 255, grey[:3] // 255, image_shape=(28, 28), dynamic_binarization=True)
    monkeypatch.setattr(evaluate_module, "load_dataset", lambda spec: dynamic)
    with pytest.raises(ValueError, match=r"split 'train'.*binarized afresh"):
        evaluate_module.evaluate_run(trained_run, k=2, split="train", checkpoint="last", progress=False)
    with pytest.raises(ValueError, match="split must be one of train, valid, test, got 'training'"):
        evaluate_module.evaluate_run(trained_run, k=2, split="training", progress=False)


def test_evaluate_bad_arguments(trained_run, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as error:
        main(["evaluate", trained_run, "--k", "0"])
    assert error.value.code == 2
    assert main(["evaluate", str(tmp_path / "nothing"), "--k", "3"]) == 2
    assert "run folder" in (err := capsys.readouterr().err) and "is missing" in err
    assert main(["plot", str(tmp_path / "nothing")]) == 2  # used to create nothing/plots first
    assert "is missing" in capsys.readouterr().err and not (tmp_path / "nothing").exists()


def test_plot_writes_pngs(trained_run) -> None:
    from pathlib import Path

    assert main(["plot", trained_run, "--num-images", "16"]) == 0
    for name in ("learning_curves.png", "samples.png", "reconstructions.png"):
        data = (Path(trained_run) / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_load_run_gives_a_usable_model(trained_run) -> None:
    from concretelab.objectives import discrete_bound

    model, config = concretelab.load_run(trained_run)
    assert not model.training and config.model == "8H-784V"
    g = torch.Generator().manual_seed(0)
    probs = model.generate(4, generator=g)
    assert probs.shape == (4, 784) and ((probs >= 0) & (probs <= 1)).all()
    x = (probs > 0.5).float()
    bound = discrete_bound(model, x, 10, generator=g)
    assert bound.shape == (4,) and torch.isfinite(bound).all() and (bound < 0).all()
    last, _ = concretelab.load_run(trained_run, checkpoint="last")
    assert set(last.state_dict()) == set(model.state_dict())


def test_dry_run_prints_the_config_and_size_and_writes_nothing(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--dry-run", "--model", "200H~784V", "--categories", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'model = "200H~784V"' in printed and "temperatures used: prior 0.666667, posterior 1" in printed
    # 784*200 + 200 + 3 * (200*200 + 200) in the encoder; the decoder mirrors it from 400 one-hot inputs
    model = concretelab.models.build_model("200H~784V", categories=4)
    assert f"{sum(p.numel() for p in model.parameters()):,} parameters" in printed
    assert not out.exists()


def test_dry_run_of_seeds_counts_every_replica(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--dry-run", "--model", "8H-784V", "--seeds", "0-2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    one = sum(p.numel() for p in concretelab.models.build_model("8H-784V").parameters())
    assert f"3 replicas (seeds 0,1,2) in one process: {3 * one:,} parameters in all" in printed
    assert not out.exists()
