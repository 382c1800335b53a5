"""Training SBNs with a discrete gradient estimator (``concretelab.train.discrete``, ``train --estimator``).

Unbiasedness: on tiny SBNs (4 latents in two layers, or 3 in one) and a tiny structured-prediction model
(``2V-2H-2H-3V``: p(3 lower pixels | 2 upper pixels) through 4 latents; the conditional prior is the
proposal, so the target is ∇ E_{p(h|u)}[log p(y | h)] or ∇ E[L_m]) the surrogate's gradient for every model
parameter, averaged over G independent groups of R replicated examples with fixed seeds, must match the exact
gradient of the discrete ELBO (or of E[L_m] for VIMCO) computed by enumerating all latent states in float64.
Each coordinate must lie within Z standard errors (the spread of the G = 40 group means), Z = 4.5: with
Student's t (39 degrees of freedom) and a Bonferroni bound over the 41 coordinates this rejects a correct
estimator with probability below 3e-3 per test (the seeds are fixed, so the outcome is reproducible), and a
control shows the same test rejects a wrong target. Then the CLI: every supported estimator trains on
embedded data, resume is bit-identical with NVIL's baseline state, bad combinations exit with status 2
naming the flag.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import pytest
import torch

from concretelab.cli import main
from concretelab.estimators import layered
from concretelab.models import build_model
from concretelab.objectives import layer_log_prob
from concretelab.train.discrete import (
    EstimatorObjective,
    build_estimator_objective,
    local_signals,
    sample_draw,
)
from concretelab.train.metrics import read_metrics

from ._helpers import straight_and_resumed

Z = 4.5


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny autograd calls on one intra-op thread (a loaded 2-core machine makes two spin); restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny(spec: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)  # restored by the fork below in callers that care; tests own their process state
    model = build_model(spec).double()
    with torch.no_grad():  # larger weights than Glorot's so every gradient coordinate is well away from 0
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape, dtype=p.dtype))
    return model


def _x() -> torch.Tensor:
    return torch.tensor([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1], [1, 1, 1, 0, 0]], dtype=torch.float64)


def _states(model) -> list[torch.Tensor]:
    """Every joint latent state, one (S, units) tensor per layer (binary layers only)."""
    units = list(model.latent_units)
    rows = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(units))), dtype=torch.float64)
    return list(rows.split(units, dim=1))


def _exact_log_weights(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log q, log w) of every state, each (S, batch), differentiable in every parameter."""
    h = [s.unsqueeze(1).expand(-1, x.shape[0], -1) for s in _states(model)]
    log_q = sum(
        layer_log_prob(2, model.proposal_logits(i, x, h[:i]), h[i]) for i in range(len(h))
    )
    return log_q, model.log_joint(x, h) - log_q


def _exact_gradient(model, x: torch.Tensor, m: int | None) -> torch.Tensor:
    """∇ mean_x ELBO(x) (m None) or ∇ mean_x E[L_m(x)] by enumeration, flattened over model parameters."""
    log_q, log_w = _exact_log_weights(model, x)
    if m is None:
        target = (log_q.exp() * log_w).sum(0)
    else:
        s = log_q.shape[0]
        index = torch.cartesian_prod(*[torch.arange(s)] * m)  # (S^m, m)
        lw = log_w[index]  # (S^m, m, batch)
        lq = log_q[index].sum(1)  # (S^m, batch)
        target = (lq.exp() * (torch.logsumexp(lw, dim=1) - math.log(m))).sum(0)
    grads = torch.autograd.grad(target.mean(), list(model.parameters()))
    return torch.cat([g.reshape(-1) for g in grads])


