"""The training loop, read top to bottom (the order of nanoGPT's ``train.py``): ``_Run`` prepares in its
constructor, then ``_Run.train`` takes one step and one flush at a time.

Setup: the objective, device and resume checks, the resources the run will need (refused with a message
naming the flag before anything is written), data and model, temperatures, Adam, the checkpoint to resume
from. Then, per step: the learning rate and temperatures of the step, the objective on the batch
(Maddison, Mnih & Teh 2017, Sec. 4 and Appendix C), ``loss = -bound.mean()``, backward, (data-parallel
gradient averaging), the optimizer step; then one flush point: a metrics row every ``log_every`` steps,
validation (the importance-weighted bound L_k, the best kept in ``checkpoints/best.safetensors``) every
``eval_every`` steps, ``checkpoints/last.safetensors`` every ``checkpoint_every`` steps.

Determinism. The batches are a function of ``(seed, position)`` (``concretelab.data.BatchIterator``),
the sampling noise of shard ``s`` at step ``t`` comes from a generator seeded with a fixed function of
``(seed, t, s)``, and a fresh run seeds the global RNGs from ``seed``. A checkpoint stores the parameters,
Adam's state, the step, the data position, the global RNG states, the losses of the metrics row in progress
and whether a validation is owed, so a resumed run (after ``kill -9`` too) replays an uninterrupted one:
the same tensors and the same metrics rows at the same steps, wall-clock fields aside. ``--log-every`` may
change on resume: the next row is then written at the next multiple of the new value and covers every loss
since the last row, those gathered before the interruption included. A global batch is
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
import functools
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from concretelab.devices import describe_device, resolve_device
from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES, TrainableModel, discrete_bound_per_image
from concretelab.schedules import ConstantTemperature, LearnableTemperature, parse_schedule
from concretelab.train.checkpoint import (
    Checkpoint,
    capture_global_rng,
    restore_global_rng,
    save_checkpoint,
)
from concretelab.train.compiled import CompiledLoss
from concretelab.train.config import TrainConfig, config_to_dict, write_config
from concretelab.train.denormals import flush_denormals
from concretelab.train.discrete import DISCRETE_OBJECTIVE, build_estimator_objective
from concretelab.train.distributed import all_reduce_gradients, any_rank, setup_distributed
from concretelab.train.graphed import GraphedStep, step_state
from concretelab.train.loss_window import LossWindow, NonFiniteLossError, next_row_step
from concretelab.train.lr_schedule import learning_rate
from concretelab.train.metrics import MetricsWriter, export_csv, read_metrics, truncate_metrics
from concretelab.train.preflight import CheckedRun, check_run, validation_images
from concretelab.train.replicas import (
    ReplicaBatches,
    replica_folder,
    replica_optimizer_state,
    replica_state,
    stack_replicas,
)
from concretelab.train.resumable_bound import resumable_bound_per_image
from concretelab.train.run_lock import run_lock
from concretelab.train.seeding import derive_seed
from concretelab.train.signals import ForcedStop, PhaseAborted, StopSignals
from concretelab.train.tensorboard import TensorBoardLog

__all__ = [
    "CheckedRun",
    "ForcedStop",
    "NonFiniteLossError",
    "TrainResult",
    "build_optimizer",
    "check_run",
    "describe_device",
    "num_threads",
    "resolve_device",
    "train",
    "validate",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    """What [`train`][concretelab.train.train] returns: the final step, why it stopped, and where things are."""

    step: int
    best_valid_nll: float | None
    last_loss: float | None
    stopped_by_signal: int | None
    out: Path
    seconds: float
    best_valid_nll_by_seed: dict[int, float | None] | None = None  # --seeds: each replica's best validation NLL


def build_optimizer(params: list[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """The trainer's Adam (Kingma & Ba 2015, default betas and eps): fused on CPU and CUDA, where PyTorch has
    a kernel that updates every parameter in one call, else foreach. benchmarks/train.py times the step with it."""
    fast = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    return torch.optim.Adam(params, lr=lr, **fast)


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
    ([`concretelab.objectives.discrete_bound_per_image`][concretelab.objectives.discrete_bound_per_image])."""
    return discrete_bound_per_image(model, images, k, batch_size=batch_size, chunk_size=chunk_size,
                                    generator=generator, progress=progress)


