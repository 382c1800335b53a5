"""Every check ``concretelab train`` makes before its first step, writing nothing (``check_run``; ``train
--dry-run`` runs the same function): the estimator and objective, the device, the run folder and what a resumed
run may change (old run folders read through ``concretelab.train.migrate``), the memory the run needs, the data
against the model, ``--seeds`` and ``--cuda-graph``. Each refusal is a ValueError naming the flag."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from concretelab.data import SUBSET_SEED, Dataset, fixed_subset, load_dataset
from concretelab.devices import resolve_device
from concretelab.models import build_model
from concretelab.objectives import OBJECTIVES
from concretelab.train.checkpoint import Checkpoint, load_checkpoint
from concretelab.train.config import MUTABLE_ON_RESUME, TrainConfig, config_to_dict
from concretelab.train.discrete import check_estimator_config
from concretelab.train.migrate import TEMPERATURE_KEYS, migrate_checkpoint
from concretelab.train.replicas import replica_folder
from concretelab.train.resources import check_resources, model_input_size
from concretelab.train.tensorboard import require_tensorboard

__all__ = ["VALID_SUBSETS", "CheckedRun", "check_run", "validation_images"]


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
    if checkpoint.best_valid is not None:  # the best checkpoint so far was chosen by these bounds
        for key in ("eval_k", "eval_images"):
            if key in saved and current[key] != saved[key]:
                flag = "--" + key.replace("_", "-")
                raise ValueError(
                    f"cannot resume with {flag} {current[key]!r}: the best checkpoint so far was chosen by validation "
                    f"with {flag} {saved[key]!r}, and a bound with another k or other images is not comparable with "
                    f"it; keep {flag} {saved[key]!r}, or train in a new run folder"
                )
    changed = sorted(
        key for key, value in saved.items()
        if key in current and key not in MUTABLE_ON_RESUME and key not in TEMPERATURE_KEYS and current[key] != value
    )
    if changed:
        key = changed[0]
        flag = "--" + key.replace("_", "-")
        raise ValueError(
            f"cannot resume with {flag} {current[key]!r}: the checkpoint was trained with {flag} {saved[key]!r} "
            f"(only {', '.join('--' + k.replace('_', '-') for k in sorted(MUTABLE_ON_RESUME))} may change on resume)"
        )


def _warn_on_two_temperatures_without_proposal(config: TrainConfig, model: nn.Module) -> None:
    """Warn when a model whose relaxed prior is its proposal (``proposal_is_prior``, as the relaxed objectives read
    it) trains the relaxed bound at two temperatures: the bound then also maximises a ratio of two relaxed
    densities of the same logits. Two temperatures are two different constants, two different schedules (a
    schedule replaces its constant), a schedule beside a constant, or two learned ones (they drift apart)."""
    relaxed_bound = config.estimator is None and (config.objective or "relaxed") == "relaxed"
    if not (relaxed_bound and getattr(model, "proposal_is_prior", False)):
        return
    prior, posterior = config.temperatures
    if config.learnable_temperature:
        how = f"--learnable-temperature (from {prior:g} and {posterior:g}, learned separately)"
    elif (config.prior_schedule or prior) != (config.posterior_schedule or posterior):
        how = " and ".join(
            f"--{side}-schedule {schedule}" if schedule else f"--{side}-temperature {constant:g}"
            for side, constant, schedule in (
                ("prior", prior, config.prior_schedule),
                ("posterior", posterior, config.posterior_schedule),
            )
        )
    else:
        return
    warnings.warn(
        f"--model {config.model} predicts with its conditional prior as the proposal, so the relaxed bound at "
        f"{how} also maximises the ratio of two relaxed densities of the same logits; at m = 5 that cost 14 nats "
        "of validation -L_100 (docs/objectives.md). Give both temperatures the same constant or schedule",
        UserWarning,
        stacklevel=3,
    )


def _check_resumed_temperatures(config: TrainConfig, checkpoint: Checkpoint) -> None:
    """A resumed run goes on at the constant temperatures it trained at, as its checkpoint records them
    (``resolved_temperatures``; ``migrate_checkpoint`` reads them for older run
    folders). Giving them explicitly on resume, where the run left them unset, is not a change. (Schedules are
    compared as config strings; learned temperatures are restored from the checkpoint, whatever their starting
    values; the discrete estimators use no temperature.)"""
    scheduled = config.prior_schedule or config.posterior_schedule
    if config.estimator is not None or config.learnable_temperature or scheduled:
        return
    trained = checkpoint.extra.get("resolved_temperatures")
    if trained is None:
        return
    trained = [float(value) for value in trained]
    for side, now, then in zip(("prior", "posterior"), config.temperatures, trained, strict=True):
        if not math.isclose(now, then, rel_tol=1e-6):
            raise ValueError(
                f"cannot resume with --{side}-temperature {now:.10g}: this run trained at {then:.10g} (a flag "
                f"changed, or a default that has changed since); pass --prior-temperature {trained[0]:.10g} "
                f"--posterior-temperature {trained[1]:.10g} to continue it, or train in a new run folder"
            )


VALID_SUBSETS = ("random", "first")  # how --eval-images N picks its images: fixed_subset's rule, or (legacy) first N


def validation_images(images: Tensor, count: int | None, rule: str = "random") -> Tensor:
    """The validation images of ``--eval-images count``: all of them (None), a fixed random subset
    (``concretelab.data.fixed_subset`` with seed 0, as ``concretelab evaluate --num-images``: the splits are not
    in random order) or, for runs that validated that way before, the first ``count``."""
    if rule not in VALID_SUBSETS:
        raise ValueError(f"valid_subset must be one of {', '.join(VALID_SUBSETS)}, got {rule!r}")
    if count is None:
        return images
    if rule == "first":
        return images[:count]
    subset = fixed_subset(images.shape[0], count, SUBSET_SEED)
    return images if subset is None else images[subset]


@dataclasses.dataclass
class CheckedRun:
    """What ``check_run`` found while checking a request: the device, the checkpoint a ``--resume`` continues
    from (None for a fresh run), the data set, the model's architecture on the meta device (no memory), the rule
    that picks the validation images and the number of data-parallel processes."""

    device: torch.device
    checkpoint: Checkpoint | None
    dataset: Dataset
    architecture: nn.Module
    valid_subset: str
    world_size: int


def check_run(config: TrainConfig, *, resume: bool = False) -> CheckedRun:
    """Every check ``train`` makes before its first step, in its order, writing nothing: raises ``ValueError``
    naming the flag (``FileNotFoundError`` for missing data) where ``train`` would refuse ``config``.

    The estimator, objective and model (``check_estimator_config``), the device,
    the run folder (a run there needs ``--resume``; a resumed run may change only what
    ``MUTABLE_ON_RESUME`` lists, at the temperatures it trained at), the memory the
    run needs (``check_resources``), TensorBoard, the data against the model and
    the batch size against the data and the shards. ``concretelab train --dry-run`` calls it, so what the dry run
    accepts, training accepts. Warns, as training does, where a flag combination is known to cost nats.
    """
    check_estimator_config(config)  # ValueError naming --estimator/--samples/--objective/--model
    if config.estimator is None and (config.objective or "relaxed") not in OBJECTIVES:
        raise ValueError(
            f"--objective {config.objective}: unknown objective; expected one of {', '.join(sorted(OBJECTIVES))}"
        )
    device = resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    out = Path(config.out)
    last_path = out / "checkpoints" / "last.safetensors"
    checkpoint: Checkpoint | None = None
    if resume and last_path.exists():
        checkpoint = migrate_checkpoint(load_checkpoint(last_path), out / "metrics.jsonl")  # older run folders
        replica_of = checkpoint.extra.get("replica_of")
        if replica_of is not None:
            raise ValueError(f"{out} is one replica of the --seeds run in {replica_of['run']}; resume that run "
                             f"(--out {replica_of['run']} --resume), which holds all its replicas")
        _check_resume(config, checkpoint)
        _check_resumed_temperatures(config, checkpoint)
    elif not resume and last_path.exists():
        raise ValueError(f"{out} already holds a run (checkpoints/last.safetensors); pass --resume or another --out")
    check_resources(config, device)  # ValueError naming --model/--samples/--log-every/... when it cannot fit
    if config.tensorboard:
        require_tensorboard()  # ValueError naming --tensorboard and the install command
    dataset = load_dataset(config.data)
    with torch.device("meta"):  # the architecture alone, without memory, to check it against the data
        architecture = build_model(config.model, categories=config.categories)
    pixels = int(dataset.train.shape[1])
    if model_input_size(architecture) != pixels:
        raise ValueError(
            f"--model {config.model} has {model_input_size(architecture)} visible units, but --data {config.data} "
            f"has {pixels} pixels per image"
        )
    if config.batch_size > dataset.train.shape[0]:
        raise ValueError(
            f"--batch-size {config.batch_size} exceeds the {dataset.train.shape[0]} training images of --data "
            f"{config.data}; every batch is full, so use at most {dataset.train.shape[0]}"
        )
    world_size = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun's; the process group is joined by train only
    shards = max(world_size, 1) * config.grad_accum
    if config.batch_size % shards:
        raise ValueError(f"--batch-size {config.batch_size} must be divisible by world_size x --grad-accum ({shards})")
    _check_replicas(config, max(world_size, 1))  # --seeds: what one batched model cannot train
    _check_compile(config)
    _check_cuda_graph(config, device, max(world_size, 1))
    _warn_on_two_temperatures_without_proposal(config, architecture)
    # --eval-images N: a fixed random subset (evaluate's rule); a run that validated on the first N images before
    # the subset was random keeps them, so that its best checkpoint stays comparable
    valid_subset = "random" if checkpoint is None else str(checkpoint.extra["valid_subset"])
    return CheckedRun(device, checkpoint, dataset, architecture, valid_subset, max(world_size, 1))


def _check_cuda_graph(config: TrainConfig, device: torch.device, world_size: int) -> None:
    """ValueError naming the flag where ``--cuda-graph`` cannot capture ``config``'s step."""
    if not config.cuda_graph:
        return
    if device.type != "cuda":
        raise ValueError(f"--cuda-graph needs a CUDA device; --device {config.device} resolved to {device}")
    if config.grad_accum != 1 or world_size > 1:
        raise ValueError(f"--cuda-graph captures one step of one process; --grad-accum must be 1 (got "
                         f"{config.grad_accum}) and WORLD_SIZE 1 (got {world_size})")
    if config.learnable_temperature:
        raise ValueError("--cuda-graph cannot be combined with --learnable-temperature (the captured step reads the "
                         "temperatures as given, not learned)")


