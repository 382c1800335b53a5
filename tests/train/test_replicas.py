"""``--seeds``: replicas of one model in one process (concretelab.train.replicas and the trainer's replica run).

The references are independent of the replica code: each replica is compared with the ordinary model of its
seed, evaluated on its own rows by the ordinary nn.Linear path, and the replica run with single-seed runs.
"""

from __future__ import annotations

import json
import signal

import pytest
import torch
from safetensors.torch import load_file

import concretelab
from concretelab.cli import main as cli_main
from concretelab.data import BatchIterator
from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES
from concretelab.objectives.terms import layer_log_prob
from concretelab.train import load_checkpoint, train
from concretelab.train.config import config_from_dict, load_config
from concretelab.train.evaluate import evaluate_run
from concretelab.train.replicas import (
    ReplicaBatches,
    ReplicaLinear,
    parse_seeds,
    replica_optimizer_state,
    replica_state,
    stack_replicas,
)

from ._helpers import model_tensors, resume, run_python, small_config
from .test_interruptions import _KILL_SCRIPT  # the CLI, killed by SIGKILL at its N-th objective call

# ----- parsing --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seeds"), [
    ("0-7", tuple(range(8))), ("0,3,5", (0, 3, 5)), ("0-3,8", (0, 1, 2, 3, 8)), (" 4 ", (4,)), ([2, 9], (2, 9)),
])
def test_parse_seeds_reads_lists_and_ranges(text, seeds) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(("text", "message"), [
    ("3-1", "runs backwards"), ("a", "seeds and ranges"), ("0,0", "seed 0 twice"), ("0-2,1", "seed 1 twice"),
    ("-1", "seeds and ranges"), ([1, -2], "non-negative"), ([], "at least one"),
])
def test_parse_seeds_refuses_bad_lists_naming_the_flag(text, message) -> None:
    with pytest.raises(ValueError, match=message) as error:
        parse_seeds(text)
    assert "--seeds" in str(error.value)


def test_config_key_seeds_accepts_a_toml_list_and_one_seed_is_a_plain_run() -> None:
    assert config_from_dict({"seeds": [0, 1, 2]}).seeds == "0,1,2"
    assert config_from_dict({"seeds": "0-2"}).seed_list == (0, 1, 2)
    single = config_from_dict({"seeds": "5"})
    assert (single.seeds, single.seed, single.seed_list) == (None, 5, (5,))


# ----- the batched model against the models of its seeds ---------------------------------------------------------


def _models(name: str, seeds, categories=None):
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build_model(name, categories=categories).double())
    return models


def test_replica_linear_applies_each_replicas_own_map_to_its_rows() -> None:
    torch.manual_seed(0)
    layers = [torch.nn.Linear(5, 3).double() for _ in range(4)]
    stacked = ReplicaLinear.stack(layers)
    for lead in ((), (1,), (3,), (2, 3)):
        x = torch.randn(*lead, 4 * 6, 5, dtype=torch.float64)
        rows = x.unflatten(-2, (4, 6))
        expected = torch.cat([layers[r](rows[..., r, :, :]) for r in range(4)], dim=-2)
        torch.testing.assert_close(stacked(x), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="R = 4"):
        stacked(torch.randn(7, 5, dtype=torch.float64))


@pytest.mark.parametrize(("name", "categories"), [
    ("8H~784V", None), ("8H-6H-784V", None), ("8H~784V", 4), ("392V-8H-392V", None), ("categorical-vae", 4),
])
def test_stacked_model_gives_each_replica_its_models_joint_and_gradient(name, categories) -> None:
    seeds = (3, 0, 7)
    models = _models(name, seeds, categories)
    stacked = stack_replicas(models)
    assert stacked.replicas == 3
    b, m = 5, 2
    torch.manual_seed(1)
    x = (torch.rand(3 * b, 784) < 0.4).double()
    h, log_q = stacked.sample_posterior(x, m)  # (m, 3b, ...) latents from the stacked proposal, and their log q
    weight = stacked.log_joint(x, h) - log_q  # (m, 3b): log p(x, h) - log q(h | x), every parameter involved
    weight.view(m, 3, b).mean((0, 2)).sum().backward()
    for r, model in enumerate(models):
        rows = slice(r * b, (r + 1) * b)
        mine = [value[:, rows] for value in h]
        reference_q = sum(layer_log_prob(k, model.proposal_logits(i, x[rows], mine), mine[i])
                          for i, k in enumerate(model.latent_categories))
        reference = model.log_joint(x[rows], mine) - reference_q
        torch.testing.assert_close(weight[:, rows], reference, rtol=1e-12, atol=1e-10)
        reference.mean().backward()
        for (name_, p_stacked), (name_ref, p_ref) in zip(stacked.named_parameters(), model.named_parameters(),
                                                         strict=True):
            assert name_ == name_ref
            torch.testing.assert_close(p_stacked.grad[r], p_ref.grad, rtol=1e-10, atol=1e-12, msg=name_)


