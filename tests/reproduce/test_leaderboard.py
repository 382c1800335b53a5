"""``concretelab lab leaderboard`` on a tiny budget (embedded data, a few steps, two seeds): cells, results,
resumption and the generated page."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import concretelab.reproduce.leaderboard as leaderboard
import concretelab.reproduce.leaderboard_render as render
from concretelab.cli import main
from concretelab.reproduce.leaderboard import LeaderboardOptions, cell_config, leaderboard_cells
from concretelab.train.metrics import last_steps_per_s

CELLS = ["mnist-nonlinear-disarm-K2", "mnist-nonlinear-concrete-K2", "mnist-nonlinear-rebar-K4"]


def _argv(tmp: Path, *extra: str) -> list[str]:
    return ["lab", "leaderboard", "--cells", *CELLS, "--steps", "4", "--seeds", "0-1", "--mnist", "embedded",
            "--test-images", "12", "--valid-images", "8", "--out", str(tmp / "runs"), "--results",
            str(tmp / "results"), "--markdown", str(tmp / "leaderboard.md"), "--figures", str(tmp / "figures"),
            *extra]


def test_cells_spend_equal_evaluations() -> None:
    cells = {cell.name: cell for cell in leaderboard_cells()}
    assert cells["mnist-linear-disarm-K2"].samples == 1 and cells["fashion-nonlinear-disarm-K4"].samples == 2
    assert cells["mnist-linear-concrete-K4"].samples == 4 and cells["mnist-linear-vimco-K2"].samples == 2
    assert cells["mnist-linear-arm-K2"].samples == 1 and cells["mnist-linear-rodeo-K4"].samples == 4
    rebar = cells["mnist-linear-rebar-K4"]
    assert (rebar.samples, rebar.evaluations_used, rebar.replicable) == (1, 3, False)
    assert "mnist-linear-rebar-K2" not in cells  # 3 evaluations per sample do not fit K = 2
    assert cells["mnist-linear-straight_through-K2"].replicable
    assert len(cells) == 2 * 2 * (14 * 2 - 2)  # data sets x models x (estimators x budgets, less REBAR/RELAX at 2)
    with pytest.raises(ValueError, match="no leaderboard cell matches"):
        leaderboard_cells(["nothing-*"])


def test_a_cell_is_disarms_protocol_with_its_seeds_as_replicas(tmp_path) -> None:
    options = LeaderboardOptions(out=tmp_path, results=tmp_path)
    nonlinear = cell_config(leaderboard_cells(["fashion-nonlinear-nvil-K2"])[0], options)
    assert (nonlinear.model, nonlinear.activation, nonlinear.batch_size, nonlinear.lr) == (
        "200H~784V", "leaky_relu", 50, 1e-4)
    assert nonlinear.seed_list == (0, 1, 2) and nonlinear.estimator == "nvil" and nonlinear.samples == 2
    assert nonlinear.data == "/usr/share/datasets/fashion-mnist"
    concrete = cell_config(leaderboard_cells(["mnist-linear-concrete-K4"])[0], options)
    assert (concrete.model, concrete.estimator, concrete.samples) == ("200H-784V", None, 4)


def test_a_killed_cell_loses_at_most_checkpoint_every_steps(tmp_path) -> None:
    """A session's end kills its runs with SIGKILL, which the trainer cannot catch: what it saved last is what a
    resume starts from. A 10^6-step run once saved every 10^5 steps and lost 29,000 to 63,000 steps per replica."""
    cell = leaderboard_cells(["mnist-linear-reinmax-K2"])[0]
    for steps, evaluations in ((1_000_000, 100_000), (100_000, 10_000), (4_000, 400), (4, 1)):
        config = cell_config(cell, LeaderboardOptions(out=tmp_path, results=tmp_path, steps=steps))
        assert config.eval_every == evaluations  # validations (and so the best checkpoint) stay at a tenth
        assert config.checkpoint_every == min(evaluations, leaderboard.CHECKPOINT_EVERY) <= 2000


def test_leaderboard_trains_evaluates_resumes_and_renders(tmp_path, monkeypatch) -> None:
    for module in (leaderboard, render):  # this budget's cells are named and shown as the 10^5-step ones
        monkeypatch.setattr(module, "DEFAULT_STEPS", 4)
    assert main(_argv(tmp_path)) == 0
    for name in CELLS:
        result = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        assert result["status"] == "done" and result["seeds"] == [0, 1] and result["steps"] == 4
        assert [seed["seed"] for seed in result["replicas"]] == [0, 1]
        nll = [seed["test_nll_100"] for seed in result["replicas"]]
        assert result["test_nll_100"]["mean"] == pytest.approx(sum(nll) / 2)
        assert result["test_nll_100"]["ci95_half"] == pytest.approx(12.706 * abs(nll[0] - nll[1]) / 2, rel=1e-3)
        for seed in result["replicas"]:  # -L_5000 is the tighter bound on its images
            assert seed["test_images"] == 12 and seed["large_k_images"] == 12
            assert seed["test_nll_5000"] < seed["test_nll_100"] + 1.0
        replicas = result["seeds_as_replicas"]
        assert replicas == (name != "mnist-nonlinear-rebar-K4")
        assert result["replica_steps_per_s"] == pytest.approx((2 if replicas else 1) * result["steps_per_s"])
        # the variance at the fixed checkpoints 10%, 50% and 100% of the 4 steps: steps 1 (at least 1), 2 and 4
        assert list(result["encoder_gradient_variance_at"]) == ["1", "2", "4"]
        for seed in result["replicas"]:  # each from its own checkpoint: the first and the last differ
            at = seed["encoder_gradient_variance_at"]
            assert all(v > 0 for v in at.values()) and at["1"] != at["4"]
        elbos = [seed["train_elbo"] for seed in result["replicas"]]
        assert result["train_elbo"]["mean"] == pytest.approx(sum(elbos) / 2) and all(e < 0 for e in elbos)
        last = [seed["encoder_gradient_variance_at"]["4"] for seed in result["replicas"]]
        assert result["encoder_gradient_variance_at"]["4"]["mean"] == pytest.approx(sum(last) / 2)
    for seed in (0, 1):  # REBAR's seeds: one process each, in the folders replicas would have
        assert (tmp_path / "runs" / "mnist-nonlinear-rebar-K4" / f"seed-{seed}" / "checkpoints" / "best.safetensors"
                ).is_file()
    page = (tmp_path / "leaderboard.md").read_text()
    assert "| disarm | 2 | 1 |" in page and "| concrete | 2 | 2 |" in page and "| rebar | 4 (3 used) | 1 |" in page
    assert "at 10% / 50% / 100% of the steps" in page and "| training ELBO |" in page
    assert (tmp_path / "figures" / "mnist-nonlinear.png").is_file()
    assert (tmp_path / "figures" / "overview.png").is_file() and "](figures/overview.png)" in page
    assert "steps instead of" not in page  # the leaderboard's budget: no section of a longer run
    assert "**Progress:** 3 of the 104 cells have finished at 4 steps" in page
    nll = {name.split("-")[2]: json.loads((tmp_path / "results" / f"{name}.json").read_text())["test_nll_100"]["mean"]
           for name in CELLS}
    first, second = sorted(("disarm", "concrete"), key=nll.get)
    overview = page[page.index("## Overview"):page.index("**training ELBO (nats")]
    assert "| estimator | MNIST nonlinear, K = 2 | mean rank |" in overview  # K = 4 has one cell: nothing to rank
    assert f"| {first} | {nll[first]:.2f} (1) | 1.0 |" in overview
    assert f"| {second} | {nll[second]:.2f} (2) | 2.0 |" in overview
    assert "| rebar |" not in overview
    # the leader's gap to the other, seed by seed: mean of (other - leader) over seeds 0 and 1, t with 1 degree
    per_seed = {e: [json.loads((tmp_path / "results" / f"mnist-nonlinear-{e}-K2.json").read_text())["replicas"][s]
                    ["test_nll_100"] for s in (0, 1)] for e in (first, second)}
    gaps = [per_seed[second][s] - per_seed[first][s] for s in (0, 1)]
    start = page.index("**Against the section's leader")
    against = page[start:page.index("\n*training ELBO*", start)]
    assert f"| {first} | leader |" in against
    assert f"| {second} | {sum(gaps) / 2:+.2f} ± {12.706 * abs(gaps[0] - gaps[1]) / 2:.2f}" in against
    row = next(line for line in page.splitlines() if line.startswith("| binarized MNIST") and "| nonlinear |" in line)
    finished, at_2, at_4 = [cell.strip() for cell in row.split("|")[3:6]]
    assert finished == "3 of 26" and "disarm" not in at_2.split(", ") and "concrete" not in at_2.split(", ")
    assert "reinforce_loo" in at_2.split(", ") and "rebar" not in at_4.split(", ") and "relax" in at_4.split(", ")
    assert "| linear | 0 of 26 | all | all |" in page

    # the quietly measured cost of a step (benchmarks/leaderboard_cost.py --write): 1,000 / ms in the speed column,
    # beside the training's own rate; a cell not measured gets a dash
    cost_file = tmp_path / "results" / render.STEP_COST_FILE
    cost_file.parent.mkdir(parents=True)
    cost_file.write_text(json.dumps({"cells": {"mnist-nonlinear-disarm-K2": {"ms_per_replica_step": 4.0},
                                               "mnist-nonlinear-concrete-K2": {"ms_per_replica_step": 8.0}}}))
    assert len(render.load_leaderboard(tmp_path / "results")) == 3  # the cost file is not a cell
    render.render_leaderboard(tmp_path / "results", tmp_path / "costed.md", tmp_path / "costed")
    costed = (tmp_path / "costed.md").read_text()
    rates = {name: json.loads((tmp_path / "results" / f"{name}.json").read_text())["replica_steps_per_s"]
             for name in CELLS}
    assert f"| 250 / {rates['mnist-nonlinear-disarm-K2']:,.0f} |" in costed
    assert f"| 125 / {rates['mnist-nonlinear-concrete-K2']:,.0f} |" in costed
    assert f"| – / {rates['mnist-nonlinear-rebar-K4']:,.0f} |" in costed
    assert (tmp_path / "costed" / "mnist-nonlinear.png").is_file()

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(leaderboard, "train", must_not_train)
    assert main(_argv(tmp_path)) == 0  # done: kept
    assert main(_argv(tmp_path, "--list")) == 0


def test_a_fashion_cell_not_measured_takes_the_mnist_cells_cost() -> None:
    costs = {"mnist-linear-arm-K2": 3.0, "fashion-linear-arm-K2": 3.5, "mnist-linear-vimco-K2": 4.0}
    assert render.step_cost(costs, "fashion-linear-arm-K2") == 3.5  # its own, where measured
    assert render.step_cost(costs, "fashion-linear-vimco-K2") == 4.0  # the same shapes on MNIST
    assert render.step_cost(costs, "mnist-linear-nvil-K2") is None
    assert render.step_cost(costs, "fashion-nonlinear-vimco-K2") is None  # another model is another cost


def test_the_bound_at_equal_cpu_time_interpolates_the_first_seeds_curve() -> None:
    result = {"cell": "mnist-linear-arm-K2",
              "replicas": [{"valid_curve": [[10_000, 140.0, 5.0], [20_000, 130.0, 9.0]]}, {"valid_curve": []}]}
    costs = {"mnist-linear-arm-K2": 6.0}  # 10,000 steps at 6 ms: 1 CPU minute
    assert render.bound_at_cpu_minutes(result, costs, 1.0) == 140.0
    assert render.bound_at_cpu_minutes(result, costs, 1.5) == pytest.approx(135.0)
    assert render.bound_at_cpu_minutes(result, costs, 2.0) == 130.0
    assert render.bound_at_cpu_minutes(result, costs, 2.5) is None  # beyond its last validation
    assert render.bound_at_cpu_minutes(result, costs, 0.5) is None
    assert render.bound_at_cpu_minutes(result, {}, 1.0) is None  # not measured


def test_list_says_where_each_cell_stands(tmp_path, capsys) -> None:
    """--list reads results and checkpoint headers: done (with -L_100), stopped at a step, training (the run folder's
    lock file names a live process), trained but not evaluated, or not started."""
    import os
    import socket

    from concretelab.reproduce.leaderboard import cell_progress
    from concretelab.train import train
    from concretelab.train.metrics import read_metrics
    from concretelab.train.run_lock import LOCK_NAME

    argv = ["lab", "leaderboard", "--steps", "4", "--seeds", "0-1", "--mnist", "embedded", "--test-images", "8",
            "--valid-images", "8", "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "results"),
            "--markdown", str(tmp_path / "leaderboard.md"), "--figures", str(tmp_path / "figures")]
    assert main([*argv, "--cells", "mnist-linear-nvil-K2"]) == 0
    options = LeaderboardOptions(out=tmp_path / "runs", results=tmp_path / "results", steps=4, seeds="0-1",
                                 valid_images=8, data={"mnist": "embedded", "fashion": "embedded"})
    stopped, per_seed = leaderboard_cells(["mnist-linear-vimco-K2", "mnist-linear-rodeo-K2"])
    train(dataclasses.replace(cell_config(stopped, options), steps=2))  # 2 of the 4 steps
    first_seed, _ = leaderboard.seed_configs(per_seed, options)  # RODEO's seeds train one after the other
    train(first_seed)
    capsys.readouterr()
    assert main([*argv, "--list", "--cells", "mnist-linear-nvil-K2", "mnist-linear-vimco-K2",
                 "mnist-linear-rodeo-K2", "mnist-linear-arm-K2"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "done: -L_100 " in lines["mnist-linear-nvil-K2-steps4"]
    assert lines["mnist-linear-vimco-K2-steps4"].endswith("stopped at step 2 of 4 (run it again to resume)")
    assert lines["mnist-linear-rodeo-K2-steps4"].endswith("stopped, seeds at steps 4 / 0 of 4 (run it again to "
                                                          "resume)")
    assert lines["mnist-linear-arm-K2-steps4"].endswith("not started")
    assert lines["4"].startswith("4 cells: 1 done, 2 stopped, 1 not started")
    holder = f"process {os.getpid()} on {socket.gethostname()}"
    (Path(cell_config(stopped, options).out) / LOCK_NAME).write_text(holder + "\n")  # as a live trainer leaves it
    rate = last_steps_per_s(Path(cell_config(stopped, options).out))  # the first replica's last row
    rows = [r for r in read_metrics(Path(cell_config(stopped, options).out) / "seed-0" / "metrics.jsonl")
            if "steps_per_s" in r]
    assert rate == rows[-1]["steps_per_s"] > 0
    assert cell_progress(stopped, options).describe() == (
        f"training ({holder}): step 2 of 4, about {2 / rate / 60:.0f} min of training left at {rate:.3g} steps/s")
    train(cell_config(stopped, options), resume=True)  # the lock file is emptied when the trainer lets go
    assert cell_progress(stopped, options).describe() == "trained, not evaluated (run it again to evaluate)"


def test_encoder_gradient_variance_is_the_trace_of_the_gradients_covariance(tmp_path) -> None:
    """The streamed variance against torch.var of the stacked draws (the same draws: the same generator seed)."""
    import torch

    from concretelab.objectives import OBJECTIVES
    from concretelab.train import train
    from concretelab.train.load import load_run

    config = cell_config(leaderboard_cells(["mnist-linear-concrete-K2"])[0],
                         LeaderboardOptions(out=tmp_path, results=tmp_path, steps=3, seeds="0", valid_images=8,
                                            data={"mnist": "embedded", "fashion": "embedded"}))
    train(config)
    variance = leaderboard.encoder_gradient_variance(Path(config.out), draws=12, images=10)
    model, _ = load_run(Path(config.out), checkpoint="best")
    model.train()
    from concretelab.data import load_dataset

    data = load_dataset("embedded")
    x = data.train[torch.randperm(data.train.shape[0], generator=torch.Generator().manual_seed(0))[:10]].float()
    encoder = [p for name, p in model.named_parameters() if name.startswith("encoder")]
    generator = torch.Generator().manual_seed(1)
    draws = []
    for _ in range(12):
        bound = OBJECTIVES["relaxed"](model, x, samples=2, prior_temperature=0.5, posterior_temperature=2 / 3,
                                      generator=generator)
        draws.append(torch.cat([g.flatten() for g in torch.autograd.grad(-bound.mean(), encoder)]).double())
    assert variance == pytest.approx(float(torch.stack(draws).var(dim=0).sum()), rel=1e-6)
    assert variance > 0


def test_nvil_variance_is_of_its_estimate_not_of_its_rescaled_step(tmp_path, monkeypatch) -> None:
    """NVIL divides its training signal by max(1, running std); the cell's variance must not see that scale, or
    NVIL's would shrink by the running variance (about 77 at the end of mnist-linear-nvil-K2) against the other
    cells'. Two checkpoints that differ only in the running variance (1 and 10^4) give the same variance."""
    import concretelab.train as train_package
    from concretelab.train import train

    config = cell_config(leaderboard_cells(["mnist-linear-nvil-K2"])[0],
                         LeaderboardOptions(out=tmp_path, results=tmp_path, steps=3, seeds="0", valid_images=8,
                                            data={"mnist": "embedded", "fashion": "embedded"}))
    train(config)
    load = train_package.load_checkpoint
    variances = []
    for running_variance in (1.0, 1e4):
        def with_variance(path, *args, value=running_variance, **kwargs):
            saved = load(path, *args, **kwargs)
            saved.extra["estimator"]["moments.var"].fill_(value)
            return saved

        monkeypatch.setattr(train_package, "load_checkpoint", with_variance)
        variances.append(leaderboard.encoder_gradient_variance(Path(config.out), draws=8, images=10))
    assert variances[0] > 0
    assert variances[1] == pytest.approx(variances[0], rel=1e-9)

    # and the baselines are the checkpoint's: shifting the saved baseline's output by 1000 nats shifts NVIL's signal
    # l - b(x) - c by as much (a baseline left at its initial value would not see it), and the variance grows
    def shifted_baseline(path, *args, **kwargs):
        saved = load(path, *args, **kwargs)
        saved.extra["estimator"]["baselines.0.2.bias"].add_(1000.0)
        return saved

    monkeypatch.setattr(train_package, "load_checkpoint", shifted_baseline)
    assert leaderboard.encoder_gradient_variance(Path(config.out), draws=8, images=10) > 10 * variances[0]


