"""The training loop: one function, read top to bottom (the order of nanoGPT's ``train.py``).

Setup: the objective, device and resume checks, the resources the run will need (refused with a message
naming the flag before anything is written), data and model, temperatures, Adam, the checkpoint to resume
from. Then, per step: the learning rate and temperatures of the step, the objective on the batch
(Maddison, Mnih & Teh 2017, Sec. 4 and Appendix C), ``loss = -bound.mean()``, backward, (data-parallel
gradient averaging), the optimizer step; then one flush point: a metrics row every ``log_every`` steps,
validation (the importance-weighted bound L_k, the best kept in ``checkpoints/best.safetensors``) every
``eval_every`` steps, ``checkpoints/last.safetensors`` every ``checkpoint_every`` steps.

Determinism. The batches are a function of ``(seed, position)`` (:class:`concretelab.data.BatchIterator`),
the sampling noise of shard ``s`` at step ``t`` comes from a generator seeded with a fixed function of
``(seed, t, s)``, and a fresh run seeds the global RNGs from ``seed``. A checkpoint stores the parameters,
Adam's state, the step, the data position, the global RNG states, the losses of the metrics row in progress
and whether a validation is owed, so a resumed run (after ``kill -9`` too) replays an uninterrupted one:
the same tensors and the same metrics rows at the same steps, wall-clock fields aside. A global batch is
cut into ``world_size x grad_accum`` equal shards; one process with ``grad_accum = W`` draws the same noise
as W data-parallel processes.

Interrupts. The first SIGINT or SIGTERM stops the run within a second in every phase: during a training step
no optimizer step is taken after it (the step is abandoned and the batch put back), a validation is
abandoned (and owed to the resumed run), a checkpoint being written is completed; then ``last`` is saved.
A second signal stops at once, leaving the last complete checkpoint on disk (files are written atomically).

The hot loop never waits on the device: the per-step losses stay in a device buffer, read (and checked for
NaN/inf) once per metrics row and before every checkpoint, so a non-finite loss is reported with the exact
step and never reaches a checkpoint file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from concretelab.data import load_dataset
from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES, TrainableModel, discrete_bound_per_image
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
from concretelab.train.distributed import Distributed, all_reduce_gradients, any_rank, setup_distributed
from concretelab.train.lr_schedule import learning_rate
from concretelab.train.metrics import MetricsWriter, export_csv, read_metrics, truncate_metrics
from concretelab.train.resources import check_resources, model_input_size
from concretelab.train.run_lock import run_lock
from concretelab.train.seeding import derive_seed
from concretelab.train.tensorboard import TensorBoardLog, require_tensorboard

__all__ = [
    "ForcedStop",
    "NonFiniteLossError",
    "TrainResult",
    "num_threads",
    "resolve_device",
    "train",
    "validate",
]

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stopped without writing a checkpoint."""