def test_replica_state_gives_back_each_models_state_dict() -> None:
    models = _models("8H-6H-784V", (0, 1, 2))
    stacked = stack_replicas(models)
    for r, model in enumerate(models):
        state = replica_state(stacked, r)
        assert state.keys() == model.state_dict().keys()
        for key, value in model.state_dict().items():
            assert torch.equal(state[key], value), key
    with pytest.raises(ValueError, match=r"0\.\.2"):
        replica_state(stacked, 3)


def test_a_replicas_gradient_does_not_see_the_other_replicas_rows() -> None:
    """The relaxed bound on the stacked model: changing replica 1's images leaves replica 0's gradient as it was."""
    stacked = stack_replicas(_models("8H~784V", (0, 1)))
    torch.manual_seed(2)
    x = (torch.rand(2 * 6, 784) < 0.4).double()
    grads = []
    for images in (x, torch.cat([x[:6], 1 - x[6:]])):
        stacked.zero_grad()
        bound = OBJECTIVES["relaxed"](stacked, images, samples=3, prior_temperature=0.5, posterior_temperature=0.5,
                                      generator=torch.Generator().manual_seed(5))
        (-bound.view(2, 6).mean(1)).sum().backward()
        grads.append({name: p.grad.clone() for name, p in stacked.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name][0], grads[1][name][0], rtol=1e-12, atol=1e-14, msg=name)
        assert not torch.equal(grads[0][name][1], grads[1][name][1]) or "prior" in name, name


def test_replica_optimizer_state_slices_adams_moments_and_keeps_the_step() -> None:
    stacked = stack_replicas(_models("8H-784V", (0, 1)))
    optimizer = torch.optim.Adam(stacked.parameters(), lr=1e-3)
    sum(p.sum() for p in stacked.parameters()).backward()
    optimizer.step()
    state = optimizer.state_dict()
    one = replica_optimizer_state(state, 1)
    for index, entry in state["state"].items():
        assert torch.equal(one["state"][index]["exp_avg"], entry["exp_avg"][1])
        assert torch.equal(one["state"][index]["step"], entry["step"])


def test_replica_batches_are_each_seeds_own_stream() -> None:
    images = (torch.rand(50, 784) < 0.5).to(torch.uint8)
    streams = [BatchIterator(images, 8, seed=s, drop_last=True) for s in (4, 9)]
    alone = [BatchIterator(images, 8, seed=s, drop_last=True) for s in (4, 9)]
    batches = ReplicaBatches(streams)
    for _ in range(8):  # past an epoch
        together = next(batches)
        assert torch.equal(together, torch.cat([next(alone[0]), next(alone[1])]))
    saved = batches.state_dict()
    follow = next(batches)
    batches.load_state_dict(saved)
    assert torch.equal(next(batches), follow)
    with pytest.raises(ValueError, match="2 replicas"):
        batches.load_state_dict({"replicas": [saved["replicas"][0]]})


# ----- the trainer ---------------------------------------------------------------------------------------------


def _rows(path):
    return [{k: v for k, v in json.loads(line).items() if k not in ("time", "steps_per_s")}
            for line in path.read_text().splitlines()]