def _estimated_gradients(objective, model, x, m: int, *, groups: int = 40, repeats: int = 500) -> torch.Tensor:
    """(groups, P): each row the gradient of the surrogate's mean over ``repeats`` copies of every example."""
    xr = x.repeat(repeats, 1)
    gen = torch.Generator().manual_seed(1234)
    rows = []
    for _ in range(groups):
        bound = objective(model, xr, samples=m, generator=gen)
        grads = torch.autograd.grad(bound.mean(), list(model.parameters()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def _z_scores(rows: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    mean = rows.mean(0)
    se = rows.std(0) / math.sqrt(rows.shape[0])
    return (mean - exact).abs() / (se + 1e-12)


@pytest.mark.parametrize(
    ("name", "spec", "m"),
    [("vimco", "2H-2H-5V", 3), ("reinforce_loo", "2H-2H-5V", 3), ("nvil", "2H-2H-5V", 2),
     ("disarm", "3H-5V", 1), ("disarm", "2H-2H-5V", 1), ("disarm", "2H-2H-5V", 2),
     ("arms", "3H-5V", 2), ("arms", "2H-2H-5V", 3), ("arms", "2H-2H-5V", 5),
     ("vimco", "2V-2H-2H-3V", 3), ("nvil", "2V-2H-2H-3V", 1), ("nvil", "2V-2H-2H-3V", 2),
     ("reinforce_loo", "2V-2H-2H-3V", 3)],
)
def test_surrogate_gradient_is_unbiased_by_enumeration(name, spec, m) -> None:
    with torch.random.fork_rng(devices=[]):
        model = _tiny(spec, seed=3)
        objective = build_estimator_objective(name, model, seed=5)
    objective.eval()  # NVIL: moments frozen at mean 0, scale 1 (the normalised case is tested below)
    x = _x()
    exact = _exact_gradient(model, x, m if name == "vimco" else None)
    rows = _estimated_gradients(objective, model, x, m)
    z = _z_scores(rows, exact)
    assert exact.abs().min() > 1e-4  # every coordinate is tested against a non-trivial value
    assert z.max() < Z, (name, z.max().item(), z.argmax().item())


@pytest.mark.parametrize(("name", "spec", "m"), [("disarm", "3H-5V", 2), ("disarm", "2H-2H-5V", 1),
                                                  ("arms", "2H-2H-5V", 3)])
def test_antithetic_estimators_run_each_layers_encoder_once(name, spec, m, monkeypatch) -> None:
    """DisARM and ARMS need q's logits of a layer for their samples and for the layer's log q: one pass of the
    layer's encoder per step serves both (a second pass gave the same logits at the cost of a matmul)."""
    model = _tiny(spec, seed=3)
    objective = build_estimator_objective(name, model, seed=5)
    calls: list[int] = []
    proposal_logits = model.proposal_logits

    def counted(i, x, values):
        calls.append(i)
        return proposal_logits(i, x, values)

    monkeypatch.setattr(model, "proposal_logits", counted)
    objective(model, _x(), samples=m, generator=torch.Generator().manual_seed(0)).mean().backward()
    layers = len(model.latent_categories)
    # layer i's encoder: once for layer i's own samples, and once for each lower layer's branches, which draw it
    assert sorted(calls) == sorted(i for i in range(layers) for _ in range(i + 1))


def test_nvil_normalised_layerwise_signals_with_nonzero_baselines() -> None:
    """NVIL as trained: per-layer baselines c_ψ(x), c_ψ(h_0) (perturbed away from 0), running means and a
    per-layer variance normalisation, frozen in eval mode. The expected gradient is the exact ELBO gradient
    with layer l's proposal parameters divided by max(1, s_l); the unscaled target is rejected."""
    with torch.random.fork_rng(devices=[]):
        model = _tiny("2H-2H-5V", seed=7)
        objective = build_estimator_objective("nvil", model, seed=5)
        with torch.no_grad():
            for p in objective.baselines.parameters():
                p.add_(0.3 * torch.randn(p.shape, dtype=p.dtype))
    objective.moments.mean.copy_(torch.tensor([-4.0, -1.0]))
    objective.moments.var.copy_(torch.tensor([9.0, 0.25]))  # scales 3 and 1
    objective.moments.count.fill_(10)
    objective.eval()
    x = _x()
    exact = _exact_gradient(model, x, None)
    scale = torch.cat([
        torch.full((p.numel(),), 3.0 if n.startswith("encoder.0.") else 1.0, dtype=torch.float64)
        for n, p in model.named_parameters()
    ])
    rows = _estimated_gradients(objective, model, x, 1)
    assert _z_scores(rows, exact / scale).max() < Z
    assert _z_scores(rows, exact).max() > 3 * Z  # the test has power: the unnormalised target is rejected
    assert torch.equal(objective.moments.mean, torch.tensor([-4.0, -1.0], dtype=torch.float64))  # frozen


def test_draw_matches_the_discrete_model_protocol_and_local_signals() -> None:
    with torch.random.fork_rng(devices=[]):
        model = _tiny("2H-3H-5V", seed=1)
    x = _x()
    h, log_q = model.sample_posterior(x, 4, generator=torch.Generator().manual_seed(9))
    draw = sample_draw(model, x, 4, generator=torch.Generator().manual_seed(9))
    assert all(torch.equal(a, b) for a, b in zip(h, draw.h, strict=True))
    torch.testing.assert_close(draw.log_q.sum(0), log_q)
    torch.testing.assert_close(draw.log_weight, model.log_joint(x, h) - log_q)
    local = local_signals(draw)
    torch.testing.assert_close(local[0], draw.log_weight)
    # layer 1's signal: log p(h_0 | h_1) + log p(h_1) − log q(h_1 | h_0), no term of x or q(h_0 | x)
    torch.testing.assert_close(local[1], draw.log_p[1] + draw.log_p[2] - draw.log_q[1])


def test_structured_local_signals_and_control(monkeypatch) -> None:
    """Structured prediction: every layer's local signal is log w = log p(y | h); the SBN layout's signals
    (which would give layer 1 log p(h_0 | u), free of y) make the NVIL gradient biased, and the test sees it."""
    with torch.random.fork_rng(devices=[]):
        model = _tiny("2V-2H-2H-3V", seed=3)
        objective = build_estimator_objective("nvil", model, seed=5)
    objective.eval()
    x = _x()
    draw = sample_draw(model, x, 4, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(draw.log_weight, model.log_likelihood(x, draw.h))
    local = local_signals(draw, proposal_is_prior=True)
    torch.testing.assert_close(local, draw.log_weight.detach().expand_as(local))
    exact = _exact_gradient(model, x, None)
    rows = _estimated_gradients(objective, model, x, 1, groups=20, repeats=200)
    assert _z_scores(rows, exact).max() < Z
    # the SBN layout applied to the structured draw: a biased estimator, rejected
    monkeypatch.setattr(layered, "local_signals", lambda d, **_: local_signals(d))
    bad = _estimated_gradients(objective, model, x, 1, groups=20, repeats=200)
    assert _z_scores(bad, exact).max() > 2 * Z


def test_nvil_moments_advance_in_training_mode_only() -> None:
    model = build_model("4H-4H-16V")
    objective = build_estimator_objective("nvil", model, seed=0)
    x = (torch.rand(8, 16, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    objective(model, x, samples=1, generator=torch.Generator().manual_seed(1))
    first = objective.moments.mean.clone()
    assert objective.moments.count.item() == 1 and bool((first < 0).all())
    objective.eval()
    objective(model, x, samples=1, generator=torch.Generator().manual_seed(2))
    assert torch.equal(objective.moments.mean, first)


def test_every_training_estimator_is_the_layered_form_of_a_lab_estimator() -> None:
    """One estimator stack: the trainer's objectives are the lab estimators' ``layered`` classes."""
    from concretelab.estimators import ESTIMATORS
    from concretelab.estimators.one_layer import ONE_LAYER
    from concretelab.train.discrete import TRAINING_ESTIMATORS

    assert set(TRAINING_ESTIMATORS) == {"arms", "disarm", "nvil", "reinforce_loo", "vimco", *ONE_LAYER}
    for name in TRAINING_ESTIMATORS:
        objective = build_estimator_objective(name, build_model("4H-16V" if name in ONE_LAYER else "4H-4H-16V"))
        assert isinstance(objective, EstimatorObjective) and type(objective) is ESTIMATORS[name].layered


def test_nvil_loads_a_checkpoint_written_before_the_moments_module() -> None:
    """Checkpoints before issue 11 kept NVIL's moments as moment_mean/moment_var/moment_count."""
    objective = build_estimator_objective("nvil", build_model("4H-4H-16V"), seed=0)
    state = {k: v.clone() for k, v in objective.state_dict().items() if not k.startswith("moments.")}
    state |= {"moment_mean": torch.tensor([1.0, 2.0]), "moment_var": torch.tensor([4.0, 9.0]),
              "moment_count": torch.tensor(3)}
    objective.load_state_dict(state)
    assert objective.moments.mean.tolist() == [1.0, 2.0] and objective.moments.scale().tolist() == [2.0, 3.0]
    assert int(objective.moments.count) == 3


def test_objective_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="trains SigmoidBeliefNet or StructuredPredictionSBN models"):
        build_estimator_objective("vimco", build_model("categorical-vae"))
    with pytest.raises(ValueError, match="'disarm' trains SigmoidBeliefNet models"):
        build_estimator_objective("disarm", build_model("4V-2H-4V"))
    with pytest.raises(ValueError, match="needs a binary SBN"):
        build_estimator_objective("disarm", build_model("4H-16V", categories=4))
    with pytest.raises(ValueError, match="not supported for training"):
        build_estimator_objective("concrete", build_model("4H-16V"))
    with pytest.raises(ValueError, match="defined for one layer of independent variables; the model has 2"):
        build_estimator_objective("rebar", build_model("4H-4H-16V"))
    model = build_model("4H-16V")
    with pytest.raises(ValueError, match="samples must be an integer >= 2"):
        build_estimator_objective("vimco", model)(model, torch.zeros(2, 16), samples=1)
    with pytest.raises(ValueError, match="not supported for training"):
        build_estimator_objective("no-such-estimator", model)


# --- the trainer and the command line --------------------------------------------------------------------

FAST = ["--batch-size", "16", "--lr", "3e-3", "--device", "cpu", "--log-every", "2", "--eval-every", "0",
        "--no-progress", "--threads", "1"]


@pytest.mark.parametrize(
    ("estimator", "model", "samples"),
    [("vimco", "8H-784V", 3), ("nvil", "8H-784V", 1), ("nvil", "4H-4H-784V", 2),
     ("reinforce_loo", "4H-4H-784V", 2), ("disarm", "8H-784V", 1), ("disarm", "4H-4H-784V", 1),
     ("arms", "4H-4H-784V", 3),
     ("vimco", "392V-4H-4H-392V", 3), ("nvil", "392V-4H-4H-392V", 1)],
)
def test_every_estimator_trains_from_the_command_line(tmp_path, estimator, model, samples) -> None:
    out = tmp_path / "run"
    code = main(["train", *FAST, "--model", model, "--estimator", estimator, "--samples", str(samples),
                 "--steps", "6", "--out", str(out)])
    assert code == 0
    losses = [r["loss"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 3 and all(math.isfinite(v) and v > 0 for v in losses)  # −bound in nats


def test_vimco_training_lowers_the_loss(tmp_path) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST, "--model", "8H-784V", "--estimator", "vimco", "--samples", "4",
                 "--objective", "discrete", "--lr", "1e-2", "--log-every", "10", "--steps", "60",
                 "--out", str(out)]) == 0
    losses = [r["loss"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert losses[-1] < losses[0] - 5, losses


def test_resume_with_nvil_state_is_bit_identical(tmp_path) -> None:
    a, b = straight_and_resumed(tmp_path, 10, model="4H-4H-784V", estimator="nvil", samples=2)
    assert a.keys() == b.keys()
    assert any(k.startswith("extra/estimator/baselines") for k in a)
    assert any(k.startswith("extra/estimator/moments.mean") for k in a)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert int(a["extra/estimator/moments.count"]) == 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--estimator", "vimco", "--samples", "1"], "--estimator vimco needs --samples >= 2"),
        (["--estimator", "reinforce_loo"], "--estimator reinforce_loo needs --samples >= 2"),
        (["--estimator", "concrete"], "--estimator 'concrete' is not supported for training"),
        (["--estimator", "arms", "--samples", "1"], "--estimator arms needs --samples >= 2"),
        (["--estimator", "arms", "--samples", "2", "--model", "392V-8H-392V"], "structured-prediction"),
        (["--estimator", "nvil", "--model", "categorical-vae"], "sigmoid belief nets only"),
        (["--estimator", "disarm", "--model", "392V-8H-392V"], "structured-prediction"),
        (["--estimator", "disarm", "--model", "8H-8H-784V", "--categories", "4"],
         "--estimator disarm needs a binary SBN"),
        (["--estimator", "nvil", "--objective", "relaxed-logratio"], "--objective relaxed-logratio cannot"),
        (["--objective", "discrete"], "--objective discrete needs --estimator"),
    ],
)
def test_bad_estimator_combinations_exit_2(tmp_path, capsys, argv, message) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST, "--model", "8H-784V", "--steps", "1", "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()