def test_variances_at_fixed_steps_come_from_those_steps_checkpoints(tmp_path, monkeypatch) -> None:
    """10%, 50% and 100% of 20 steps: the snapshots step-2 and step-10, and the last checkpoint for step 20."""
    for name in ("step-2", "step-10", "last", "best"):
        (tmp_path / "checkpoints").mkdir(exist_ok=True)
        (tmp_path / "checkpoints" / f"{name}.safetensors").touch()
    asked = []

    def variance(run, *, checkpoint="best", **kwargs):
        asked.append(checkpoint)
        return {"step-2": 3.0, "step-10": 2.0, "last": 1.0, "best": 7.0}[checkpoint]

    monkeypatch.setattr(leaderboard, "encoder_gradient_variance", variance)
    assert leaderboard.variances_at_fixed_steps(tmp_path, 20) == {"2": 3.0, "10": 2.0, "20": 1.0}
    assert asked == ["step-2", "step-10", "last"]
    (tmp_path / "checkpoints" / "step-10.safetensors").unlink()  # a snapshot the run did not keep is left out
    assert leaderboard.variances_at_fixed_steps(tmp_path, 20) == {"2": 3.0, "20": 1.0}


def test_another_budget_is_a_run_of_its_own_beside_the_leaderboards(tmp_path, monkeypatch) -> None:
    """``--steps`` other than the leaderboard's budget (the 10^6-step runs of the leaders) trains the cell afresh in
    ``{cell}-steps{N}``: the budget's run folder is neither extended nor its result replaced, and the page gives the
    longer run a section of its own."""
    for module in (leaderboard, render):
        monkeypatch.setattr(module, "DEFAULT_STEPS", 3)
    cell = "mnist-linear-concrete-K2"
    argv = ["lab", "leaderboard", "--cells", cell, "--seeds", "0-1", "--mnist", "embedded", "--test-images", "12",
            "--valid-images", "8", "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "results"),
            "--markdown", str(tmp_path / "leaderboard.md"), "--figures", str(tmp_path / "figures")]
    assert main([*argv, "--steps", "3"]) == 0
    result = tmp_path / "results" / f"{cell}.json"
    last = tmp_path / "runs" / cell / "checkpoints" / "last.safetensors"
    before = (result.read_bytes(), last.read_bytes())
    assert main([*argv, "--steps", "5"]) == 0
    assert (result.read_bytes(), last.read_bytes()) == before
    longer = json.loads((tmp_path / "results" / f"{cell}-steps5.json").read_text())
    assert (longer["cell"], longer["run_name"], longer["steps"]) == (cell, f"{cell}-steps5", 5)
    assert (tmp_path / "runs" / f"{cell}-steps5" / "checkpoints" / "last.safetensors").is_file()
    assert list(longer["encoder_gradient_variance_at"]) == ["1", "2", "5"]  # 10%, 50% and 100% of its own budget
    page = (tmp_path / "leaderboard.md").read_text()
    assert "## binarized MNIST, the fixed binarization (50k/10k/10k): linear model\n" in page
    assert "### binarized MNIST, the fixed binarization (50k/10k/10k): linear model, 5 steps" in page
    assert page.index("linear model, 5 steps") > page.index("linear model\n")
    assert (tmp_path / "figures" / "mnist-linear-steps5.png").is_file()
    assert main([*argv, "--steps", "5", "--list"]) == 0