def _check_compile(config: TrainConfig) -> None:
    """ValueError naming the flag where ``--compile`` cannot compile ``config``'s loss."""
    if not config.compile:
        return
    if config.estimator is not None:
        raise ValueError(f"--compile compiles the relaxed objectives' loss; --estimator {config.estimator} trains the "
                         "discrete objective, whose estimators keep state of their own between steps: leave out "
                         "--compile")
    if config.cuda_graph:
        raise ValueError("--compile cannot be combined with --cuda-graph: the CUDA graph already records the whole "
                         "step; choose one")


def _check_replicas(config: TrainConfig, world_size: int) -> None:
    """ValueError naming the flag where ``--seeds`` cannot train ``config``'s replicas as one batched model."""
    if config.seeds is None:
        return
    if config.grad_accum != 1 or world_size > 1:
        raise ValueError(
            f"--seeds trains its replicas as one batch per step in one process; --grad-accum must be 1 (got "
            f"{config.grad_accum}) and WORLD_SIZE 1 (got {world_size}): run one process per seed instead"
        )
    if config.learnable_temperature:
        raise ValueError("--learnable-temperature cannot be combined with --seeds: the learned temperatures would be "
                         "shared by the replicas, which must not share anything; train one seed per run")
    if config.tensorboard:
        raise ValueError("--tensorboard cannot be combined with --seeds; each replica's metrics are in "
                         f"{replica_folder(config.out, config.seed_list[0])}/metrics.jsonl and its neighbours")
