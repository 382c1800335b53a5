"""The training loop: files of a run, bit-identical resume, NaN stop, validation and the best checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from concretelab import objectives
from concretelab.data import load_dataset
from concretelab.models import build_model
from concretelab.train import NonFiniteLossError, load_checkpoint, loop, train
from concretelab.train.metrics import read_metrics
from concretelab.train.seeding import derive_seed

from ._helpers import model_tensors, resume, small_config


def test_run_folder_and_metrics(tmp_path) -> None:
    out = tmp_path / "run"
    result = train(small_config(out, eval_every=4))
    assert result.step == 8 and result.stopped_by_signal is None
    for name in ("config.toml", "metrics.jsonl", "metrics.csv", "checkpoints/last.safetensors",
                 "checkpoints/best.safetensors"):
        assert (out / name).is_file(), name
    rows = read_metrics(out / "metrics.jsonl")
    train_rows = [r for r in rows if "loss" in r]
    valid_rows = [r for r in rows if "valid_nll" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6, 8]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in train_rows)  # -bound in nats, positive
    assert {"prior_temperature", "posterior_temperature", "lr", "time"} <= set(train_rows[0])
    assert [r["step"] for r in valid_rows] == [4, 8] and valid_rows[0]["valid_k"] == 4
    assert valid_rows[0]["valid_images"] == 20
    best = load_checkpoint(out / "checkpoints" / "best.safetensors")
    assert -best.best_valid == pytest.approx(min(r["valid_nll"] for r in valid_rows))
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("step,")


def test_resume_is_bit_identical(tmp_path) -> None:
    straight = tmp_path / "straight"
    train(small_config(straight, steps=10, eval_every=3))
    half = tmp_path / "half"
    train(small_config(half, steps=5, eval_every=3))  # stops (and checkpoints) at step 5
    resume(small_config(half, steps=10, eval_every=3))
    a, b = model_tensors(straight), model_tensors(half)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    ca = load_checkpoint(straight / "checkpoints/last.safetensors")
    cb = load_checkpoint(half / "checkpoints/last.safetensors")
    for index, state in ca.optimizer_state["state"].items():
        for key, value in state.items():
            assert torch.equal(value, cb.optimizer_state["state"][index][key])
    assert ca.data_state == cb.data_state
    # metrics rows of the resumed run continue where the first part stopped, with no duplicates
    steps = [r["step"] for r in read_metrics(half / "metrics.jsonl") if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 10


def test_resume_continues_from_the_checkpoints_tensors(tmp_path) -> None:
    # the control of the test above: change one weight in the checkpoint, and the resumed run ends elsewhere (a
    # resume that reinitialised the model from its seed would reproduce the straight run whatever the file held)
    from concretelab.train import save_checkpoint

    straight, edited = tmp_path / "straight", tmp_path / "edited"
    train(small_config(straight, steps=10))
    train(small_config(edited, steps=5))
    path = edited / "checkpoints" / "last.safetensors"
    checkpoint = load_checkpoint(path)
    state = dict(checkpoint.model_state)
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name].clone()
    state[name].view(-1)[0] += 0.5
    save_checkpoint(path, dataclasses.replace(checkpoint, model_state=state))
    resume(small_config(edited, steps=10))
    a, b = model_tensors(straight), model_tensors(edited)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_changed_settings(tmp_path) -> None:
    out = tmp_path / "run"
    train(small_config(out, steps=2))
    with pytest.raises(ValueError, match=r"cannot resume with --lr 0\.01"):
        train(small_config(out, steps=4, lr=1e-2), resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        train(small_config(out, steps=4))


def test_eval_images_is_a_fixed_random_subset_and_old_runs_keep_their_first_images(tmp_path, monkeypatch) -> None:
    """--eval-images N validates on the fixed random subset of evaluate --num-images (the splits are not in random
    order); a run that validated on the first N before that keeps them when resumed."""
    from concretelab.data import fixed_subset, load_dataset
    from concretelab.train import loop
    from concretelab.train.checkpoint import save_checkpoint

    seen: list[torch.Tensor] = []
    real_bound = loop.resumable_bound_per_image  # validation's bound: the evaluation's, without a saved state
    monkeypatch.setattr(loop, "resumable_bound_per_image", lambda model, images, k, **kw: seen.append(images) or
                        real_bound(model, images, k, **kw))
    valid = load_dataset("embedded").valid
    subset = fixed_subset(valid.shape[0], 20, 0)
    assert subset is not None and not torch.equal(subset, torch.arange(20))

    out = tmp_path / "run"
    train(small_config(out, steps=4, eval_every=4))  # small_config validates on 20 images
    assert torch.equal(seen[-1], valid[subset])
    last = out / "checkpoints" / "last.safetensors"
    assert load_checkpoint(last).extra["valid_subset"] == "random"

    # a checkpoint written before the rule was recorded, after a validation: the run goes on with the first 20
    old = load_checkpoint(last)
    old.extra.pop("valid_subset")
    save_checkpoint(last, old)
    train(small_config(out, steps=8, eval_every=4), resume=True)
    assert torch.equal(seen[-1], valid[:20])
    assert load_checkpoint(last).extra["valid_subset"] == "first"
    with pytest.raises(ValueError, match="valid_subset must be one of random, first"):
        loop.validation_images(valid, 20, "last")


def test_a_resumed_run_goes_on_at_the_temperatures_it_trained_at(tmp_path) -> None:
    """Unset temperatures resolve to defaults that may change between versions (a structured model's prior went
    from 1/2 to 2/3): resuming checks the temperatures the run trained at, from the checkpoint's record or, for
    older checkpoints, the last logged training row, and accepts them given explicitly."""
    from concretelab.train.checkpoint import save_checkpoint

    structured = {"model": "392V-8H-8H-392V"}
    out = tmp_path / "run"
    train(small_config(out, steps=4, **structured))  # unset: (2/3, 2/3) today
    last = out / "checkpoints" / "last.safetensors"
    assert load_checkpoint(last).extra["resolved_temperatures"] == pytest.approx([2 / 3, 2 / 3])
    train(small_config(out, steps=6, **structured), resume=True)  # same defaults: goes on

    # as if it had trained under the old default (1/2, 2/3), recorded by the checkpoint
    old = load_checkpoint(last)
    old.extra["resolved_temperatures"] = [0.5, 2 / 3]
    save_checkpoint(last, old)
    with pytest.raises(ValueError, match=r"cannot resume with --prior-temperature 0\.6666666667: this run trained at "
                                         r"0\.5 .*pass --prior-temperature 0\.5 --posterior-temperature 0\.6666666667"):
        train(small_config(out, steps=8, **structured), resume=True)
    # the temperatures given explicitly where the run left them unset are not a change
    with pytest.warns(UserWarning, match="conditional prior as the proposal"):  # two temperatures, as it trained
        train(small_config(out, steps=8, **structured, prior_temperature=0.5, posterior_temperature=2 / 3), resume=True)
    assert read_metrics(out / "metrics.jsonl")[-1]["prior_temperature"] == pytest.approx(0.5)

    # a checkpoint older than the record: the last logged training row says what the run trained at
    legacy = tmp_path / "legacy"
    train(small_config(legacy, steps=4, **structured))
    old = load_checkpoint(legacy / "checkpoints" / "last.safetensors")
    del old.extra["resolved_temperatures"]
    save_checkpoint(legacy / "checkpoints" / "last.safetensors", old)
    rows = [json.loads(line) for line in (legacy / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        if "prior_temperature" in row:
            row["prior_temperature"] = 0.5
    (legacy / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ValueError, match=r"this run trained at 0\.5"):
        train(small_config(legacy, steps=6, **structured), resume=True)
    # an estimator on the discrete objective uses no temperature: nothing to compare
    vimco = tmp_path / "vimco"
    train(small_config(vimco, steps=4, **structured, estimator="vimco", samples=2))
    old = load_checkpoint(vimco / "checkpoints" / "last.safetensors")
    old.extra["resolved_temperatures"] = [0.5, 2 / 3]
    save_checkpoint(vimco / "checkpoints" / "last.safetensors", old)
    train(small_config(vimco, steps=6, **structured, estimator="vimco", samples=2), resume=True)

    # and an explicit temperature still cannot change on resume
    sbn = tmp_path / "sbn"
    train(small_config(sbn, steps=2, prior_temperature=0.5))
    with pytest.raises(ValueError, match=r"cannot resume with --prior-temperature 0\.7: this run trained at 0\.5"):
        train(small_config(sbn, steps=4, prior_temperature=0.7), resume=True)


def test_validation_k_and_images_are_fixed_once_a_best_checkpoint_exists(tmp_path) -> None:
    """A best checkpoint chosen by L_4 would be replaced by the first L_40 (several nats higher on the same model)
    whatever the model did: after the first validation, --eval-k and --eval-images cannot change on resume."""
    out = tmp_path / "run"
    train(small_config(out, steps=4, eval_every=4))  # validated at step 4: best.safetensors chosen by L_4
    with pytest.raises(ValueError, match=r"cannot resume with --eval-k 40: the best checkpoint so far was chosen"):
        train(small_config(out, steps=8, eval_every=4, eval_k=40), resume=True)
    with pytest.raises(ValueError, match=r"cannot resume with --eval-images 30"):
        train(small_config(out, steps=8, eval_every=4, eval_images=30), resume=True)
    train(small_config(out, steps=8, eval_every=4, eval_batch_size=7), resume=True)  # batching may change
    assert load_checkpoint(out / "checkpoints" / "last.safetensors").step == 8
    # before the first validation they may still change: test_interruptions.py resumes a run whose first
    # validation (L_20000) was abandoned with --eval-k 4


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch) -> None:
    real = objectives.OBJECTIVES["relaxed"]
    calls = {"n": 0}

    def nan_at_step_7(model, x, **kwargs):
        calls["n"] += 1
        bound = real(model, x, **kwargs)
        return bound * float("nan") if calls["n"] == 7 else bound

    monkeypatch.setitem(objectives.OBJECTIVES, "nan-at-7", nan_at_step_7)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match="at step 7"):
        train(small_config(out, objective="nan-at-7", steps=12, log_every=3, checkpoint_every=4))
    last = load_checkpoint(out / "checkpoints" / "last.safetensors")
    assert last.step == 4  # the step-8 checkpoint was never written
    assert all(torch.isfinite(t).all() for t in last.model_state.values())


def test_estimator_is_reserved(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"estimator 'vimco'.*not supported"):
        train(small_config(tmp_path / "run", estimator="vimco"))
    assert not (tmp_path / "run").exists()


def _adam_inputs(monkeypatch) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Make the trainer's optimizer record, at every step, (parameter, gradient) of each parameter just before
    Adam updates it; returns the list the records go to (one list of pairs per step)."""
    records: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
    build = loop.build_optimizer

    def recording_build(params, lr, device):
        optimizer = build(params, lr, device)

        def record(opt, args, kwargs) -> None:
            records.append([(q.detach().clone(), q.grad.detach().clone())
                            for group in opt.param_groups for q in group["params"]])

        optimizer.register_step_pre_hook(record)
        return optimizer

    monkeypatch.setattr(loop, "build_optimizer", recording_build)
    return records