def test_training_elbo_is_the_exact_elbo_of_the_discrete_model(tmp_path) -> None:
    """Against the ELBO summed exactly over the 2^3 latent states of a 3-unit model, image by image; the tolerance
    is 5 standard errors of the Monte Carlo mean, from the exact variance of the log-weights under q."""
    import itertools

    import torch

    from concretelab.objectives import layer_log_prob
    from concretelab.train import train
    from concretelab.train.load import load_run

    config = dataclasses.replace(
        cell_config(leaderboard_cells(["mnist-linear-disarm-K2"])[0],
                    LeaderboardOptions(out=tmp_path, results=tmp_path, steps=5, seeds="0", valid_images=8,
                                       data={"mnist": "embedded", "fashion": "embedded"})),
        model="3H-784V", lr=3e-2, seeds=None)
    train(config)
    images, draws = 40, 3000
    measured = leaderboard.training_elbo(Path(config.out), images=images, draws=draws)
    model, _ = load_run(Path(config.out), checkpoint="best")
    x = leaderboard.training_images("embedded", images)
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))  # (8, 3)
    h = states[:, None, :].expand(8, images, 3)
    with torch.no_grad():
        log_q = layer_log_prob(2, model.proposal_logits(0, x, []), h)  # (8, images)
        log_w = (model.log_joint(x, [h]) - log_q).double()
    q = log_q.double().exp()
    assert torch.allclose(q.sum(0), torch.ones(images, dtype=torch.float64), atol=1e-5)
    exact = (q * log_w).sum(0)  # (images,)
    variance = (q * (log_w - exact) ** 2).sum(0)
    standard_error = float(variance.sum().sqrt()) / (images * draws ** 0.5)
    assert measured["images"] == images and measured["draws"] == draws
    assert abs(measured["mean"] - float(exact.mean())) < 5 * standard_error
    assert float(exact.std()) > 10 * standard_error  # the images differ: a fixed image set, not one image repeated