def test_one_seed_in_seeds_is_bit_identical_to_a_plain_run(tmp_path) -> None:
    plain, listed = tmp_path / "plain", tmp_path / "listed"
    train(small_config(plain, seed=3, steps=6))
    train(config_from_dict({"seeds": "3"}, small_config(listed, steps=6)))
    a, b = model_tensors(plain), model_tensors(listed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(plain / "metrics.jsonl") == _rows(listed / "metrics.jsonl")


def test_replica_run_starts_each_replica_as_the_run_of_its_seed(tmp_path) -> None:
    """One step at lr 1e-30 leaves the parameters at their initial values (to 1e-25) and the validation of step 1
    equal to the plain run of each seed (the same images, k and proposal samples)."""
    out = tmp_path / "replicas"
    train(small_config(out, steps=1, seeds="2,5", eval_every=1, lr=1e-30))
    for seed in (2, 5):
        plain = train(small_config(tmp_path / f"plain{seed}", steps=1, seed=seed, eval_every=1, lr=1e-30))
        replica = model_tensors(out / f"seed-{seed}", "best")
        alone = model_tensors(plain.out, "best")
        assert replica.keys() == alone.keys()
        for key, value in alone.items():
            torch.testing.assert_close(replica[key], value, rtol=0, atol=1e-25, msg=key)
        assert _rows(out / f"seed-{seed}" / "metrics.jsonl")[-1]["valid_nll"] == pytest.approx(
            _rows(plain.out / "metrics.jsonl")[-1]["valid_nll"], rel=1e-6)


def test_replica_run_writes_one_run_folder_per_seed(tmp_path) -> None:
    out = tmp_path / "replicas"
    result = train(small_config(out, steps=6, seeds="0-2", eval_every=3, log_every=3))
    assert sorted(result.best_valid_nll_by_seed) == [0, 1, 2]
    assert result.best_valid_nll == pytest.approx(sum(result.best_valid_nll_by_seed.values()) / 3)
    for seed in (0, 1, 2):
        rows = _rows(out / f"seed-{seed}" / "metrics.jsonl")
        assert [(r["step"], "loss" in r) for r in rows] == [(3, True), (3, False), (6, True), (6, False)]
        assert {r["seed"] for r in rows} == {seed}
        _, config = concretelab.load_run(out, seed=seed)
        assert (config.seed, config.seeds) == (seed, None)
        assert (out / f"seed-{seed}" / "metrics.csv").is_file()
        best = load_checkpoint(out / f"seed-{seed}" / "checkpoints" / "best.safetensors")
        assert -best.best_valid == pytest.approx(result.best_valid_nll_by_seed[seed])
    # replicas differ (their own seeds), and the stacked checkpoint holds all of them
    last = model_tensors(out)
    assert last["model/prior_bias"].shape == (3, 8)
    with pytest.raises(ValueError, match="seed=S"):
        concretelab.load_run(out)


@pytest.mark.parametrize("estimator", [None, "nvil"])
def test_replica_run_resumed_with_more_steps_replays_every_tensor(tmp_path, estimator) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    settings = {"seeds": "1,4", "steps": 10, "eval_every": 4, "log_every": 3, "checkpoint_every": 2,
                "estimator": estimator}
    train(small_config(straight, **settings))
    train(small_config(stopped, **{**settings, "steps": 5}))
    resume(small_config(stopped, **settings))
    for folder in ("", "seed-1", "seed-4"):
        a = load_file(str(straight / folder / "checkpoints" / "last.safetensors"))
        b = load_file(str(stopped / folder / "checkpoints" / "last.safetensors"))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), folder
    # (rows and best checkpoints differ by design: a run that ends at step 5 writes a row and validates there; the
    # kill -9 test below compares the rows and best checkpoints of an interrupted run)


