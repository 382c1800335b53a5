"""The CUDA path: samplers at the float32 extremes, the bound against exact enumeration, training, and a
checkpoint that moves between CUDA and the CPU. Skipped where no GPU is present (CI); run on a GPU machine with
``pytest tests/test_cuda.py``."""

from __future__ import annotations

import math

import pytest
import torch

from concretelab.cli import main
from concretelab.distributions import BinConcrete, Concrete
from concretelab.functional import sample_uniform_open
from concretelab.objectives import discrete_bound
from concretelab.train import load_checkpoint, train
from concretelab.train.metrics import read_metrics
from objectives._exact import exact_terms
from objectives.test_bound import _data, _tiny
from reproduce.test_reproduce_command import _argv, _result
from train._helpers import model_tensors, resume, small_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator(device=CUDA).manual_seed(seed)


def test_open_uniform_never_returns_0_or_1_in_float32() -> None:
    # CUDA's generator draws from (0, 1], the CPU's from [0, 1): both ends must be excluded
    u = sample_uniform_open((1 << 27,), generator=_gen(0), dtype=torch.float32, device=CUDA)
    assert float(u.min()) > 0.0 and float(u.max()) < 1.0


@pytest.mark.parametrize("temperature", [1e-4, 0.1, 2 / 3, 5.0])
def test_concrete_rounding_and_finiteness_at_extreme_logits(temperature: float) -> None:
    logits = torch.tensor([-30.0, 0.0, 1.0, 30.0, 29.0], device=CUDA)
    n = 400_000
    d = Concrete(temperature, logits=logits)
    x, log_p = d.sample_and_log_prob((n,), generator=_gen(1))
    assert bool(torch.isfinite(log_p).all()) and bool(torch.isfinite(x).all())
    assert bool(((x >= 0) & (x <= 1)).all())
    torch.testing.assert_close(x.sum(-1).double(), torch.ones(n, dtype=torch.float64, device=CUDA), atol=1e-5, rtol=0)
    # rounding: P(argmax X = k) = alpha_k / sum alpha, at every temperature; 5 sd of a binomial frequency
    freq = torch.bincount(x.argmax(-1), minlength=5).double().cpu() / n
    p = torch.softmax(logits.double().cpu(), 0)
    assert bool(((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt() + 1e-12).all()), (freq, p)


def test_bin_concrete_cdf_on_cuda() -> None:
    # P(X <= x) = sigmoid(lambda * logit(x) - log alpha); Kolmogorov-Smirnov bound 1.63 / sqrt(n) (alpha = 0.01)
    temperature, logit_alpha, n = 0.5, 1.3, 200_000
    x = BinConcrete(temperature, logits=torch.tensor(logit_alpha, device=CUDA)).sample((n,), generator=_gen(2))
    grid = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    empirical = (x.double().cpu()[:, None] <= grid).double().mean(0)
    exact = torch.sigmoid(temperature * torch.logit(grid) - logit_alpha)
    assert float((empirical - exact).abs().max()) < 1.63 / math.sqrt(n)


@pytest.mark.parametrize(("spec", "categories", "dim"), [("2H-3H-5V", 2, 5), ("4H~4H-6V", 4, 6)])
def test_bound_on_cuda_approaches_the_exact_marginal(spec: str, categories: int, dim: int) -> None:
    model = _tiny(spec, categories)
    x = _data(3, dim)
    log_joint, log_q = exact_terms(model, x)
    log_p = torch.logsumexp(log_joint, 0)
    rho = torch.logsumexp(log_q + 2 * (log_joint - log_q), 0).sub(2 * log_p).exp() - 1
    k = 20_000
    lk = discrete_bound(model.to(CUDA), x.to(CUDA), k, generator=_gen(3)).cpu()
    tol = 5 * (rho / k).sqrt() + rho / k + 1e-9  # delta method, as in tests/objectives/test_bound.py
    assert ((lk - log_p).abs() < tol).all(), (lk, log_p, tol)


@pytest.mark.parametrize("objective", ["relaxed", "discrete"])
def test_training_on_cuda_is_finite_and_resumes_bit_identically(tmp_path, objective: str) -> None:
    extra = {"objective": objective, "estimator": "vimco", "samples": 5} if objective == "discrete" else {}
    straight, half = tmp_path / "straight", tmp_path / "half"
    train(small_config(straight, steps=40, device="cuda", checkpoint_every=10, **extra))
    train(small_config(half, steps=20, device="cuda", checkpoint_every=10, **extra))
    resume(small_config(half, steps=40, device="cuda", checkpoint_every=10, **extra))
    a, b = model_tensors(straight), model_tensors(half)
    assert all(bool(torch.isfinite(t).all()) for t in a.values())
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_a_cuda_run_resumes_on_the_cpu(tmp_path) -> None:
    out = tmp_path / "run"
    train(small_config(out, steps=20, device="cuda", checkpoint_every=10))
    resume(small_config(out, steps=40, device="cpu", checkpoint_every=10))
    devices = load_checkpoint(out / "checkpoints" / "last.safetensors").extra["devices"]
    assert [first for first, _ in devices] == [0, 20] and devices[0][1].startswith(torch.cuda.get_device_name())
    rows = [row for row in read_metrics(out / "metrics.jsonl") if "loss" in row]
    assert [row["step"] for row in rows] == list(range(2, 41, 2))
    assert all(math.isfinite(row["loss"]) for row in rows)


def test_reproduce_trains_and_evaluates_on_the_gpu(tmp_path, monkeypatch) -> None:
    import concretelab.train.evaluate as evaluation

    seen: list[str] = []
    bound = evaluation.resumable_bound_per_image

    def spy(model, images, k, **options):
        seen.append(next(model.parameters()).device.type)
        return bound(model, images, k, **options)

    monkeypatch.setattr(evaluation, "resumable_bound_per_image", spy)
    assert main(_argv(tmp_path, ["200H-784V-m1-relaxed"], 3, "--large-k", "16", "--large-k-images", "6")) == 0
    result = _result(tmp_path, "200H-784V-m1-relaxed")
    assert seen == ["cuda", "cuda"]  # -L_k on the test images and the larger k on the subset
    assert result["device"].startswith(torch.cuda.get_device_name())
    assert result["train_devices"] == [[0, result["device"]]]


@pytest.mark.parametrize("cls", [Concrete, BinConcrete])
def test_log_prob_of_a_remembered_sample_does_not_synchronise(cls: type) -> None:
    """Issue 27: the record is proven current by a stamp (version counter, data pointer, ...) read on the host, so
    log_prob of a remembered sample and its backward never wait for the GPU (torch's sync debug mode raises on a
    synchronising call). Construction and rsample may synchronise (argument checks); scoring must not."""
    logits = torch.randn(512, 10, device="cuda", requires_grad=True)
    d = cls(0.5, logits=logits if cls is Concrete else logits[:, 0], validate_args=False)
    x = d.rsample()
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        lp = d.log_prob(x)
        (x.sum() + lp.sum()).backward()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert bool(torch.isfinite(logits.grad).all())


# ----- --cuda-graph: the whole step as one CUDA graph (concretelab.train.graphed) ------------------------------


# VIMCO is the discrete estimator benchmarks/device_session.sh trains graphed at m = 50: its leave-one-out
# baselines are computed inside the captured step
VIMCO = {"objective": "discrete", "estimator": "vimco", "samples": 5}


@pytest.mark.parametrize(("seeds", "extra"), [(None, {}), ("0-3", {}), (None, VIMCO)])
def test_graphed_steps_agree_with_eager_steps(tmp_path, seeds, extra) -> None:
    """The same run eager and graphed: the same noise (the generator is seeded before each replay as before
    each eager step), the same kernels, so the same parameters up to the order of floating-point sums."""
    settings = {"device": "cuda", "steps": 12, "log_every": 4, "seeds": seeds, "model": "8H~784V", **extra}
    eager = train(small_config(tmp_path / "eager", **settings))
    graphed = train(small_config(tmp_path / "graphed", cuda_graph=True, **settings))
    assert eager.step == graphed.step == 12
    a, b = model_tensors(tmp_path / "eager"), model_tensors(tmp_path / "graphed")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    rows_eager = read_metrics(tmp_path / "eager" / ("seed-0" if seeds else "") / "metrics.jsonl")
    rows_graphed = read_metrics(tmp_path / "graphed" / ("seed-0" if seeds else "") / "metrics.jsonl")
    losses = [(r["loss"], s["loss"]) for r, s in zip(rows_eager, rows_graphed, strict=True) if "loss" in r]
    assert all(math.isclose(x, y, rel_tol=1e-5) for x, y in losses)


def test_graphed_replicas_draw_different_noise(tmp_path) -> None:
    """Four replicas initialised alike would stay alike only if their noise were the same."""
    out = tmp_path / "run"
    train(small_config(out, device="cuda", cuda_graph=True, steps=6, seeds="0-3", log_every=6))
    losses = [read_metrics(out / f"seed-{s}" / "metrics.jsonl")[-1]["loss"] for s in range(4)]
    assert len(set(losses)) == 4


@pytest.mark.parametrize("estimator", [None, "nvil"])
def test_graphed_run_resumes_bit_for_bit(tmp_path, estimator) -> None:
    settings = {"device": "cuda", "cuda_graph": True, "steps": 12, "checkpoint_every": 3, "estimator": estimator}
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(small_config(straight, **settings))
    train(small_config(stopped, **{**settings, "steps": 6}))
    resume(small_config(stopped, **settings))
    a, b = model_tensors(straight), model_tensors(stopped)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and the graphed checkpoint resumes eagerly on the CPU (a float learning rate, capturable off)
    resume(small_config(stopped, **{**settings, "device": "cpu", "cuda_graph": False, "steps": 14}))


# ----- --compile on CUDA: the loss as one graph, its noise from the device's default generator --------------


@pytest.mark.parametrize("seeds", [None, "0-1"])
def test_compiled_steps_on_cuda_follow_the_eager_steps(tmp_path, seeds) -> None:
    """The compiled loss seeds the CUDA default generator as the eager step seeds its own: the same noise, so the
    same trajectory up to the rounding of the fused kernels."""
    settings = {"device": "cuda", "steps": 12, "log_every": 4, "seeds": seeds, "model": "8H~784V"}
    train(small_config(tmp_path / "eager", **settings))
    train(small_config(tmp_path / "compiled", compile=True, **settings))
    a, b = model_tensors(tmp_path / "eager"), model_tensors(tmp_path / "compiled")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    folder = "seed-0" if seeds else ""
    rows = zip(read_metrics(tmp_path / "eager" / folder / "metrics.jsonl"),
               read_metrics(tmp_path / "compiled" / folder / "metrics.jsonl"), strict=True)
    assert all(math.isclose(r["loss"], s["loss"], rel_tol=1e-5) for r, s in rows if "loss" in r)