def _result(cell: str, per_seed: dict[int, float], key: str = "test_nll_100") -> dict:
    return {"cell": cell, "replicas": [{"seed": seed, key: value} for seed, value in per_seed.items()]}


@pytest.mark.parametrize("seeds", [3, 5])
def test_leader_gap_is_the_paired_t_interval_over_common_seeds(seeds) -> None:
    from scipy import stats

    gen = np.random.default_rng(seeds)
    leader = gen.normal(116.0, 0.5, size=seeds)
    other = leader + gen.normal(0.6, 0.3, size=seeds)
    # the other cell has one seed more, which has no partner and must be left out
    mean, half, n = render.leader_gap(_result("a", dict(enumerate(leader))),
                                      _result("b", {**dict(enumerate(other)), seeds: 99.0}), "test_nll_100",
                                      larger_better=False)
    reference = stats.ttest_rel(other, leader).confidence_interval(0.95)
    assert n == seeds and mean == pytest.approx(float(np.mean(other - leader)))
    assert mean - half == pytest.approx(reference.low, abs=2e-3) and mean + half == pytest.approx(reference.high,
                                                                                                  abs=2e-3)
    # where higher is better, the gap is leader - other: the same numbers, negated, give the same gap
    again = render.leader_gap(_result("a", dict(enumerate(-leader)), "train_elbo"),
                              _result("b", dict(enumerate(-other)), "train_elbo"), "train_elbo", larger_better=True)
    assert again == pytest.approx((mean, half, n))