def test_grad_accum_gradient_equals_the_full_batch_gradient_of_its_shards(tmp_path, monkeypatch) -> None:
    """With --grad-accum 2 the gradient Adam receives at step t is the gradient of −(1/16) Σ_i bound_i over the
    whole batch of 16, where images 8s..8s+7 (shard s) are bounded with noise from derive_seed(seed, t, s): each
    shard sees exactly its own rows and its own noise stream, and the accumulated per-shard losses, each divided
    by grad_accum, add up to the full-batch mean. (Two data-parallel ranks compute the same; see test_distributed.)

    The reference is computed independently of the loop: the model rebuilt from the seed, the batches drawn from a
    fresh iterator, the objective called shard by shard and differentiated once. Two steps, so the step enters the
    seed too. Tolerance: the loop adds two float32 half-batch gradients where the reference differentiates the
    16-image mean once, so only the order of float32 sums may differ (on one CPU thread they agree bit for bit);
    rtol = 1e-5, about 100 float32 ulps (atol 1e-8 for gradients near zero, which reach 0.35 here), admits that
    and nothing else: a wrong shard, noise stream or scale moves the gradient by O(1) relative."""
    records = _adam_inputs(monkeypatch)
    config = small_config(tmp_path / "run", steps=2, grad_accum=2, checkpoint_every=0)
    train(config)
    assert len(records) == config.steps

    dataset = load_dataset(config.data)
    batches = dataset.train_batches(config.batch_size, seed=config.seed, drop_last=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config.model, categories=config.categories, train_mean=dataset.train_mean)
    params = list(model.parameters())
    prior_t, posterior_t = config.temperatures
    shard = config.batch_size // config.grad_accum
    for step, record in enumerate(records):
        assert len(record) == len(params)
        if step == 0:  # the loop starts from the same initialisation as the rebuilt model
            for q, (before, _) in zip(params, record, strict=True):
                assert torch.equal(q.detach(), before)
        with torch.no_grad():  # the parameters Adam had when it stepped
            for q, (before, _) in zip(params, record, strict=True):
                q.copy_(before)
        x = next(batches)
        bounds = torch.cat([
            objectives.relaxed(model, x[s * shard : (s + 1) * shard], samples=config.samples,
                               prior_temperature=prior_t, posterior_temperature=posterior_t,
                               generator=torch.Generator().manual_seed(derive_seed(config.seed, step, s)))
            for s in range(config.grad_accum)
        ])
        assert bounds.shape == (config.batch_size,)
        expected = torch.autograd.grad(-bounds.mean(), params)
        for i, (g, (_, got)) in enumerate(zip(expected, record, strict=True)):
            torch.testing.assert_close(got, g, rtol=1e-5, atol=1e-8, msg=lambda m, i=i, step=step: f"step {step}, "
                                       f"parameter {i}: {m}")


