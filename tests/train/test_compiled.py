"""``train --compile``: the loss compiled as one graph draws the eager step's noise, follows the eager trajectory to
float32 rounding, resumes bit for bit, leaves the process's random state alone and refuses what it cannot
compile."""

from __future__ import annotations

import json

import pytest
import torch

from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES
from concretelab.train import train
from concretelab.train.compiled import CompiledLoss

from ._helpers import model_tensors, small_config, straight_and_resumed


def _losses(run) -> list[float]:
    return [row["loss"] for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in row]


def test_the_compiled_loss_draws_the_noise_of_a_generator_with_the_same_seed() -> None:
    """The graph draws with ATen's generator (Inductor's fallback_random): the uniforms of torch.Generator seeded
    alike, bit for bit; and the process's own random state is as it was."""
    def noisy(x, prior_t, posterior_t):
        return torch.rand(x.shape, dtype=x.dtype) * prior_t + posterior_t * x

    compiled = CompiledLoss(noisy, torch.device("cpu"))
    x = torch.zeros(5, 7)
    before = torch.get_rng_state()
    for seed in (3, 12345):
        expected = torch.rand(5, 7, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(compiled(x, 1.0, 0.5, seed=seed), expected)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_relaxed_objective_compiles_whole_and_draws_the_eager_noise(name) -> None:
    """No graph break (the objectives' input checks skip while traced; the noise needs no generator), and the
    compiled bound equals the eager bound computed with a generator seeded alike, to float32 rounding."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    torch.manual_seed(0)
    model = build_model("4H~784V")
    x = (torch.rand(6, 784) < 0.3).float()

    def loss(images, prior_t, posterior_t, generator=None):
        return -OBJECTIVES[name](model, images, samples=3, prior_temperature=prior_t,
                                 posterior_temperature=posterior_t, generator=generator)

    compiled = CompiledLoss(loss, torch.device("cpu"))(x, 0.5, 2 / 3, seed=7)
    eager = loss(x, 0.5, 2 / 3, generator=torch.Generator().manual_seed(7))
    assert not torch._dynamo.utils.counters["graph_break"], dict(torch._dynamo.utils.counters["graph_break"])
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-4)


def test_past_dynamos_recompile_limit_the_loss_runs_eagerly_with_the_same_noise() -> None:
    """A process compiling more losses than Dynamo keeps graphs for (8 per function) gets the eager loss for the
    rest, not an error, and the same noise."""
    torch._dynamo.reset()

    def loss_scaled_by(scale: float):
        return lambda x, prior_t, posterior_t: torch.rand(x.shape, dtype=x.dtype) * scale + 0 * prior_t

    x = torch.zeros(3, 4)
    for scale in range(1, 12):
        value = CompiledLoss(loss_scaled_by(float(scale)), torch.device("cpu"))(x, 1.0, 1.0, seed=scale)
        expected = torch.rand(3, 4, generator=torch.Generator().manual_seed(scale)) * scale
        torch.testing.assert_close(value, expected, rtol=1e-6, atol=0)


def test_a_compiled_run_follows_the_eager_run(tmp_path) -> None:
    """Same noise, same data order: the losses and parameters of 12 steps agree to float32 rounding."""
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    train(small_config(eager, steps=12))
    train(small_config(compiled, steps=12, compile=True))
    assert _losses(compiled) == pytest.approx(_losses(eager), rel=1e-5)
    a, b = model_tensors(eager), model_tensors(compiled)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)


def test_compiled_replicas_at_their_own_temperatures_follow_the_eager_replicas(tmp_path) -> None:
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    settings = {"steps": 8, "seeds": "0-1", "posterior_temperatures": "0.5,1"}
    train(small_config(eager, **settings))
    train(small_config(compiled, compile=True, **settings))
    for seed in (0, 1):
        assert _losses(compiled / f"seed-{seed}") == pytest.approx(_losses(eager / f"seed-{seed}"), rel=1e-5)


def test_a_compiled_run_resumes_bit_for_bit(tmp_path) -> None:
    straight, resumed = straight_and_resumed(tmp_path, 8, compile=True)
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


@pytest.mark.parametrize(("settings", "match"), [
    ({"estimator": "nvil", "samples": 2}, "--compile compiles the relaxed objectives' loss; --estimator nvil"),
    ({"cuda_graph": True, "device": "cpu"}, "--compile cannot be combined with --cuda-graph"),
])
def test_what_cannot_be_compiled_is_refused_naming_the_flag(tmp_path, settings, match) -> None:
    with pytest.raises(ValueError, match=match):
        train(small_config(tmp_path / "run", compile=True, **settings))


def test_compile_may_be_switched_on_when_resuming(tmp_path) -> None:
    """An eager run resumed with --compile continues on the same noise: its later rows are the eager run's to
    rounding."""
    eager, switched = tmp_path / "eager", tmp_path / "switched"
    train(small_config(eager, steps=8))
    train(small_config(switched, steps=4))
    assert train(small_config(switched, steps=8, compile=True), resume=True).step == 8
    assert _losses(switched) == pytest.approx(_losses(eager), rel=1e-5)