def test_leader_gap_needs_a_common_seed() -> None:
    assert render.leader_gap(_result("a", {0: 1.0}), _result("b", {0: 3.0, 1: 2.0}), "test_nll_100",
                             larger_better=False) == (2.0, None, 1)
    with pytest.raises(ValueError, match="no seed in common"):
        render.leader_gap(_result("a", {0: 1.0}), _result("b", {1: 2.0}), "test_nll_100", larger_better=False)


def _section_cell(estimator: str, nll: list[float], elbo: list[float]) -> dict:
    """A finished cell of MNIST's nonlinear model at K = 2 with these per-seed numbers."""
    return {"cell": f"mnist-nonlinear-{estimator}-K2", "estimator": estimator, "dataset": "mnist",
            "model": "nonlinear", "evaluations": 2,
            "test_nll_100": {"mean": sum(nll) / len(nll)}, "train_elbo": {"mean": sum(elbo) / len(elbo)},
            "replicas": [{"seed": s, "test_nll_100": n, "train_elbo": e}
                         for s, (n, e) in enumerate(zip(nll, elbo, strict=True))]}


def test_the_best_unbiased_estimator_leads_its_own_table() -> None:
    """ReinMax and Concrete (biased) lead the section; the unbiased table leaves them out and measures ARM against
    DisARM, the best unbiased mean: per seed 1.0 and 2.0 behind, so +1.50 +- 12.706 * 0.5."""
    rows = [_section_cell("reinmax", [100.0, 101.0], [-110.0, -111.0]),
            _section_cell("concrete", [100.5, 101.5], [-130.0, -131.0]),
            _section_cell("disarm", [103.0, 104.0], [-115.0, -116.0]),
            _section_cell("arm", [104.0, 106.0], [-116.0, -118.0])]
    section = [("mnist", "nonlinear", 2)]
    everyone = "\n".join(render._against_leader(rows, section))
    assert "| reinmax | leader |" in everyone and "| disarm | +3.00 ± 0.00 ✱ |" in everyone
    unbiased = "\n".join(render._against_leader(rows, section, unbiased_only=True))
    assert unbiased.startswith("**Against the best unbiased estimator")
    assert "reinmax" not in unbiased and "concrete" not in unbiased
    assert "| disarm | leader |" in unbiased
    assert f"| arm | +1.50 ± {12.706 * 0.5:.2f} |" in unbiased  # the interval includes zero: no mark
    assert render._against_leader(rows[:2], section, unbiased_only=True) == []  # no unbiased cell, no table


