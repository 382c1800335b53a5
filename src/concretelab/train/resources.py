"""Up-front checks that a run fits the machine: memory for the model, its optimizer state, the activations of a
training step and of a validation chunk, estimated before anything is allocated or written, and refused with a
message that names the flag to change (instead of an allocator traceback after the run folder exists).

The estimates are deliberately rough upper bounds (factors stated below); they only catch settings that cannot
fit at all, such as ``--model 200000000H~784V`` or ``--log-every 1e11``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from concretelab.models import build_model

__all__ = ["available_memory", "check_bound_memory", "check_resources", "model_input_size"]

_FLOAT = 4  # bytes per float32
_STATE_COPIES = 6  # parameters, gradients, Adam's two moments, and the state-dict copies of a checkpoint
_ACTIVATION_COPIES = 4  # per linear layer and sample: input, pre-activation, output, and their gradient
_LOG_WINDOW_LIMIT = 2**28  # losses of one metrics row kept on the device (1 GiB of float32)


def available_memory(device: torch.device) -> int:
    """Bytes free for tensors: the free memory of a CUDA device, else MemAvailable of /proc/meminfo (or the
    physical memory where that file does not exist)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 2**62


def model_input_size(model: nn.Module) -> int:
    """Pixels per image the model reads: ``visible`` (SBN, VAE) or upper + lower half (structured prediction)."""
    if hasattr(model, "upper") and hasattr(model, "lower"):
        return int(model.upper) + int(model.lower)
    return int(model.visible)


def _shape_of(model_name: str, categories: int | None) -> tuple[int, int, int]:
    """(parameters, widest layer, number of linear layers) of a model, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = build_model(model_name, categories=categories)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    widest = max([max(m.in_features, m.out_features) for m in linears] or [1])
    return sum(p.numel() for p in model.parameters()), widest, max(len(linears), 1)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_bound_memory(
    model_name: str, categories: int | None, *, batch: int, chunk_size: int | None, device: torch.device,
    flag: str, shape: tuple[int, int, int] | None = None,
) -> None:
    """ValueError naming ``flag`` when one chunk of ``discrete_bound`` (chunk x batch x widest layer, for every
    layer) cannot fit; ``chunk_size=None`` is the bounded default (about 2**23 elements per tensor)."""
    if chunk_size is None:
        return
    _, widest, layers = shape or _shape_of(model_name, categories)
    need = chunk_size * batch * widest * layers * _ACTIVATION_COPIES * _FLOAT
    have = available_memory(device)
    if need > have:
        raise ValueError(
            f"{flag} {chunk_size}: one chunk of the bound for {batch} images would need about {_gib(need)}, and "
            f"{device} has {_gib(have)} available; use a smaller {flag} (or leave it unset: about 2**23 elements "
            "per tensor)"
        )


def check_resources(config: Any, device: torch.device) -> None:
    """Refuse a TrainConfig that cannot fit, naming the flag (see the module docstring)."""
    window = min(config.log_every, max(config.steps, 1))
    if window > _LOG_WINDOW_LIMIT:
        raise ValueError(
            f"--log-every {config.log_every} would keep {window} losses ({_gib(window * _FLOAT)}) on the device "
            f"between metrics rows; use at most {_LOG_WINDOW_LIMIT}"
        )
    shape = _shape_of(config.model, config.categories)
    parameters, widest, layers = shape
    have = available_memory(device)
    replicas = len(getattr(config, "seed_list", (0,)))  # --seeds: every replica holds a model and its activations
    copies = "" if replicas == 1 else f" for each of the {replicas} replicas of --seeds"
    state = parameters * _FLOAT * _STATE_COPIES * replicas
    if state > have:
        raise ValueError(
            f"--model {config.model} has {parameters:,} parameters{copies}; with gradients, Adam's state and "
            f"checkpoints that is about {_gib(state)}, and {device} has {_gib(have)} available"
        )
    activations = (config.batch_size // config.grad_accum * config.samples * widest * layers * _ACTIVATION_COPIES
                   * replicas)
    if state + activations * _FLOAT > have:
        raise ValueError(
            f"--samples {config.samples} x --batch-size {config.batch_size} "
            f"(per shard {config.batch_size // config.grad_accum}) with --model {config.model} needs about "
            f"{_gib(activations * _FLOAT)} of activations per step, and "
            f"{device} has {_gib(have - state)} left after the model; lower --samples or --batch-size, or raise "
            "--grad-accum"
        )
    if config.eval_every:
        check_bound_memory(config.model, config.categories, batch=config.eval_batch_size,
                           chunk_size=config.eval_chunk_size, device=device, flag="--eval-chunk-size", shape=shape)