def test_replica_run_resumes_bit_for_bit_after_kill_9(tmp_path) -> None:
    args = ["train", "--model", "8H-784V", "--seeds", "0,2,3", "--steps", "12", "--batch-size", "16", "--lr", "3e-3",
            "--device", "cpu", "--eval-every", "5", "--eval-k", "4", "--eval-images", "20", "--log-every", "3",
            "--checkpoint-every", "4", "--no-progress", "--threads", "1"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert cli_main([*args, "--out", str(straight)]) == 0
    proc = run_python(_KILL_SCRIPT, "11", *args, "--out", str(killed))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_checkpoint(killed / "checkpoints" / "last.safetensors").step == 8
    assert cli_main([*args, "--out", str(killed), "--resume"]) == 0
    a, b = model_tensors(straight), model_tensors(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for seed in (0, 2, 3):
        assert _rows(straight / f"seed-{seed}" / "metrics.jsonl") == _rows(killed / f"seed-{seed}" / "metrics.jsonl")
        for which in ("best", "last"):
            a = load_file(str(straight / f"seed-{seed}" / "checkpoints" / f"{which}.safetensors"))
            b = load_file(str(killed / f"seed-{seed}" / "checkpoints" / f"{which}.safetensors"))
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (seed, which)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"grad_accum": 2}, "--grad-accum must be 1"),
    ({"learnable_temperature": True}, "--learnable-temperature cannot be combined with --seeds"),
])
def test_replica_run_refuses_what_would_couple_replicas(tmp_path, overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        train(small_config(tmp_path / "run", seeds="0,1", **overrides))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_stateless_estimator_trains_replicas(tmp_path) -> None:
    result = train(small_config(tmp_path / "run", seeds="0,1", estimator="disarm", steps=4, eval_every=4))
    assert all(nll is not None for nll in result.best_valid_nll_by_seed.values())


def test_a_replica_folder_cannot_be_resumed_alone(tmp_path) -> None:
    out = tmp_path / "run"
    train(small_config(out, seeds="0,1", steps=2))
    with pytest.raises(ValueError, match="one replica of the --seeds run"):
        train(small_config(out / "seed-1", steps=4), resume=True)


def test_resume_with_other_seeds_is_refused(tmp_path) -> None:
    out = tmp_path / "run"
    train(small_config(out, seeds="0,1", steps=2))
    with pytest.raises(ValueError, match="--seeds"):
        train(small_config(out, seeds="0,2", steps=4), resume=True)


def test_evaluate_picks_a_replica(tmp_path) -> None:
    out = tmp_path / "run"
    train(small_config(out, seeds="0,1", steps=2, eval_every=2))
    result = evaluate_run(out, k=3, split="valid", num_images=5, device="cpu",
                                                     seed_replica=1, progress=False)
    assert str(out / "seed-1") in str(result["path"])
    with pytest.raises(FileNotFoundError, match="no replica of seed 4"):
        evaluate_run(out, k=3, split="valid", seed_replica=4, progress=False)


def test_a_replica_folder_records_the_configuration_of_its_seeds_run(tmp_path) -> None:
    out = tmp_path / "run"
    train(small_config(out, seeds="0,1", steps=2))
    replica = load_config(out / "seed-1" / "config.toml")
    assert replica.seed == 1 and replica.seeds is None and replica.out == str(out / "seed-1")
    assert load_config(out / "config.toml").seeds == "0,1"


def test_stacked_nvil_keeps_each_replicas_baselines_and_running_moments() -> None:
    """Three calls of NVIL's signal on the stacked model and estimator against each replica's own model and
    estimator on its rows of the same draw: signals, baseline losses, their gradients and the moments agree."""
    from concretelab.estimators.layered import DiscreteDraw, local_signals, sample_draw
    from concretelab.train.discrete import build_estimator_objective

    seeds, b, m = (1, 6), 5, 3
    models = _models("8H-6H-784V", seeds)
    estimators = [build_estimator_objective("nvil", model, seed=seed).train()
                  for model, seed in zip(models, seeds, strict=True)]
    stacked_model = stack_replicas(models)
    stacked = stack_replicas(estimators, stack_buffers=True).train()
    assert stacked.moments.mean.shape == (2, 2) and stacked.moments.count.shape == (2,)
    generator = torch.Generator().manual_seed(0)
    for call in range(3):
        x = (torch.rand(2 * b, 784, generator=generator) < 0.3).double()
        draw = sample_draw(stacked_model, x, m, generator=generator)
        local = local_signals(draw) * (call + 1)  # signals of changing scale, so the moments move
        stacked.zero_grad()
        centred, regression = stacked.signal(stacked_model, draw, x, local)
        regression.sum().backward()
        for r, (model, estimator) in enumerate(zip(models, estimators, strict=True)):
            rows = slice(r * b, (r + 1) * b)
            mine = DiscreteDraw([v[:, rows] for v in draw.h], draw.log_q[:, :, rows], draw.log_p[:, :, rows])
            estimator.zero_grad()
            centred_r, regression_r = estimator.signal(model, mine, x[rows], local[:, :, rows])
            regression_r.sum().backward()
            torch.testing.assert_close(centred[:, :, rows], centred_r, rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(regression[rows], regression_r, rtol=1e-10, atol=1e-10)
            for (name, p_stacked), (_, p_one) in zip(stacked.named_parameters(), estimator.named_parameters(),
                                                     strict=True):
                torch.testing.assert_close(p_stacked.grad[r], p_one.grad, rtol=1e-10, atol=1e-12, msg=name)
            for name in ("mean", "var", "count"):
                torch.testing.assert_close(getattr(stacked.moments, name)[r], getattr(estimator.moments, name))
    state = replica_state(stacked, 1)
    assert state.keys() == estimators[1].state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in estimators[1].state_dict().items())


def test_nvil_trains_replicas_and_each_keeps_its_own_estimator_state(tmp_path) -> None:
    out = tmp_path / "run"
    result = train(small_config(out, seeds="0,1", estimator="nvil", steps=4, eval_every=4))
    assert all(nll is not None for nll in result.best_valid_nll_by_seed.values())
    whole = load_checkpoint(out / "checkpoints" / "last.safetensors")
    for r, seed in enumerate((0, 1)):
        one = load_checkpoint(out / f"seed-{seed}" / "checkpoints" / "last.safetensors")
        for key, value in one.extra["estimator"].items():
            assert torch.equal(value, whole.extra["estimator"][key][r]), key


def test_replicas_at_their_own_temperatures_train_as_runs_at_those_temperatures(tmp_path) -> None:
    """--posterior-temperatures: replica r samples and scores at its own temperature (rows and configs say so),
    and one step from the same start moves it as its rows' objective at that temperature moves it."""
    out = tmp_path / "run"
    settings = {"steps": 2, "log_every": 1, "eval_every": 2}
    train(small_config(out, seeds="0-2", posterior_temperatures="0.3,1,2", prior_temperatures="0.5,1,2", **settings))
    for seed, (prior, posterior) in zip((0, 1, 2), ((0.5, 0.3), (1.0, 1.0), (2.0, 2.0)), strict=True):
        rows = [r for r in _rows(out / f"seed-{seed}" / "metrics.jsonl") if "loss" in r]
        assert {(r["prior_temperature"], r["posterior_temperature"]) for r in rows} == {(prior, posterior)}
        replica = load_config(out / f"seed-{seed}" / "config.toml")
        assert (replica.prior_temperature, replica.posterior_temperature) == (prior, posterior)
        assert replica.posterior_temperatures is None
    # the losses differ with the temperature: compare replica 1 against a run where every replica is at 1
    same = tmp_path / "same"
    train(small_config(same, seeds="0-2", prior_temperature=1.0, posterior_temperature=1.0, **settings))
    at_one = [r["loss"] for r in _rows(same / "seed-1" / "metrics.jsonl") if "loss" in r]
    own = [r["loss"] for r in _rows(out / "seed-1" / "metrics.jsonl") if "loss" in r]
    assert own == pytest.approx(at_one, rel=1e-5)  # replica 1 is at 1 in both runs, with the same noise
    other = [r["loss"] for r in _rows(same / "seed-0" / "metrics.jsonl") if "loss" in r]
    mine = [r["loss"] for r in _rows(out / "seed-0" / "metrics.jsonl") if "loss" in r]
    assert other[0] != pytest.approx(mine[0], rel=1e-3)  # replica 0 at (0.5, 0.3) is not at 1


def test_temperature_lists_need_one_value_per_seed(tmp_path) -> None:
    with pytest.raises(ValueError, match="2 values for the 3 seeds"):
        train(small_config(tmp_path / "run", seeds="0-2", posterior_temperatures="0.5,1"))