class ForcedStop(KeyboardInterrupt):
    """A second SIGINT/SIGTERM: the run stops at once; the last complete checkpoint stays on disk."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped at once by a second {signal.Signals(signum).name}")
        self.signum = signum


class _PhaseAborted(Exception):
    """Raised inside an abortable phase (validation) by the first stop signal."""


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
        raise ValueError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    return torch.device(name)


class Temperatures(nn.Module):
    """Prior and posterior temperatures at a step: two schedules (constant, scheduled), or learned with a floor."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.learnable = config.learnable_temperature
        prior, posterior = config.temperatures  # as given, or the paper's for the model's units
        if self.learnable:
            self.prior = LearnableTemperature(prior, config.temperature_floor)
            self.posterior = LearnableTemperature(posterior, config.temperature_floor)
        else:
            self.prior_schedule = (
                parse_schedule(config.prior_schedule)
                if config.prior_schedule
                else ConstantTemperature(prior)
            )
            self.posterior_schedule = (
                parse_schedule(config.posterior_schedule)
                if config.posterior_schedule
                else ConstantTemperature(posterior)
            )

    def forward(self, step: int) -> tuple[float | Tensor, float | Tensor]:
        if self.learnable:
            return self.prior(), self.posterior()
        return self.prior_schedule(step), self.posterior_schedule(step)


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` (None: unchanged), then restore the count."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _StopSignals:
    """SIGINT/SIGTERM while training: the first records a stop (and aborts an abortable phase at once), the
    second raises :class:`ForcedStop` wherever the program is."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._abortable = False

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _handler(self, signum: int, frame: object) -> None:
        if self.signal is not None:
            raise ForcedStop(signum)
        self.signal = signum
        if self._abortable:
            raise _PhaseAborted

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopSignals]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @contextlib.contextmanager
    def abortable(self) -> Iterator[None]:
        """A phase the first signal abandons at once (by raising :class:`_PhaseAborted`)."""
        if self.requested:
            raise _PhaseAborted
        self._abortable = True
        try:
            yield
        finally:
            self._abortable = False


class _LossWindow:
    """The per-step losses of the metrics row in progress, kept on the device (no per-step host sync)."""

    def __init__(self, size: int, device: torch.device, context: Distributed) -> None:
        self.values = torch.zeros(size, device=device)
        self.count = 0
        self.context = context

    def add(self, loss: Tensor) -> None:
        self.values[self.count] += loss.detach()

    def close_step(self) -> None:
        self.count += 1

    def read(self, step: int, last_path: Path) -> list[float]:
        """The pending losses (averaged over ranks), after checking they are finite (else NonFiniteLossError)."""
        window = self.values[: self.count]
        if self.context.enabled:  # idempotent: values already averaged are equal on every rank
            torch.distributed.all_reduce(window)
            window.div_(self.context.world_size)
        values = window.tolist()
        bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
        if bad:
            bad_step = step - self.count + bad[0] + 1
            kept = f"the last good checkpoint is {last_path}" if last_path.exists() else "no checkpoint was written"
            raise NonFiniteLossError(
                f"non-finite training loss ({values[bad[0]]}) at step {bad_step}; stopping ({kept}, untouched)"
            )
        return values

    def reset(self) -> None:
        self.values.zero_()
        self.count = 0

    def load(self, values: list[float]) -> None:
        self.values.zero_()
        if values:
            self.values[: len(values)] = torch.tensor(values, dtype=self.values.dtype)
        self.count = len(values)


def validate(
    model: TrainableModel,
    images: Tensor,
    *,
    k: int,
    batch_size: int,
    chunk_size: int | None,
    generator: torch.Generator,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """Per-image L_k (Burda et al. 2016, eq. 8) of the discrete model on ``images``, shape ``(N,)``
    (:func:`concretelab.objectives.discrete_bound_per_image`)."""
    return discrete_bound_per_image(model, images, k, batch_size=batch_size, chunk_size=chunk_size,
                                    generator=generator, progress=progress)


def _check_resume(config: TrainConfig, checkpoint: Checkpoint) -> None:
    saved = checkpoint.config
    current = config_to_dict(config)
    if config.steps < checkpoint.step:
        raise ValueError(
            f"--steps {config.steps} is below the {checkpoint.step} steps this run has already done; pass "
            f"--steps {checkpoint.step} or more to continue it (nothing was changed)"
        )
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
        flag = "--" + key.replace("_", "-")
        raise ValueError(
            f"cannot resume with {flag} {current[key]!r}: the checkpoint was trained with {flag} {saved[key]!r} "
            f"(only {', '.join('--' + k.replace('_', '-') for k in sorted(MUTABLE_ON_RESUME))} may change on resume)"
        )


def _build_objective(config: TrainConfig, model: TrainableModel) -> tuple[Callable[..., Tensor], nn.Module | None]:
    """The training objective ``f(model, x, samples=, prior_temperature=, posterior_temperature=, generator=)``
    returning a per-example bound, and the module holding its own trainable state (estimator baselines), if any."""
    if config.estimator is not None:
        objective = build_estimator_objective(config.estimator, model, seed=config.seed).train()
        return objective, objective
    return OBJECTIVES[config.objective or "relaxed"], None


def _seed_globals(seed: int) -> None:
    """A fresh run's global RNGs (torch, numpy, random) from its seed, so they too replay on resume."""
    global_seed = derive_seed(seed, "global")
    torch.manual_seed(global_seed)
    np.random.seed(global_seed % 2**32)
    random.seed(global_seed)


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
    # ----- what to train, where, and whether it fits (all checked before any file is written) -------------
    check_estimator_config(config)  # ValueError naming --estimator/--samples/--objective/--model
    if config.estimator is None and (config.objective or "relaxed") not in OBJECTIVES:
        raise ValueError(
            f"--objective {config.objective}: unknown objective; expected one of {', '.join(sorted(OBJECTIVES))}"
        )
    device = resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    out = Path(config.out)
    last_path, best_path = out / "checkpoints" / "last.safetensors", out / "checkpoints" / "best.safetensors"
    checkpoint: Checkpoint | None = None
    if resume and last_path.exists():
        checkpoint = load_checkpoint(last_path)
        _check_resume(config, checkpoint)
    elif resume:
        logger.info("no checkpoint in %s: starting from scratch", out)
    elif last_path.exists():
        raise ValueError(f"{out} already holds a run (checkpoints/last.safetensors); pass --resume or another --out")
    check_resources(config, device)  # ValueError naming --model/--samples/--log-every/... when it cannot fit
    if config.tensorboard:
        require_tensorboard()  # ValueError naming --tensorboard and the install command

    # ----- data and model -------------------------------------------------------------------------------------
    dataset = load_dataset(config.data)
    with torch.device("meta"):  # the architecture alone, without memory, to check it against the data
        probe = build_model(config.model, categories=config.categories)
    pixels = int(dataset.train.shape[1])
    if model_input_size(probe) != pixels:
        raise ValueError(
            f"--model {config.model} has {model_input_size(probe)} visible units, but --data {config.data} has "
            f"{pixels} pixels per image"
        )
    with torch.random.fork_rng(devices=[]):  # initialise from the seed without touching the global RNG
        torch.manual_seed(config.seed)
        model: TrainableModel = build_model(config.model, categories=config.categories, train_mean=dataset.train_mean)
    model.to(device).train()
    temperatures = Temperatures(config).to(device)
    objective, objective_state = _build_objective(config, model)
    params = [p for p in [*model.parameters(), *temperatures.parameters(),
                          *(objective_state.parameters() if objective_state is not None else ())] if p.requires_grad]
    fast = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    optimizer = torch.optim.Adam(params, lr=config.lr, **fast)
    batches = dataset.train_batches(config.batch_size, seed=config.seed, drop_last=True)  # full batches only
    valid_images = dataset.valid[: config.eval_images] if config.eval_images else dataset.valid

    context = setup_distributed(device)
    shards = context.world_size * config.grad_accum
    if config.batch_size % shards:
        raise ValueError(f"--batch-size {config.batch_size} must be divisible by world_size x --grad-accum ({shards})")
    shard_size = config.batch_size // shards
    generator = torch.Generator(device=device)
    window = _LossWindow(min(config.log_every, max(config.steps, 1)), device, context)

    # ----- resume: parameters, Adam, step, data position, RNG states, the row in progress -------------------
    step, best_bound, elapsed, validation_due = 0, None, 0.0, False
    if checkpoint is not None:
        model.load_state_dict(checkpoint.model_state)
        temperatures.load_state_dict(checkpoint.extra["temperatures"])
        if objective_state is not None:  # estimator training: baselines and running moments
            objective_state.load_state_dict(checkpoint.extra["estimator"])
        optimizer.load_state_dict(checkpoint.optimizer_state)
        batches.load_state_dict(checkpoint.data_state)
        restore_global_rng(checkpoint.rng)
        step, best_bound, elapsed = checkpoint.step, checkpoint.best_valid, checkpoint.extra["elapsed"]
        window.load(list(checkpoint.extra.get("loss_window", [])))
        validation_due = bool(checkpoint.extra.get("validation_due", False))
        logger.info("resumed %s at step %d", out, step)
    else:
        _seed_globals(config.seed)
    if context.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_config(config, out / "config.toml")
        truncate_metrics(out / "metrics.jsonl", step)
    metrics = MetricsWriter(out / "metrics.jsonl", enabled=context.is_main)
    board = TensorBoardLog(out / "tensorboard", first_step=step + 1) if config.tensorboard and context.is_main else None

    def log_row(row: dict[str, Any]) -> None:
        metrics.write(row)
        if board is not None:
            board.row(row)

    t0 = time.perf_counter()
    row_t0 = t0

    def make_checkpoint(pending_losses: list[float], owes_validation: bool) -> Checkpoint:
        return Checkpoint(
            step=step,
            model_state=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            rng=capture_global_rng(include_cuda=device.type == "cuda"),
            data_state=batches.state_dict(),
            best_valid=best_bound,
            config=config_to_dict(config),
            model_args=model.model_args(),
            extra={"temperatures": temperatures.state_dict(), "elapsed": elapsed + time.perf_counter() - t0,
                   "loss_window": pending_losses, "validation_due": owes_validation,
                   **({"estimator": objective_state.state_dict()} if objective_state is not None else {})},
        )

    def save_last(owes_validation: bool = False) -> None:
        pending = window.read(step, last_path)  # collective; checks for NaN before anything is written
        if context.is_main:
            save_checkpoint(last_path, make_checkpoint(pending, owes_validation))

    def write_row() -> float:
        nonlocal row_t0
        values = window.read(step, last_path)
        now = time.perf_counter()
        prior_t, posterior_t = temperatures(step)
        loss = sum(values) / len(values)
        log_row({
            "step": step,
            "loss": loss,
            "prior_temperature": float(torch.as_tensor(prior_t).detach()),
            "posterior_temperature": float(torch.as_tensor(posterior_t).detach()),
            "lr": optimizer.param_groups[0]["lr"],
            "time": elapsed + now - t0,
            "steps_per_s": len(values) / max(now - row_t0, 1e-9),
        })
        window.reset()
        row_t0 = now
        return loss

    def run_validation(stop: _StopSignals) -> bool:
        """Validate at ``step`` (rank 0), keep the best checkpoint; False when a signal abandoned it."""
        nonlocal best_bound
        if not context.is_main:
            return True
        generator.manual_seed(derive_seed(config.seed, "validation"))
        try:
            with stop.abortable():
                bound = validate(model, valid_images, k=config.eval_k, batch_size=config.eval_batch_size,
                                 chunk_size=config.eval_chunk_size, generator=generator)
        except _PhaseAborted:
            logger.info("validation at step %d abandoned by %s; it is owed to the resumed run", step,
                        signal.Signals(stop.signal or signal.SIGTERM).name)
            return False
        valid_nll = -float(bound.mean())
        log_row({"step": step, "valid_nll": valid_nll, "valid_k": config.eval_k,
                 "valid_images": int(bound.shape[0]), "time": elapsed + time.perf_counter() - t0})
        if board is not None:
            board.samples(step, model, dataset.image_shape, valid_images[:16].to(device, torch.float32),
                          torch.Generator(device=device).manual_seed(derive_seed(config.seed, "samples")))
        logger.info("step %d: validation -L_%d = %.3f nats", step, config.eval_k, valid_nll)
        if best_bound is None or -valid_nll > best_bound:
            best_bound = -valid_nll
            save_checkpoint(best_path, make_checkpoint(window.values[: window.count].tolist(), False))
        return True

    # ----- the loop -----------------------------------------------------------------------------------------
    logger.info(
        "training %s (%d parameters) with %s, m=%d, on %s%s: steps %d..%d",
        config.model, sum(p.numel() for p in model.parameters()),
        f"{DISCRETE_OBJECTIVE} ({config.estimator})" if config.estimator else config.objective or "relaxed",
        config.samples, device, f" x{context.world_size} processes" if context.enabled else "", step, config.steps,
    )
    bar = tqdm(total=config.steps, initial=step, unit="step", dynamic_ncols=True,
               disable=None if (config.progress and context.is_main) else True)
    stop = _StopSignals()
    last_loss: float | None = None
    try:
        with stop.installed():
            if validation_due:  # a validation abandoned by a signal before the checkpoint: do it now
                validation_due = not run_validation(stop)
            while step < config.steps and not stop.requested and not validation_due:
                lr = learning_rate(config.lr, step, schedule=config.lr_schedule, warmup_steps=config.warmup_steps,
                                   horizon=config.lr_horizon)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                prior_t, posterior_t = temperatures(step)
                position = batches.state_dict()
                x = next(batches).to(device, non_blocking=True)  # (batch_size, D), the global batch
                for a in range(config.grad_accum):
                    shard = context.rank * config.grad_accum + a
                    generator.manual_seed(derive_seed(config.seed, step, shard))
                    x_shard = x[shard * shard_size : (shard + 1) * shard_size]  # (shard_size, D)
                    bound = objective(model, x_shard, samples=config.samples, prior_temperature=prior_t,
                                      posterior_temperature=posterior_t, generator=generator)  # (shard_size,)
                    loss = -bound.mean() / config.grad_accum
                    loss.backward()
                    window.add(loss)
                want_stop = stop.requested
                if context.enabled and all_reduce_gradients(params, want_stop, context):
                    want_stop = True
                if want_stop:  # no optimizer step after a signal: abandon this step, put its batch back
                    optimizer.zero_grad(set_to_none=True)
                    window.values[window.count] = 0.0
                    batches.load_state_dict(position)
                    break
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                window.close_step()
                bar.update(1)

                # one flush point per step: a metrics row, validation, checkpoint
                last_step = step == config.steps
                if step % config.log_every == 0 or last_step:
                    last_loss = write_row()
                    bar.set_postfix(bound=f"{-last_loss:.2f}", refresh=False)
                if config.eval_every and (step % config.eval_every == 0 or last_step):
                    validation_due = not run_validation(stop)
                    if context.enabled and any_rank(validation_due or stop.requested, context, device):
                        stop.signal = stop.signal or signal.SIGTERM
                if validation_due or stop.requested:
                    break
                if last_step or (config.checkpoint_every and step % config.checkpoint_every == 0):
                    save_last()
            if stop.requested or validation_due:
                save_last(owes_validation=validation_due)
                stopped = signal.Signals(stop.signal or signal.SIGTERM)
                logger.info("stopped by %s at step %d; checkpoint saved to %s (continue with --resume)",
                            stopped.name, step, last_path)
            elif checkpoint is not None and step == checkpoint.step and step == config.steps:
                save_last()  # a resumed run that only owed its final validation
    finally:
        bar.close()
        metrics.close()
        if board is not None:
            board.close()
        context.close()
    seconds = elapsed + time.perf_counter() - t0
    if context.is_main:
        export_csv(read_metrics(out / "metrics.jsonl"), out / "metrics.csv")
    stopped_by = None if stop.signal is None else int(stop.signal)
    return TrainResult(step, None if best_bound is None else -best_bound, last_loss, stopped_by, out, seconds)