def _subtable(lines: list[str], label: str) -> str:
    """The lines of one number's table (from its label to the next blank line after its rows)."""
    start = next(i for i, line in enumerate(lines) if line.strip("*").startswith(label))
    end = next(i for i in range(start + 3, len(lines)) if not lines[i].startswith("|"))
    return "\n".join(lines[start:end])


def test_the_training_elbo_ranks_higher_as_better(tmp_path) -> None:
    """The ELBO's leader is the largest ELBO, not the smallest: DisARM here, while ReinMax leads on −L_100. Its gaps
    are leader − other: ReinMax is 2 behind on both seeds, Concrete 22."""
    rows = [_section_cell("reinmax", [100.0, 101.0], [-110.0, -111.0]),
            _section_cell("concrete", [100.5, 101.5], [-130.0, -131.0]),
            _section_cell("disarm", [103.0, 104.0], [-108.0, -109.0])]
    section = [("mnist", "nonlinear", 2)]
    against = render._against_leader(rows, section)
    nll, elbo = _subtable(against, "test −L_"), _subtable(against, "training ELBO")
    assert "| reinmax | leader |" in nll and "| disarm | +3.00 ± 0.00 ✱ |" in nll
    assert "| disarm | leader |" in elbo and "| reinmax | +2.00 ± 0.00 ✱ |" in elbo
    assert "| concrete | +22.00 ± 0.00 ✱ |" in elbo
    for row in rows:
        row["request"] = {"steps": render.DEFAULT_STEPS}
    overview = render._overview(rows, tmp_path / "figures", tmp_path / "leaderboard.md")
    elbo_ranks = _subtable(overview, "training ELBO")
    assert "| disarm | -108.50 (1) | 1.0 |" in elbo_ranks and "| concrete | -130.50 (3) | 3.0 |" in elbo_ranks
    assert "| reinmax | 100.50 (1) | 1.0 |" in _subtable(overview, "test −L_")