def _build_objective(config: TrainConfig, model: TrainableModel) -> tuple[Callable[..., Tensor], nn.Module | None]:
    """The training objective ``f(model, x, samples=, prior_temperature=, posterior_temperature=, generator=)``
    returning a per-example bound, and the module holding its own trainable state (estimator baselines), if any."""
    if config.estimator is not None:
        objective = build_estimator_objective(config.estimator, model, seed=config.seed).train()
        return objective, objective
    return OBJECTIVES[config.objective or "relaxed"], None


def _portable_optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Adam's ``state_dict`` as an eager run keeps it: a CUDA-graphed run's tensor learning rate as a float and
    ``capturable`` off, so its checkpoint resumes on any device, graphed or not."""
    state = optimizer.state_dict()
    for group in state["param_groups"]:
        if isinstance(group.get("lr"), Tensor):
            group["lr"] = float(group["lr"])
            group["capturable"] = False
    return state


def seeded_model(config: TrainConfig, seed: int, train_mean: Tensor | None) -> TrainableModel:
    """``config.model`` initialised from ``seed``, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config.model, categories=config.categories, train_mean=train_mean,
                           activation=config.activation)


def _seed_globals(seed: int) -> None:
    """A fresh run's global RNGs (torch, numpy, random) from its seed, so they too replay on resume."""
    global_seed = derive_seed(seed, "global")
    torch.manual_seed(global_seed)
    np.random.seed(global_seed % 2**32)
    random.seed(global_seed)


