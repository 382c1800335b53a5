"""The training loop: one function, read top to bottom (the order of nanoGPT's ``train.py``).

Setup: process group and device, the run folder, data, model, temperatures, Adam, and the checkpoint to
resume from. Then, per step: the temperatures of the schedule, the relaxed objective on the batch
(Maddison, Mnih & Teh 2017, Sec. 4 and Appendix C), ``loss = -bound.mean()``, backward,
(data-parallel gradient averaging), the optimizer step, ``zero_grad(set_to_none=True)``; every
``log_every`` steps a metrics row; every ``eval_every`` steps the importance-weighted bound L_k on the
validation images (the best kept in ``checkpoints/best.safetensors``); every ``checkpoint_every`` steps
``checkpoints/last.safetensors``.

Determinism. The batches are a function of ``(seed, position)`` (:class:`concretelab.data.BatchIterator`)
and the sampling noise of shard ``s`` at step ``t`` comes from a generator seeded with a fixed function
of ``(seed, t, s)``. A checkpoint stores the parameters, Adam's state, the step, the data position and the
global RNG states, so a resumed run (after ``kill -9`` too) replays an uninterrupted one bit for bit. A
global batch is cut into ``world_size x grad_accum`` equal shards; one process with ``grad_accum = W``
draws the same noise as W data-parallel processes, which is how the two are compared.

The hot loop never waits on the device: the per-step losses stay in a device buffer, read (and checked
for NaN/inf) once per metrics row and before every checkpoint, so a non-finite loss is reported with the
exact step and never reaches a checkpoint file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from concretelab.data import load_dataset
from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES, discrete_bound
from concretelab.schedules import ConstantTemperature, LearnableTemperature, parse_schedule
from concretelab.train.checkpoint import (
    Checkpoint,
    capture_global_rng,
    load_checkpoint,
    restore_global_rng,
    save_checkpoint,
)
from concretelab.train.config import MUTABLE_ON_RESUME, TrainConfig, config_to_dict, write_config
from concretelab.train.discrete import DISCRETE_OBJECTIVE, build_estimator_objective, check_estimator_config
from concretelab.train.distributed import all_reduce_gradients, setup_distributed
from concretelab.train.lr_schedule import learning_rate
from concretelab.train.metrics import MetricsWriter, export_csv, read_metrics, truncate_metrics
from concretelab.train.run_lock import run_lock
from concretelab.train.seeding import derive_seed

__all__ = ["NonFiniteLossError", "TrainResult", "num_threads", "resolve_device", "train", "validate"]

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stopped without writing a checkpoint."""


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the final step, why it stopped, and where things are."""

    step: int
    best_valid_nll: float | None
    last_loss: float | None
    stopped_by_signal: int | None
    out: Path
    seconds: float


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` is CUDA when available (one device per local rank), else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available")
    return torch.device(name)


class Temperatures(nn.Module):
    """Prior and posterior temperatures at a step: fixed, scheduled, or learned with a floor."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.learnable = config.learnable_temperature
        if self.learnable:
            self.prior = LearnableTemperature(config.prior_temperature, config.temperature_floor)
            self.posterior = LearnableTemperature(config.posterior_temperature, config.temperature_floor)
        else:
            self.prior_schedule = (
                parse_schedule(config.prior_schedule)
                if config.prior_schedule
                else ConstantTemperature(config.prior_temperature)
            )
            self.posterior_schedule = (
                parse_schedule(config.posterior_schedule)
                if config.posterior_schedule
                else ConstantTemperature(config.posterior_temperature)
            )

    def forward(self, step: int) -> tuple[float | Tensor, float | Tensor]:
        if self.learnable:
            return self.prior(), self.posterior()
        return self.prior_schedule(step), self.posterior_schedule(step)


@contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` (None: unchanged), then restore the count."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _stop_on_signals() -> Iterator[dict[str, int | None]]:
    """While active, SIGINT and SIGTERM only set ``flag["signal"]``; the loop saves and returns."""
    flag: dict[str, int | None] = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        flag["signal"] = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@torch.no_grad()
def validate(
    model: nn.Module,
    images: Tensor,
    *,
    k: int,
    batch_size: int,
    chunk_size: int | None,
    generator: torch.Generator,
) -> Tensor:
    """Per-image L_k (Burda et al. 2016, eq. 8) of the discrete model on ``images``, shape ``(N,)``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    bounds = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device=device, dtype=torch.float32)
        bounds.append(discrete_bound(model, x, k, chunk_size=chunk_size, generator=generator))
    model.train(was_training)
    return torch.cat(bounds)


def _check_resume(config: TrainConfig, saved: dict[str, Any]) -> None:
    current = config_to_dict(config)
    decays = saved.get("lr_schedule", "constant") != "constant" and saved.get("lr_decay_steps") is None
    if decays and saved.get("steps") != current["steps"]:
        raise ValueError(
            f"cannot resume with steps={current['steps']}: the run's {saved['lr_schedule']} learning rate decays to 0 "
            f"at its steps={saved['steps']}; changing it would move the schedule mid-run"
        )
    changed = sorted(
        key for key, value in saved.items()
        if key in current and key not in MUTABLE_ON_RESUME and current[key] != value
    )
    if changed:
        key = changed[0]
        raise ValueError(
            f"cannot resume with {key}={current[key]!r}: the checkpoint was trained with {key}={saved[key]!r} "
            f"(only {', '.join(sorted(MUTABLE_ON_RESUME))} may change on resume)"
        )


def train(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Train ``config.model`` with ``config.objective``; returns when ``config.steps`` steps are done, or
    after saving a checkpoint when SIGINT/SIGTERM arrives. Raises :class:`NonFiniteLossError` on NaN/inf.
    ``resume=True`` continues from ``config.out``'s last checkpoint (or starts fresh when there is none).
    Holds the run folder's lock throughout (:func:`concretelab.train.run_lock.run_lock`): a second writer
    fails at once with :class:`~concretelab.train.run_lock.RunFolderBusyError` naming this process.
    """
    writer = int(os.environ.get("RANK", "0")) == 0  # data-parallel: rank 0 writes the folder and holds its lock
    with num_threads(config.threads), run_lock(config.out) if writer else contextlib.nullcontext():
        return _train(config, resume)


def _train(config: TrainConfig, resume: bool) -> TrainResult:
    # ----- process group, device, run folder -----------------------------------------------------------
    # --- estimator training (concretelab.train.discrete): --estimator NAME trains the discrete objective ---
    check_estimator_config(config)  # ValueError naming --estimator/--samples/--objective/--model
    if config.estimator is None and config.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {config.objective!r}; expected one of {', '.join(sorted(OBJECTIVES))}")
    objective = OBJECTIVES.get(config.objective) if config.estimator is None else None
    # --- end estimator training ---
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(config.device, local_rank)
    out = Path(config.out)
    last_path, best_path = out / "checkpoints" / "last.safetensors", out / "checkpoints" / "best.safetensors"
    checkpoint: Checkpoint | None = None
    if resume and last_path.exists():
        checkpoint = load_checkpoint(last_path)
        _check_resume(config, checkpoint.config)
    elif resume:
        logger.info("no checkpoint in %s: starting from scratch", out)
    elif last_path.exists():
        raise ValueError(f"{out} already holds a run (checkpoints/last.safetensors); pass --resume or another --out")

    # ----- data and model (built before anything is written, so bad arguments leave no folder) ----------
    dataset = load_dataset(config.data)
    with torch.random.fork_rng(devices=[]):  # initialise from the seed without touching the global RNG
        torch.manual_seed(config.seed)
        model = build_model(config.model, categories=config.categories, train_mean=dataset.train_mean)
    model.to(device).train()
    temperatures = Temperatures(config).to(device)
    # --- estimator training: its baseline networks train with the model; their state is checkpointed ---
    estimator = None
    if config.estimator is not None:
        objective = estimator = build_estimator_objective(config.estimator, model, seed=config.seed).train()
    params = [p for p in [*model.parameters(), *temperatures.parameters(),
                          *(estimator.parameters() if estimator is not None else ())] if p.requires_grad]
    # --- end estimator training ---
    fast = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    optimizer = torch.optim.Adam(params, lr=config.lr, **fast)
    batches = dataset.train_batches(config.batch_size, seed=config.seed, drop_last=True)  # full batches only
    valid_images = dataset.valid[: config.eval_images] if config.eval_images else dataset.valid

    context = setup_distributed(device)
    shards = context.world_size * config.grad_accum
    if config.batch_size % shards:
        raise ValueError(
            f"batch_size ({config.batch_size}) must be divisible by world_size x grad_accum ({shards})"
        )
    shard_size = config.batch_size // shards
    generator = torch.Generator(device=device)

    # ----- resume: parameters, Adam, step, data position, RNG states ----------------------------------------
    step, best_valid, elapsed = 0, None, 0.0
    if checkpoint is not None:
        model.load_state_dict(checkpoint.model_state)
        temperatures.load_state_dict(checkpoint.extra["temperatures"])
        if estimator is not None:  # estimator training: baselines and running moments
            estimator.load_state_dict(checkpoint.extra["estimator"])
        optimizer.load_state_dict(checkpoint.optimizer_state)
        batches.load_state_dict(checkpoint.data_state)
        restore_global_rng(checkpoint.rng)
        step, best_valid, elapsed = checkpoint.step, checkpoint.best_valid, checkpoint.extra["elapsed"]
        logger.info("resumed %s at step %d", out, step)
    if context.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_config(config, out / "config.toml")
        truncate_metrics(out / "metrics.jsonl", step)
    metrics = MetricsWriter(out / "metrics.jsonl", enabled=context.is_main)

    def make_checkpoint() -> Checkpoint:
        return Checkpoint(
            step=step,
            model_state=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            rng=capture_global_rng(include_cuda=device.type == "cuda"),
            data_state=batches.state_dict(),
            best_valid=best_valid,
            config=config_to_dict(config),
            model_args=model.model_args(),
            extra={"temperatures": temperatures.state_dict(), "elapsed": elapsed + time.perf_counter() - t0,
                   **({"estimator": estimator.state_dict()} if estimator is not None else {})},
        )

    # Per-step losses stay on the device until a row is written (the only per-step host sync).
    losses = torch.zeros(config.log_every, device=device)
    pending, last_loss, t0, interval_t0 = 0, None, time.perf_counter(), time.perf_counter()

    def flush() -> None:
        """Read the pending losses, stop on NaN/inf naming the step, write one metrics row."""
        nonlocal pending, last_loss, interval_t0
        if pending == 0:
            return
        window = losses[:pending]
        if context.enabled:
            torch.distributed.all_reduce(window)
            window.div_(context.world_size)
        values = window.tolist()
        bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
        if bad:
            bad_step = step - pending + bad[0] + 1
            kept = f"the last good checkpoint is {last_path}" if last_path.exists() else "no checkpoint was written"
            raise NonFiniteLossError(
                f"non-finite training loss ({values[bad[0]]}) at step {bad_step}; stopping ({kept}, untouched)"
            )
        now = time.perf_counter()
        prior_t, posterior_t = temperatures(step)
        last_loss = sum(values) / len(values)
        metrics.write({
            "step": step,
            "loss": last_loss,
            "prior_temperature": float(torch.as_tensor(prior_t).detach()),
            "posterior_temperature": float(torch.as_tensor(posterior_t).detach()),
            "lr": optimizer.param_groups[0]["lr"],
            "time": elapsed + now - t0,
            "steps_per_s": pending / max(now - interval_t0, 1e-9),
        })
        bar.set_postfix(bound=f"{-last_loss:.2f}", refresh=False)
        losses.zero_()
        pending, interval_t0 = 0, now

    # ----- the loop ------------------------------------------------------------------------------------------
    logger.info(
        "training %s (%d parameters) with %s, m=%d, on %s%s: steps %d..%d",
        config.model, sum(p.numel() for p in model.parameters()),
        config.objective if estimator is None else f"{DISCRETE_OBJECTIVE} ({config.estimator})", config.samples, device,
        f" x{context.world_size} processes" if context.enabled else "", step, config.steps,
    )
    bar = tqdm(total=config.steps, initial=step, unit="step", dynamic_ncols=True,
               disable=None if (config.progress and context.is_main) else True)
    stopped_by: int | None = None
    try:
        with _stop_on_signals() as stop:
            while step < config.steps:
                prior_t, posterior_t = temperatures(step)
                lr = learning_rate(config.lr, step, schedule=config.lr_schedule, warmup_steps=config.warmup_steps,
                                   horizon=config.lr_horizon)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x = next(batches).to(device, non_blocking=True)  # (batch_size, D), the global batch
                for a in range(config.grad_accum):
                    shard = context.rank * config.grad_accum + a
                    generator.manual_seed(derive_seed(config.seed, step, shard))
                    x_shard = x[shard * shard_size : (shard + 1) * shard_size]  # (shard_size, D)
                    bound = objective(model, x_shard, samples=config.samples, prior_temperature=prior_t,
                                      posterior_temperature=posterior_t, generator=generator)  # (shard_size,)
                    loss = -bound.mean() / config.grad_accum
                    loss.backward()
                    losses[pending] += loss.detach()
                want_stop = stop["signal"] is not None
                if context.enabled and all_reduce_gradients(params, want_stop, context):
                    want_stop = True
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                pending += 1
                bar.update(1)

                last_step = step == config.steps
                if pending == config.log_every or last_step or want_stop:
                    flush()
                if config.eval_every and (step % config.eval_every == 0 or last_step):
                    flush()
                    if context.is_main:
                        generator.manual_seed(derive_seed(config.seed, "validation"))
                        bound = validate(model, valid_images, k=config.eval_k, batch_size=config.eval_batch_size,
                                         chunk_size=config.eval_chunk_size, generator=generator)
                        valid_nll = -float(bound.mean())
                        metrics.write({"step": step, "valid_nll": valid_nll, "valid_k": config.eval_k,
                                       "valid_images": int(bound.shape[0]),
                                       "time": elapsed + time.perf_counter() - t0})
                        logger.info("step %d: validation -L_%d = %.3f nats", step, config.eval_k, valid_nll)
                        if best_valid is None or -valid_nll > best_valid:
                            best_valid = -valid_nll
                            save_checkpoint(best_path, make_checkpoint())
                if want_stop or last_step or (config.checkpoint_every and step % config.checkpoint_every == 0):
                    flush()
                    if context.is_main:
                        save_checkpoint(last_path, make_checkpoint())
                if want_stop:
                    stopped_by = stop["signal"] or signal.SIGTERM
                    logger.info(
                        "stopped by %s at step %d; checkpoint saved to %s (continue with --resume)",
                        signal.Signals(stopped_by).name, step, last_path,
                    )
                    break
    finally:
        bar.close()
        metrics.close()
        context.close()
    seconds = elapsed + time.perf_counter() - t0
    if context.is_main:
        export_csv(read_metrics(out / "metrics.jsonl"), out / "metrics.csv")
    return TrainResult(step, None if best_valid is None else -best_valid, last_loss, stopped_by, out, seconds)