def test_a_gap_the_leader_loses_on_the_common_seeds_is_not_marked() -> None:
    """The leader is the best mean over all its seeds; the gap is over the seeds two cells share. Here the leader's
    third seed carries its mean, and on the two shared seeds the other cell is ahead: a settled negative gap,
    which must not get the mark of a leader that is ahead."""
    leader = _section_cell("disarm", [100.0, 100.5, 90.0], [-110.0, -110.5, -100.0])
    other = _section_cell("arm", [99.0, 99.6], [-109.0, -109.6])
    rows = [line for line in render._against_leader([leader, other], [("mnist", "nonlinear", 2)])
            if line.startswith("| arm |")]
    assert rows == [f"| arm | -0.95 ± {12.706 * 0.05:.2f} |"] * 2  # −L_100 and the ELBO, no ✱ on either


def test_cells_of_one_seed_start_from_the_same_weights(tmp_path) -> None:
    # what the page's seed-by-seed gaps rely on: the estimator does not enter the initialisation
    import torch

    from concretelab.train.loop import seeded_model

    options = LeaderboardOptions(out=tmp_path, results=tmp_path)
    configs = [cell_config(cell, options) for cell in leaderboard_cells(["mnist-linear-disarm-K2",
                                                                         "mnist-linear-concrete-K4"])]
    mean = torch.full((784,), 0.3)
    first, second = (seeded_model(config, 1, mean).state_dict() for config in configs)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    other_seed = seeded_model(configs[0], 2, mean).state_dict()
    assert not all(torch.equal(first[k], other_seed[k]) for k in first)


def test_time_left_is_the_steps_still_to_run_at_the_running_rate(tmp_path) -> None:
    from concretelab.reproduce.leaderboard import CellProgress

    def progress(steps, rate, holder="process 1 on vm"):
        return CellProgress(result=None, steps=steps, budget=100_000, holder=holder, rate=rate)

    assert progress((40_000,), 25.0).time_left() == ", about 40 min of training left at 25 steps/s"
    # seeds one after the other: every seed's remaining steps, at the rate of the one running now
    assert progress((100_000, 40_000, 0), 20.0).time_left() == ", about 2.2 h of training left at 20 steps/s"
    assert progress((40_000,), None).time_left() == "" and progress((40_000,), 25.0, holder=None).time_left() == ""
    # a torn last line and a validation row after the last training row: the last training row's rate
    run = tmp_path / "run"
    (run / "seed-3").mkdir(parents=True)
    (run / "seed-3" / "metrics.jsonl").write_text('{"step": 10, "loss": 1.0, "steps_per_s": 12.5}\n'
                                                  '{"step": 10, "valid_nll": 99.0}\n{"step": 20, "lo')
    assert last_steps_per_s(run) == 12.5
    assert last_steps_per_s(tmp_path / "absent") is None