def test_schedules_and_learnable_temperatures(tmp_path) -> None:
    out = tmp_path / "sched"
    train(small_config(out, posterior_schedule="linear:1:1/2:4", steps=6, log_every=2))
    temps = [r["posterior_temperature"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert temps == pytest.approx([0.75, 0.5, 0.5])  # the temperature at the step after each row
    out = tmp_path / "learn"
    train(small_config(out, learnable_temperature=True, steps=4))
    extra = load_checkpoint(out / "checkpoints" / "last.safetensors").extra["temperatures"]
    assert set(extra) == {"prior.theta", "posterior.theta"}
    rows = [r for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert rows[-1]["posterior_temperature"] != pytest.approx(2 / 3, abs=1e-9)  # it moved


def test_config_toml_is_resolved_config(tmp_path) -> None:
    out = tmp_path / "run"
    config = small_config(out, steps=2)
    train(config)
    from concretelab.train import load_config

    assert load_config(out / "config.toml") == config
    assert json.loads(json.dumps(dataclasses.asdict(config)))  # JSON-able


@pytest.mark.parametrize(
    "overrides",
    [
        {"model": "8H~784V", "categories": 4},
        {"objective": "relaxed-logratio"},
        {"objective": "relaxed-analytic-kl", "samples": 3},
        {"model": "392V-8H-8H-392V"},
        {"model": "categorical-vae"},
    ],
    ids=["4-ary", "logratio", "analytic-kl-m3", "structured", "categorical-vae"],
)
def test_models_and_objectives_train(tmp_path, overrides) -> None:
    from concretelab.train.evaluate import evaluate_run

    out = tmp_path / "run"
    result = train(small_config(out, steps=4, eval_every=4, **overrides))
    assert math.isfinite(result.last_loss) and math.isfinite(result.best_valid_nll)
    assert evaluate_run(out, k=2, num_images=4, progress=False)["nll"] > 0


def test_structured_prediction_relaxes_its_prior_at_one_temperature(tmp_path) -> None:
    """The conditional prior of a structured model is its proposal: by default both temperatures are the
    posterior's (2/3 for binary units), and two different ones on the relaxed bound draw a warning."""
    import warnings

    from concretelab.train import load_config

    structured = {"model": "392V-8H-8H-392V", "steps": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default temperatures train without a warning
        train(small_config(tmp_path / "default", **structured))
    resolved = load_config(tmp_path / "default" / "config.toml")
    assert resolved.temperatures == pytest.approx((2 / 3, 2 / 3))
    assert small_config(tmp_path / "sbn").temperatures == pytest.approx((1 / 2, 2 / 3))  # SBNs keep the pair
    two = {"prior_temperature": 0.5, "posterior_temperature": 2 / 3}
    with pytest.warns(UserWarning, match=r"--prior-temperature 0\.5 and --posterior-temperature 0\.666667"):
        train(small_config(tmp_path / "two", **structured, **two))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not for an SBN, nor for an estimator on the discrete objective
        train(small_config(tmp_path / "sbn-two", steps=2, **two))
        train(small_config(tmp_path / "vimco", **structured, **two, estimator="vimco", samples=2))
        # a schedule replaces its constant: equal schedules are one temperature, whatever the unused constants
        same = {"prior_schedule": "linear:1:1/2:4", "posterior_schedule": "linear:1:1/2:4"}
        train(small_config(tmp_path / "same-schedule", **structured, **two, **same))
    with pytest.warns(UserWarning, match=r"--prior-schedule linear:1:1/2:4 and --posterior-temperature 0\.666667"):
        train(small_config(tmp_path / "mixed", **structured, **two, prior_schedule="linear:1:1/2:4"))
    with pytest.warns(UserWarning, match=r"--learnable-temperature \(from 0\.666667 and 0\.666667"):
        train(small_config(tmp_path / "learned", **structured, learnable_temperature=True))


def test_checkpoints_record_where_each_stretch_of_training_ran(tmp_path) -> None:
    import dataclasses as dc

    from concretelab.train.checkpoint import save_checkpoint
    from concretelab.train.loop import describe_device

    here = describe_device(torch.device("cpu"))
    out = tmp_path / "run"
    train(small_config(out, steps=4))
    last = out / "checkpoints" / "last.safetensors"
    assert load_checkpoint(last).extra["devices"] == [[0, here]]
    train(small_config(out, steps=6), resume=True)  # the same device: still one stretch
    assert load_checkpoint(last).extra["devices"] == [[0, here]]
    moved = load_checkpoint(last)  # as if steps 0..6 had run on another machine
    save_checkpoint(last, dc.replace(moved, extra={**moved.extra, "devices": [[0, "elsewhere"]]}))
    train(small_config(out, steps=8), resume=True)
    assert load_checkpoint(last).extra["devices"] == [[0, "elsewhere"], [6, here]]


def test_validation_is_the_evaluation_of_the_checkpoint_with_the_same_rules(tmp_path) -> None:
    """Issue 30, item 8: validation, evaluate and reproduce compute -L_k by one evaluation with one subset rule and
    one seeding rule. The validation row of a run equals `evaluate` of the checkpoint saved at that step, on the
    same split and subset, with the validation's seed: the same number to rounding, not merely close."""
    from concretelab.seeding import derive_seed
    from concretelab.train.evaluate import evaluate_run
    from concretelab.train.metrics import read_metrics

    out = tmp_path / "run"
    config = small_config(out, steps=8, eval_every=8, checkpoint_every=8, eval_batch_size=7)
    train(config)
    (row,) = [r for r in read_metrics(out / "metrics.jsonl") if "valid_nll" in r]
    evaluated = evaluate_run(out, k=config.eval_k, split="valid", checkpoint="last", num_images=config.eval_images,
                             seed=derive_seed(config.seed, "validation"), batch_size=7, progress=False)
    assert evaluated["checkpoint_step"] == row["step"] == 8
    assert evaluated["nll"] == pytest.approx(row["valid_nll"], rel=0, abs=1e-9)
