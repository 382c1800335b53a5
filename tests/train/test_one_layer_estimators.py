"""Training a one-layer model with the lab's single-layer estimators (``concretelab.estimators.one_layer``).

Unbiased estimators: the gradient of every model parameter must match the exact gradient of the discrete ELBO by
enumeration, with the z-test of ``test_discrete_estimators`` (Z = 4.5 over 40 group means; its control shows that
the test rejects a wrong target). Biased pathwise estimators have no exact target for the encoder: their decoder
gradient (taken at the exact sample) must still match the exact one, and their encoder gradient must be the lab
estimator's per-example estimate at the same noise, chained through the encoder. Then resume, the command line and
the refusals.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from safetensors.torch import load_file

from concretelab.cli import main
from concretelab.estimators import ESTIMATORS
from concretelab.objectives import layer_log_prob
from concretelab.train import train
from concretelab.train.discrete import TRAINING_ESTIMATORS, build_estimator_objective
from concretelab.train.metrics import read_metrics

from ._helpers import small_config, straight_and_resumed
from .test_discrete_estimators import FAST, Z, _estimated_gradients, _exact_gradient, _tiny, _x, _z_scores

UNBIASED = [("arm", 1), ("double_cv", 2), ("double_cv", 3), ("rodeo", 2), ("rebar", 1), ("relax", 1),
            ("reinforce", 1), ("indecater", 1)]
PATHWISE = ["straight_through", "st_gumbel", "gumbel_rao", "reinmax"]


@pytest.mark.parametrize(("name", "m"), UNBIASED)
def test_one_layer_gradient_is_unbiased_by_enumeration(name, m) -> None:
    with torch.random.fork_rng(devices=[]):
        model = _tiny("3H-5V", seed=3)
        objective = build_estimator_objective(name, model, seed=5)
    x = _x()
    exact = _exact_gradient(model, x, None)
    rows = _estimated_gradients(objective, model, x, m)
    z = _z_scores(rows, exact)
    assert exact.abs().min() > 1e-4
    assert z.max() < Z, (name, z.max().item(), z.argmax().item())


@pytest.mark.parametrize("name", PATHWISE)
def test_pathwise_one_layer_gradient_is_the_lab_estimate_chained_through_the_encoder(name) -> None:
    with torch.random.fork_rng(devices=[]):
        model = _tiny("3H-5V", seed=3)
    objective = build_estimator_objective(name, model, seed=5)
    x = _x().repeat(4, 1)
    encoder = [p for n, p in model.named_parameters() if n.startswith("encoder")]
    bound = objective(model, x, samples=2, generator=torch.Generator().manual_seed(9))
    trained = torch.autograd.grad(bound.mean(), encoder)

    logits = model.proposal_logits(0, x, [])
    fixed = logits.detach()

    def f(points):  # the per-example ELBO of the module docstring, written out here
        return model.log_joint(x, [points]) - layer_log_prob(2, fixed, points)

    lab = ESTIMATORS[name]("bernoulli").estimate(f, fixed, 2, generator=torch.Generator().manual_seed(9))
    expected = torch.autograd.grad((lab * logits).sum() / x.shape[0], encoder)
    for a, b in zip(trained, expected, strict=True):
        torch.testing.assert_close(a, b)

    # the generative gradient is taken at exact samples, so it is unbiased
    generative = torch.cat([torch.full((p.numel(),), not n.startswith("encoder")) for n, p in model.named_parameters()])
    exact = _exact_gradient(model, _x(), None)[generative]
    rows = _estimated_gradients(objective, model, _x(), 2)[:, generative]
    assert _z_scores(rows, exact).max() < Z


@pytest.mark.parametrize("name", ["rebar", "relax", "double_cv", "rodeo", "reinforce"])
def test_resume_with_adapted_estimator_state_is_bit_identical(tmp_path, name) -> None:
    a, b = straight_and_resumed(tmp_path, 8, estimator=name, samples=TRAINING_ESTIMATORS[name])
    assert a.keys() == b.keys()
    assert any(k.startswith("extra/estimator/_extra_state") for k in a) or name == "reinforce"
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_adapted_state_moves_and_is_stored(tmp_path) -> None:
    """REBAR's η and λ adapt during training, and the checkpoint holds their values and their Adam moments."""
    out = tmp_path / "run"
    train(small_config(out, steps=8, estimator="rebar", samples=1))
    tensors = load_file(str(out / "checkpoints" / "last.safetensors"))
    eta = tensors["extra/estimator/_extra_state/eta"]
    assert float(eta) != 1.0 and math.isfinite(float(eta))
    assert any("optimizer" in k for k in tensors if k.startswith("extra/estimator/_extra_state"))


@pytest.mark.parametrize("name", ["rebar", "relax", "double_cv", "reinforce"])
def test_eval_mode_freezes_the_adapted_state(name) -> None:
    model = _tiny("3H-5V", seed=3)
    objective = build_estimator_objective(name, model, seed=5)
    samples = TRAINING_ESTIMATORS[name]
    objective(model, _x(), samples=samples, generator=torch.Generator().manual_seed(1))  # builds RELAX's network
    objective.eval()
    before = copy.deepcopy(objective.state_dict())
    for _ in range(3):
        objective(model, _x(), samples=samples, generator=torch.Generator().manual_seed(2))
    after = objective.state_dict()
    assert repr(after) == repr(before)
    objective.train()
    objective(model, _x(), samples=samples, generator=torch.Generator().manual_seed(2))
    assert repr(objective.state_dict()) != repr(before)  # and training mode adapts


ONE_LAYER_CLI = [("arm", "1"), ("double_cv", "2"), ("rodeo", "2"), ("rebar", "1"), ("relax", "1"),
                 ("straight_through", "1"), ("st_gumbel", "1"), ("gumbel_rao", "1"), ("reinmax", "2")]


@pytest.mark.parametrize(("estimator", "samples"), ONE_LAYER_CLI)
def test_one_layer_estimators_train_from_the_command_line(tmp_path, estimator, samples) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST, "--model", "8H-784V", "--estimator", estimator, "--samples", samples,
                 "--steps", "6", "--out", str(out)]) == 0
    losses = [r["loss"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 3 and all(math.isfinite(v) and v > 0 for v in losses)


@pytest.mark.parametrize("estimator", ["rebar", "indecater"])
def test_a_categorical_one_layer_model_trains(tmp_path, estimator) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST, "--model", "8H-784V", "--categories", "4", "--estimator", estimator, "--steps", "4",
                 "--out", str(out)]) == 0


def test_stateless_one_layer_estimators_train_as_replicas(tmp_path) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST, "--model", "8H-784V", "--estimator", "straight_through", "--seeds", "0-1",
                 "--steps", "4", "--out", str(out)]) == 0
    assert (out / "seed-1" / "checkpoints" / "last.safetensors").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--estimator", "rebar", "--model", "4H-4H-784V"], "rebar is defined for one layer of independent variables"),
        (["--estimator", "rebar", "--seeds", "0-1"], "train one seed per process"),
        (["--estimator", "concrete"], "trains the relaxed objective"),
        (["--estimator", "rodeo", "--samples", "1"], "--estimator rodeo needs --samples >= 2"),
        (["--estimator", "arm", "--model", "392V-8H-392V"], "structured-prediction"),
    ],
)
def test_one_layer_refusals_exit_2(tmp_path, capsys, argv, message) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST, "--model", "8H-784V", "--steps", "1", "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