def train(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Train ``config.model`` with ``config.objective``; returns when ``config.steps`` steps are done, or
    after saving a checkpoint when SIGINT/SIGTERM arrives. Raises
    [`NonFiniteLossError`][concretelab.train.NonFiniteLossError] on NaN/inf. ``resume=True`` continues from
    ``config.out``'s last checkpoint (or starts fresh when there is none). Holds the run folder's lock throughout
    (`concretelab.train.run_lock.run_lock`): a second writer fails at once with `RunFolderBusyError` naming this
    process.
    """
    writer = int(os.environ.get("RANK", "0")) == 0  # data-parallel: rank 0 writes the folder and holds its lock
    with num_threads(config.threads), flush_denormals(config.flush_denormal), (
        run_lock(config.out) if writer else contextlib.nullcontext()
    ):
        return _train(config, resume)


def _train(config: TrainConfig, resume: bool) -> TrainResult:
    """Prepare the run (checks, data, model, resume), train step by step, stop cleanly; see ``_Run``."""
    run = _ReplicaRun(config, resume) if config.seeds is not None else _Run(config, resume)
    stop = StopSignals()
    try:
        with stop.installed():
            run.train(stop)
    finally:
        run.close()
    return run.result(stop)


class _Run:
    """One training run. Reads top to bottom: ``__init__`` checks the request and prepares data, model, objective,
    optimizer and the resumed state; ``train`` is the loop, one ``step`` then one ``flush`` (metrics
    row, validation, checkpoint) per step; ``stop_cleanly`` saves what a signal interrupted. The best
    validation result is kept as a bound (``best_bound``, higher is better); rows report NLLs."""

    # ----- what to train, where, and whether it fits (all checked before any file is written) ---------------
    def __init__(self, config: TrainConfig, resume: bool) -> None:
        self.config = config
        checked = check_run(config, resume=resume)  # every refusal, naming the flag; --dry-run runs the same
        self.device = device = checked.device
        self.out = out = Path(config.out)
        self.last_path = out / "checkpoints" / "last.safetensors"
        self.best_path = out / "checkpoints" / "best.safetensors"
        checkpoint = checked.checkpoint
        if resume and checkpoint is None:
            logger.info("no checkpoint in %s: starting from scratch", out)
        self.resumed_at = None if checkpoint is None else checkpoint.step

        # ----- data, model, objective, optimizer ------------------------------------------------------------
        self.dataset = dataset = checked.dataset
        self.model = model = self.initial_model()
        model.to(device).train()
        self.temperatures = Temperatures(config).to(device)  # two schedules: the prior's and the posterior's
        self.objective, self.objective_state = self.build_objective()
        own = self.objective_state.parameters() if self.objective_state is not None else ()
        self.params = [p for p in [*model.parameters(), *self.temperatures.parameters(), *own] if p.requires_grad]
        self.optimizer = build_optimizer(self.params, config.lr, device)
        self.batches = self.batch_stream()  # full batches, their order a function of the seed
        self.valid_subset = checked.valid_subset  # --eval-images N: check_run's rule (a random subset, or the first N)
        self.valid_images = validation_images(dataset.valid, config.eval_images, self.valid_subset)
        self.context = context = setup_distributed(device)
        if context.world_size != checked.world_size:  # torchrun sets WORLD_SIZE; a process group of another size
            raise ValueError(f"the process group has {context.world_size} processes, but WORLD_SIZE is "
                             f"{checked.world_size}")
        self.shard_size = config.batch_size // (context.world_size * config.grad_accum)
        self.generator = torch.Generator(device=device)
        self.graphed: GraphedStep | None = None  # --cuda-graph: captured at the first step
        self.compiled = (CompiledLoss(functools.partial(self.shard_loss, generator=None), device)
                         if config.compile else None)  # --compile: the loss as one graph (train.compiled)
        self.snapshot_steps = config.snapshot_step_set  # --snapshot-steps, parsed once
        self.window = LossWindow(min(config.log_every, max(config.steps, 1)), device, context,
                                  len(config.seed_list))

        # ----- resume: parameters, Adam, step, data position, RNG states, the row in progress ---------------
        self.step, self.best_bound, self.elapsed, self.validation_due = 0, None, 0.0, False
        self.devices: list[list[Any]] = []  # [first step, device] of each stretch of training, across resumes
        if checkpoint is not None:
            self._restore(checkpoint)
        else:
            _seed_globals(config.seed)
        here = describe_device(device)
        if not self.devices or self.devices[-1][1] != here:
            self.devices.append([self.step, here])
        if context.is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_config(config, out / "config.toml")
        self.open_logs()
        self.board = (TensorBoardLog(out / "tensorboard", first_step=self.step + 1)
                      if config.tensorboard and context.is_main else None)
        self.last_loss: float | None = None
        self.t0 = self.row_t0 = time.perf_counter()
        self.row_first_step = self.step  # steps/s counts the steps taken since row_t0 (not those before a resume)
        self.bar = tqdm(total=config.steps, initial=self.step, unit="step", dynamic_ncols=True,
                        disable=None if (config.progress and context.is_main) else True)

    def initial_model(self) -> TrainableModel:
        """The model at step 0, initialised from the run's seed (the global RNG untouched)."""
        return seeded_model(self.config, self.config.seed, self.dataset.train_mean)

    def build_objective(self) -> tuple[Callable[..., Tensor], nn.Module | None]:
        """The training objective and the module of its own state (an estimator's baselines), if any."""
        return _build_objective(self.config, self.model)

    def batch_stream(self) -> Any:
        """The training batches: an endless stream whose order is a function of the seed."""
        return self.dataset.train_batches(self.config.batch_size, seed=self.config.seed, drop_last=True)

    def open_logs(self) -> None:
        """``metrics.jsonl`` (cut back to the resumed step) and, with ``--tensorboard``, the event files."""
        if self.context.is_main:
            truncate_metrics(self.out / "metrics.jsonl", self.step)
        self.metrics = MetricsWriter(self.out / "metrics.jsonl", enabled=self.context.is_main)

    def _restore(self, checkpoint: Checkpoint) -> None:
        self.model.load_state_dict(checkpoint.model_state)
        self.temperatures.load_state_dict(checkpoint.extra["temperatures"])
        if self.objective_state is not None:  # estimator training: baselines and running moments
            self.objective_state.load_state_dict(checkpoint.extra["estimator"])
        self.optimizer.load_state_dict(checkpoint.optimizer_state)
        self.batches.load_state_dict(checkpoint.data_state)
        restore_global_rng(checkpoint.rng)
        self.step, self.best_bound, self.elapsed = checkpoint.step, checkpoint.best_valid, checkpoint.extra["elapsed"]
        # the losses since the run's last row: the next row covers them, whatever --log-every they were gathered under
        pending = list(checkpoint.extra["loss_window"])
        self.window.load(pending, next_row_step(self.step, self.config.log_every, self.config.steps) - self.step)
        self.validation_due = bool(checkpoint.extra["validation_due"])
        self.devices = [list(segment) for segment in checkpoint.extra["devices"]]
        logger.info("resumed %s at step %d", self.out, self.step)

    # ----- the loop ---------------------------------------------------------------------------------------------
    def train(self, stop: StopSignals) -> None:
        config = self.config
        replicas = len(config.seed_list)
        logger.info(
            "training %s (%d parameters%s) with %s, m=%d, on %s%s: steps %d..%d",
            config.model, sum(p.numel() for p in self.model.parameters()) // replicas,
            "" if replicas == 1 else f"; {replicas} replicas, seeds {config.seeds}",
            f"{DISCRETE_OBJECTIVE} ({config.estimator})" if config.estimator else config.objective or "relaxed",
            config.samples, self.device, f" x{self.context.world_size} processes" if self.context.enabled else "",
            self.step, config.steps,
        )
        if self.validation_due:  # a validation abandoned by a signal before the checkpoint: do it now
            self.validation_due = not self.run_validation(stop)
        while self.step < config.steps and not stop.requested and not self.validation_due:
            if not self.take_step(stop):
                break  # a signal arrived during the step: it was abandoned
            self.flush(stop)
        if stop.requested or self.validation_due:
            self.stop_cleanly(stop)
        elif self.resumed_at is not None and self.step == self.resumed_at == config.steps:
            self.save_last()  # a resumed run that only owed its final validation

    def take_step(self, stop: StopSignals) -> bool:
        """One optimizer step on the next batch (split into ``grad_accum`` x world-size shards); False, with the
        batch put back and no optimizer step, when a signal arrived meanwhile."""
        config, step = self.config, self.step
        lr = learning_rate(config.lr, step, schedule=config.lr_schedule, warmup_steps=config.warmup_steps,
                           horizon=config.lr_horizon)
        prior_t, posterior_t = self.temperatures(step)
        position = self.batches.state_dict()
        x = next(self.batches).to(self.device, non_blocking=True)  # (batch_size, D), the global batch
        if config.cuda_graph:  # the whole step, Adam's update included, as one CUDA graph (train.graphed)
            if stop.requested:
                self.batches.load_state_dict(position)
                return False
            if self.graphed is None:
                self.graphed = GraphedStep(functools.partial(self.shard_loss, generator=self.generator),
                                           self.optimizer, example=x, generator=self.generator,
                                           state=step_state(self.model, self.objective_state))
            self.window.add(self.graphed(x, lr=lr, prior_t=prior_t, posterior_t=posterior_t,
                                         seed=self.noise_seed(step, 0)))
            return self.close_step()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.backward(x, step, prior_t, posterior_t)
        want_stop = stop.requested
        if self.context.enabled and all_reduce_gradients(self.params, want_stop, self.context):
            want_stop = True
        if want_stop:  # no optimizer step after a signal: abandon this step, put its batch back
            self.optimizer.zero_grad(set_to_none=True)
            self.window.values[self.window.count] = 0.0
            self.batches.load_state_dict(position)
            return False
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return self.close_step()

    def close_step(self) -> bool:
        self.step += 1
        self.window.close_step()
        self.bar.update(1)
        return True

    def noise_seed(self, step: int, shard: int) -> int:
        """The seed of the sampling noise of ``shard`` at ``step``: a fixed function of ``(seed, step, shard)``."""
        return derive_seed(self.config.seed, step, shard)

    def shard_loss(self, x: Tensor, prior_t: float | Tensor, posterior_t: float | Tensor, *,
                   generator: torch.Generator | None) -> Tensor:
        """``-bound.mean()`` of the objective on the rows ``x``, its noise drawn from ``generator`` (None: the
        device's default generator, as the compiled loss draws it)."""
        bound = self.objective(self.model, x, samples=self.config.samples, prior_temperature=prior_t,
                               posterior_temperature=posterior_t, generator=generator)  # (rows,)
        return -bound.mean()

    def backward(self, x: Tensor, step: int, prior_t: float | Tensor, posterior_t: float | Tensor) -> None:
        """Gradients of the loss on the global batch ``x``, shard by shard (``grad_accum`` x world size shards; this
        process's), each shard's noise seeded with ``noise_seed``."""
        config = self.config
        for a in range(config.grad_accum):
            shard = self.context.rank * config.grad_accum + a
            x_shard = x[shard * self.shard_size : (shard + 1) * self.shard_size]  # (shard_size, D)
            if self.compiled is not None:  # the same noise, drawn inside the compiled graph
                loss = self.compiled(x_shard, prior_t, posterior_t, seed=self.noise_seed(step, shard))
            else:
                self.generator.manual_seed(self.noise_seed(step, shard))
                loss = self.shard_loss(x_shard, prior_t, posterior_t, generator=self.generator)
            loss = loss / config.grad_accum
            (loss if loss.dim() == 0 else loss.sum()).backward()  # replicas: the sum of their losses
            self.window.add(loss)

    def flush(self, stop: StopSignals) -> None:
        """The one flush point of a step: a metrics row, a validation, a checkpoint, each when it is due."""
        config, step = self.config, self.step
        last_step = step == config.steps
        if step % config.log_every == 0 or last_step:
            self.last_loss = self.write_row()
            self.bar.set_postfix(bound=f"{-self.last_loss:.2f}", refresh=False)
        if config.eval_every and (step % config.eval_every == 0 or last_step):
            self.validation_due = not self.run_validation(stop)
            if self.context.enabled and any_rank(self.validation_due or stop.requested, self.context, self.device):
                stop.signal = stop.signal or signal.SIGTERM
        if self.validation_due or stop.requested:
            return  # stop_cleanly saves the checkpoint
        if last_step or (config.checkpoint_every and step % config.checkpoint_every == 0):
            self.save_last()
        if step in self.snapshot_steps:
            self.save_snapshot()

    def stop_cleanly(self, stop: StopSignals) -> None:
        self.save_last(owes_validation=self.validation_due)
        if self.step in self.snapshot_steps:  # a signal at a snapshot's step: flush returned before it
            self.save_snapshot()
        stopped = signal.Signals(stop.signal or signal.SIGTERM)
        logger.info("stopped by %s at step %d; checkpoint saved to %s (continue with --resume)", stopped.name,
                    self.step, self.last_path)

    # ----- metrics rows, validation, checkpoints ----------------------------------------------------------------
    def log_row(self, row: dict[str, Any]) -> None:
        self.metrics.write(row)
        if self.board is not None:
            self.board.row(row)

    def write_row(self) -> float:
        """The metrics row of the steps since the last one; returns its mean training loss (a negative bound)."""
        values = self.window.read(self.step, self.last_path)
        now = time.perf_counter()
        prior_t, posterior_t = self.temperatures(self.step)
        loss = sum(values) / len(values)
        self.log_row({
            "step": self.step,
            "loss": loss,
            "prior_temperature": float(torch.as_tensor(prior_t).detach()),
            "posterior_temperature": float(torch.as_tensor(posterior_t).detach()),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "time": self.elapsed + now - self.t0,
            "steps_per_s": (self.step - self.row_first_step) / max(now - self.row_t0, 1e-9),
        })
        self.window.reset()
        self.row_t0, self.row_first_step = now, self.step
        return loss

    def run_validation(self, stop: StopSignals) -> bool:
        """Validate at this step (rank 0) and keep the best checkpoint; False when a signal abandoned it."""
        config = self.config
        if not self.context.is_main:
            return True
        try:
            with stop.abortable():  # the evaluation's own rules: batch b's samples seeded with (seed, b)
                bound, _ = resumable_bound_per_image(self.model, self.valid_images, config.eval_k, state=None,
                                                     seed=derive_seed(config.seed, "validation"),
                                                     batch_size=config.eval_batch_size,
                                                     chunk_size=config.eval_chunk_size)
        except PhaseAborted:
            logger.info("validation at step %d abandoned by %s; it is owed to the resumed run", self.step,
                        signal.Signals(stop.signal or signal.SIGTERM).name)
            return False
        valid_nll = -float(bound.mean())
        self.log_row({"step": self.step, "valid_nll": valid_nll, "valid_k": config.eval_k,
                      "valid_images": int(bound.shape[0]), "time": self.elapsed + time.perf_counter() - self.t0})
        if self.board is not None:
            self.board.samples(self.step, self.model, self.dataset.image_shape,
                               self.valid_images[:16].to(self.device, torch.float32),
                               torch.Generator(device=self.device).manual_seed(derive_seed(config.seed, "samples")))
        logger.info("step %d: validation -L_%d = %.3f nats", self.step, config.eval_k, valid_nll)
        if self.best_bound is None or -valid_nll > self.best_bound:
            self.best_bound = -valid_nll
            save_checkpoint(self.best_path, self.checkpoint(self.row_losses(), False))
        return True

    def checkpoint(self, pending_losses: list[float], owes_validation: bool) -> Checkpoint:
        extra = {"temperatures": self.temperatures.state_dict(),
                 "elapsed": self.elapsed + time.perf_counter() - self.t0,
                 "loss_window": pending_losses, "validation_due": owes_validation, "valid_subset": self.valid_subset,
                 "resolved_temperatures": list(self.config.temperatures), "devices": self.devices}
        if self.objective_state is not None:
            extra["estimator"] = self.objective_state.state_dict()
        return Checkpoint(
            step=self.step,
            model_state=self.model.state_dict(),
            optimizer_state=_portable_optimizer_state(self.optimizer),
            rng=capture_global_rng(include_cuda=self.device.type == "cuda"),
            data_state=self.batches.state_dict(),
            best_valid=self.best_bound,
            config=config_to_dict(self.config),
            model_args=self.model.model_args(),
            extra=extra,
        )

    def save_last(self, owes_validation: bool = False) -> None:
        pending = self.window.read(self.step, self.last_path)  # collective; checks for NaN before writing
        if self.context.is_main:
            save_checkpoint(self.last_path, self.checkpoint(pending, owes_validation))

    def row_losses(self) -> list[Any]:
        """The losses of the metrics row in progress, as a checkpoint taken between flushes stores them."""
        return self.window.values[: self.window.count].tolist()

    def save_snapshot(self) -> None:
        """This step's checkpoint, kept as ``checkpoints/step-{step}.safetensors`` (``--snapshot-steps``)."""
        if self.context.is_main:
            save_checkpoint(self.out / "checkpoints" / f"step-{self.step}.safetensors",
                            self.checkpoint(self.row_losses(), False))

    # ----- the end --------------------------------------------------------------------------------------------
    def close(self) -> None:
        self.bar.close()
        self.metrics.close()
        if self.board is not None:
            self.board.close()
        self.context.close()

    def result(self, stop: StopSignals) -> TrainResult:
        seconds = self.elapsed + time.perf_counter() - self.t0
        if self.context.is_main:
            export_csv(read_metrics(self.out / "metrics.jsonl"), self.out / "metrics.csv")
        stopped_by = None if stop.signal is None else int(stop.signal)
        best_nll = None if self.best_bound is None else -self.best_bound
        return TrainResult(self.step, best_nll, self.last_loss, stopped_by, self.out, seconds)


class _ReplicaRun(_Run):
    """``--seeds``: one replica per seed trained in one process (``concretelab.train.replicas``).

    Replica r is initialised from its seed, reads its own batch stream, and is validated, kept (its best
    checkpoint) and logged as the run of its seed would be, in ``out/seed-{seed}/`` (``config.toml``,
    ``metrics.jsonl`` rows with a ``seed`` column, ``checkpoints/best.safetensors`` and ``last.safetensors``, each
    holding that replica alone). ``out/checkpoints/last.safetensors`` holds all replicas and resumes them bit for
    bit. The sampling noise of step t is drawn for the whole replica batch from one generator seeded with
    ``("replicas", seeds, t)``: every replica's noise is its own slice of that draw, independent of the others'.
    """

    def __init__(self, config: TrainConfig, resume: bool) -> None:
        self.seeds = config.seed_list
        super().__init__(config, resume)
        self.best_bounds: list[float | None] = list(getattr(self, "best_bounds", [None] * len(self.seeds)))
        self.replica_view = seeded_model(config, self.seeds[0], self.dataset.train_mean).to(self.device)
        self.shard_size = config.batch_size * len(self.seeds)  # one shard: every replica's batch
        # --prior-temperatures / --posterior-temperatures: a column (R * batch_size, 1) per side, replica r's
        # temperature on its rows (None: the run's temperatures, shared)
        self.temperature_columns: tuple[Tensor, Tensor] | None = None
        if config.prior_temperatures or config.posterior_temperatures:
            values = torch.tensor(config.replica_temperatures, device=self.device)  # (R, 2)
            column = values.repeat_interleave(config.batch_size, dim=0)  # (R * batch_size, 2)
            self.temperature_columns = (column[:, :1].contiguous(), column[:, 1:].contiguous())

    def initial_model(self) -> TrainableModel:
        mean = self.dataset.train_mean
        return stack_replicas([seeded_model(self.config, seed, mean) for seed in self.seeds])

    def build_objective(self) -> tuple[Callable[..., Tensor], nn.Module | None]:
        """As a single run's, with an estimator's own state (NVIL's baseline networks and running moments) made
        per replica: one estimator per seed, initialised as the run of that seed would, stacked."""
        config = self.config
        if config.estimator is None:
            return super().build_objective()
        estimators = [build_estimator_objective(config.estimator, self.model, seed=seed) for seed in self.seeds]
        if not any(True for _ in estimators[0].parameters()) and not any(True for _ in estimators[0].buffers()):
            return estimators[0].train(), estimators[0]  # stateless (DisARM, VIMCO, ...): nothing to replicate
        stacked = stack_replicas(estimators, stack_buffers=True).train()
        return stacked, stacked

    def batch_stream(self) -> ReplicaBatches:
        size = self.config.batch_size
        return ReplicaBatches([self.dataset.train_batches(size, seed=seed, drop_last=True) for seed in self.seeds])

    def replica_config(self, seed: int) -> TrainConfig:
        """The configuration of seed ``seed``'s replica as a run of its own (``seed``, its temperatures where they
        are per replica, its folder as ``out``)."""
        config = self.config
        own: dict[str, Any] = {}
        if config.prior_temperatures or config.posterior_temperatures:
            prior, posterior = config.replica_temperatures[self.seeds.index(seed)]
            own = {"prior_temperature": prior, "posterior_temperature": posterior, "prior_temperatures": None,
                   "posterior_temperatures": None}
        return dataclasses.replace(config, seed=seed, seeds=None, out=str(replica_folder(self.out, seed)), **own)

    def open_logs(self) -> None:
        self.metrics_by_seed: dict[int, MetricsWriter] = {}
        for seed in self.seeds:
            folder = replica_folder(self.out, seed)
            folder.mkdir(parents=True, exist_ok=True)
            write_config(self.replica_config(seed), folder / "config.toml")
            truncate_metrics(folder / "metrics.jsonl", self.step)
            self.metrics_by_seed[seed] = MetricsWriter(folder / "metrics.jsonl")
        self.metrics = self.metrics_by_seed[self.seeds[0]]

    def log_row(self, row: dict[str, Any]) -> None:
        self.metrics_by_seed[row["seed"]].write(row)

    def noise_seed(self, step: int, shard: int) -> int:
        """The seed of the replicas' noise at ``step``: ``("replicas", seeds, step)`` (one shard)."""
        return derive_seed("replicas", self.config.seeds or "", step)

    def shard_loss(self, x: Tensor, prior_t: float | Tensor, posterior_t: float | Tensor, *,
                   generator: torch.Generator | None) -> Tensor:
        """The replicas' losses ``-bound.mean()``, shape (R,), on the replica-major batch ``x`` of
        ``(R * batch_size, D)``, its noise drawn from ``generator``; the gradient of their sum is each replica's
        own."""
        if self.temperature_columns is not None:  # each replica at its own temperatures
            prior_t, posterior_t = self.temperature_columns
        bound = self.objective(self.model, x, samples=self.config.samples, prior_temperature=prior_t,
                               posterior_temperature=posterior_t, generator=generator)  # (R * batch_size,)
        return -bound.view(len(self.seeds), -1).mean(1)

    def write_row(self) -> float:
        values = self.window.read(self.step, self.last_path)  # (rows, R)
        now = time.perf_counter()
        prior_t, posterior_t = self.temperatures(self.step)
        losses = [sum(column) / len(column) for column in zip(*values, strict=True)]
        shared = {
            "prior_temperature": float(torch.as_tensor(prior_t).detach()),
            "posterior_temperature": float(torch.as_tensor(posterior_t).detach()),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "time": self.elapsed + now - self.t0,
            "steps_per_s": (self.step - self.row_first_step) / max(now - self.row_t0, 1e-9),
        }
        own = self.config.replica_temperatures if self.temperature_columns is not None else None
        for replica, (seed, loss) in enumerate(zip(self.seeds, losses, strict=True)):
            row = {"step": self.step, "seed": seed, "loss": loss, **shared}
            if own is not None:
                row["prior_temperature"], row["posterior_temperature"] = own[replica]
            self.log_row(row)
        self.window.reset()
        self.row_t0, self.row_first_step = now, self.step
        return sum(losses) / len(losses)

    def run_validation(self, stop: StopSignals) -> bool:
        """Validate each replica as the run of its seed would (the same images, k and seeds of the bound) and keep
        each replica's best checkpoint; False when a signal abandoned it."""
        config = self.config
        bounds = []
        try:
            with stop.abortable():
                for replica, seed in enumerate(self.seeds):
                    self.replica_view.load_state_dict(replica_state(self.model, replica))
                    bound, _ = resumable_bound_per_image(self.replica_view, self.valid_images, config.eval_k,
                                                         state=None, seed=derive_seed(seed, "validation"),
                                                         batch_size=config.eval_batch_size,
                                                         chunk_size=config.eval_chunk_size)
                    bounds.append(bound)
        except PhaseAborted:
            logger.info("validation at step %d abandoned by %s; it is owed to the resumed run", self.step,
                        signal.Signals(stop.signal or signal.SIGTERM).name)
            return False
        improved = []
        for replica, (seed, bound) in enumerate(zip(self.seeds, bounds, strict=True)):
            valid_nll = -float(bound.mean())
            self.log_row({"step": self.step, "seed": seed, "valid_nll": valid_nll, "valid_k": config.eval_k,
                          "valid_images": int(bound.shape[0]), "time": self.elapsed + time.perf_counter() - self.t0})
            best = self.best_bounds[replica]
            if best is None or -valid_nll > best:
                self.best_bounds[replica] = -valid_nll
                improved.append(replica)
        if improved:  # each improved replica's best, cut from one checkpoint of all replicas at this step
            stacked = self.checkpoint(self.row_losses(), False)
            for replica in improved:
                save_checkpoint(replica_folder(self.out, self.seeds[replica]) / "checkpoints" / "best.safetensors",
                                self.replica_checkpoint(replica, stacked))
        logger.info("step %d: validation -L_%d = %s nats (seeds %s)", self.step, config.eval_k,
                    ", ".join(f"{-float(b.mean()):.3f}" for b in bounds), ", ".join(map(str, self.seeds)))
        return True

    def checkpoint(self, pending_losses: list[Any], owes_validation: bool) -> Checkpoint:
        checkpoint = super().checkpoint(pending_losses, owes_validation)
        checkpoint.extra["seeds"] = list(self.seeds)
        checkpoint.extra["replica_best_valid"] = list(getattr(self, "best_bounds", [None] * len(self.seeds)))
        return checkpoint

    def replica_checkpoint(self, replica: int, stacked: Checkpoint) -> Checkpoint:
        """Replica ``replica`` as a checkpoint of its own run (read by ``load_run`` and ``evaluate``), cut from the
        checkpoint of all replicas at this step."""
        seed = self.seeds[replica]
        extra = {key: value for key, value in stacked.extra.items() if key not in ("seeds", "replica_best_valid")}
        extra["loss_window"] = [row[replica] for row in stacked.extra["loss_window"]]
        extra["replica_of"] = {"run": str(self.out), "seeds": list(self.seeds)}
        if getattr(self.objective_state, "replicas", 1) > 1:  # NVIL's baselines and moments: this replica's
            extra["estimator"] = replica_state(self.objective_state, replica)
        return Checkpoint(
            step=self.step,
            model_state=replica_state(self.model, replica),
            optimizer_state=replica_optimizer_state(stacked.optimizer_state, replica),
            rng=stacked.rng,
            data_state=self.batches.streams[replica].state_dict(),
            best_valid=self.best_bounds[replica],
            config=config_to_dict(self.replica_config(seed)),
            model_args=self.replica_view.model_args(),
            extra=extra,
        )

    def save_last(self, owes_validation: bool = False) -> None:
        pending = self.window.read(self.step, self.last_path)  # checks for NaN before writing
        stacked = self.checkpoint(pending, owes_validation)
        for replica, seed in enumerate(self.seeds):  # each replica's own view, then the resumable whole
            save_checkpoint(replica_folder(self.out, seed) / "checkpoints" / "last.safetensors",
                            self.replica_checkpoint(replica, stacked))
        save_checkpoint(self.last_path, stacked)

    def save_snapshot(self) -> None:
        """Each replica's checkpoint of this step, kept in its folder as ``checkpoints/step-{step}.safetensors``."""
        stacked = self.checkpoint(self.row_losses(), False)
        for replica, seed in enumerate(self.seeds):
            save_checkpoint(replica_folder(self.out, seed) / "checkpoints" / f"step-{self.step}.safetensors",
                            self.replica_checkpoint(replica, stacked))

    def _restore(self, checkpoint: Checkpoint) -> None:
        super()._restore(checkpoint)
        saved = checkpoint.extra.get("seeds")
        if saved != list(self.seeds):
            raise ValueError(f"cannot resume with --seeds {self.config.seeds}: the checkpoint holds replicas of seeds "
                             f"{saved}")
        self.best_bounds = list(checkpoint.extra["replica_best_valid"])

    def close(self) -> None:
        super().close()
        for writer in self.metrics_by_seed.values():
            writer.close()

    def result(self, stop: StopSignals) -> TrainResult:
        seconds = self.elapsed + time.perf_counter() - self.t0
        for seed in self.seeds:
            folder = replica_folder(self.out, seed)
            export_csv(read_metrics(folder / "metrics.jsonl"), folder / "metrics.csv")
        stopped_by = None if stop.signal is None else int(stop.signal)
        by_seed = {seed: None if best is None else -best for seed, best in zip(self.seeds, self.best_bounds,
                                                                               strict=True)}
        finished = [nll for nll in by_seed.values() if nll is not None]
        mean = sum(finished) / len(finished) if len(finished) == len(by_seed) else None
        return TrainResult(self.step, mean, self.last_loss, stopped_by, self.out, seconds, by_seed)
