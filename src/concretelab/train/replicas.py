"""Independent replicas of one model trained in one process (``concretelab train --seeds``).

R models of the same architecture, one per seed, become one model whose parameters carry a leading replica
dimension: every ``nn.Linear`` becomes a ``ReplicaLinear`` (weights ``(R, out, in)``, one batched matmul,
``baddbmm``, for all replicas) and every other parameter (an SBN's top prior bias) is stacked to ``(R, *shape)``.
The replicas share nothing else: a batch is the R replicas' batches one after the other (replica-major rows,
``(R * b, D)``), so each row only ever meets its own replica's weights, and the loss is the sum of the replicas'
losses, whose gradient with respect to replica r's parameters is replica r's own gradient. Adam acts element by
element, so one fused Adam over the stacked parameters is R independent Adams.

A replica is taken out again as an ordinary model with ``replica_state`` (its slice of every stacked tensor):
validation, the best checkpoint and evaluation see the same model a single-seed run would have.

Layout of a batch: rows ``r * b ... (r + 1) * b - 1`` belong to replica r; tensors with leading sample dimensions
``(m, R * b, ...)`` keep that order in their batch dimension.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "ReplicaBatches",
    "ReplicaLinear",
    "parse_seeds",
    "replica_folder",
    "replica_optimizer_state",
    "replica_seeds",
    "replica_state",
    "stack_replicas",
]

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_seeds(text: str | Sequence[int]) -> tuple[int, ...]:
    """The seeds of ``--seeds``: a comma-separated list of seeds and inclusive ranges (``0-7``, ``0,3,5``,
    ``0-3,8``), or a sequence of ints; ValueError naming ``--seeds`` when empty, negative, repeated or malformed."""
    if isinstance(text, str):
        seeds: list[int] = []
        for part in text.replace(" ", "").split(","):
            match = _RANGE.match(part)
            if not match:
                raise ValueError(f"--seeds must be seeds and ranges such as 0-7 or 0,3,5 (non-negative integers), "
                                 f"got {text!r}")
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            if last < first:
                raise ValueError(f"--seeds range {part!r} runs backwards; write it as {last}-{first}")
            seeds.extend(range(first, last + 1))
    else:
        seeds = list(text)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise ValueError(f"--seeds must hold non-negative integers, got {text!r}")
    if not seeds:
        raise ValueError("--seeds must name at least one seed, got none")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"--seeds names seed {repeated[0]} twice: two replicas of one seed would be the same run")
    return tuple(seeds)


def replica_folder(out: str | Path, seed: int) -> Path:
    """The run folder of seed ``seed``'s replica inside a ``--seeds`` run folder ``out``: ``out/seed-{seed}``."""
    return Path(out) / f"seed-{seed}"


def replica_seeds(run: str | Path) -> list[int]:
    """The seeds whose replica folders (``seed-S`` with ``checkpoints/``) a run folder holds, in order."""
    found = []
    for folder in Path(run).glob("seed-*"):
        suffix = folder.name.removeprefix("seed-")
        if suffix.isdigit() and (folder / "checkpoints").is_dir():
            found.append(int(suffix))
    return sorted(found)


class _ReplicaAffine(torch.autograd.Function):
    """y_r = x_r W_rᵀ + b_r for every replica r, with each product of the backward pass in the operand layout the
    CPU's batched GEMM takes directly: dx_r = dy_r W_r, dW_r = dy_rᵀ x_r (contiguous, ``(R, out, in)`` as the
    weight), db_r = Σ_rows dy_r. Autograd's own backward of ``baddbmm`` with a transposed weight computes dW as
    x_rᵀ dy_r from a transposed view and transposes the result."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:  # x (R, b, in), weight (R, out, in), bias (R, out)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))  # (R, b, out)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        x, weight, _ = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None  # (R, b, in)
        grad_weight = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None  # (R, out, in)
        grad_bias = grad.sum(1) if ctx.needs_input_grad[2] else None  # (R, out)
        return grad_x, grad_weight, grad_bias


class ReplicaLinear(nn.Module):
    """R affine maps applied replica by replica: row block r of the input meets ``weight[r]`` and ``bias[r]``.

    Args:
        weight: ``(R, out, in)``, the replicas' ``nn.Linear`` weights stacked.
        bias: ``(R, out)``.

    ``forward`` takes ``(..., R * b, in)`` (replica-major rows) and returns ``(..., R * b, out)``: one
    ``baddbmm`` over the R replicas, y_r = x_r W_rᵀ + b_r (``_ReplicaAffine``).
    """

    def __init__(self, weight: Tensor, bias: Tensor) -> None:
        super().__init__()
        if weight.dim() != 3 or bias.shape != weight.shape[:2]:
            raise ValueError(f"ReplicaLinear: expected weight (R, out, in) and bias (R, out), got "
                             f"{tuple(weight.shape)} and {tuple(bias.shape)}")
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    @classmethod
    def stack(cls, layers: Sequence[nn.Linear]) -> ReplicaLinear:
        """The replica map of ``layers`` (one ``nn.Linear`` per replica, with biases), their values copied."""
        if any(layer.bias is None for layer in layers):
            raise ValueError("ReplicaLinear.stack: every layer needs a bias")
        return cls(torch.stack([layer.weight.detach() for layer in layers]).clone(),
                   torch.stack([layer.bias.detach() for layer in layers]).clone())

    @property
    def replicas(self) -> int:
        return int(self.weight.shape[0])

    def extra_repr(self) -> str:
        replicas, out_features, in_features = self.weight.shape
        return f"replicas={replicas}, in_features={in_features}, out_features={out_features}"

    def forward(self, x: Tensor) -> Tensor:
        replicas, out_features, in_features = self.weight.shape
        *lead, rows, width = x.shape
        if width != in_features or rows % replicas:
            raise ValueError(f"ReplicaLinear: expected input (..., R * b, {in_features}) with R = {replicas}, got "
                             f"{tuple(x.shape)}")
        b = rows // replicas
        n = 1
        for size in lead:
            n *= size
        if n == 1:  # no sample dimension (or m = 1): a view, no copy
            y = _ReplicaAffine.apply(x.reshape(replicas, b, width), self.weight, self.bias)  # (R, b, out)
            return y.reshape(*lead, rows, out_features)
        grouped = x.reshape(n, replicas, b, width).transpose(0, 1).reshape(replicas, n * b, width)  # (R, n b, in)
        y = _ReplicaAffine.apply(grouped, self.weight, self.bias)  # (R, n b, out)
        return y.reshape(replicas, n, b, out_features).transpose(0, 1).reshape(*lead, rows, out_features)


def stack_replicas(models: Sequence[nn.Module], *, stack_buffers: bool = False) -> nn.Module:
    """One model holding ``models`` (same class and architecture) as replicas; their values are copied.

    The result has the first model's class and structure, with each ``nn.Linear`` replaced by a
    ``ReplicaLinear``, every other parameter stacked to ``(R, *shape)`` and ``replicas = R`` set. Its
    parameter names and order are those of one model, so ``replica_state`` gives back a model's state dict.
    Buffers are constants of a model's architecture, equal across the models and kept once; with
    ``stack_buffers`` they are state of each replica (an estimator's running moments) and stacked as well.
    """
    if len(models) < 2:
        raise ValueError(f"stack_replicas needs at least 2 models, got {len(models)}")
    first = models[0]
    if any(type(m) is not type(first) for m in models):
        raise ValueError("stack_replicas: the models must all be of one class")
    stacked = copy.deepcopy(first)
    for name, module in list(first.named_modules()):
        if isinstance(module, nn.Linear):
            layer = ReplicaLinear.stack([m.get_submodule(name) for m in models])  # type: ignore[misc]
            parent_name, _, child = name.rpartition(".")
            setattr(stacked.get_submodule(parent_name) if parent_name else stacked, child, layer)
    linear_params = {f"{name}.{p}" for name, m in first.named_modules() if isinstance(m, nn.Linear)
                     for p, _ in m.named_parameters(recurse=False)}
    for name, _ in first.named_parameters():
        if name in linear_params:
            continue
        values = torch.stack([m.get_parameter(name).detach() for m in models]).clone()
        parent_name, _, child = name.rpartition(".")
        owner = stacked.get_submodule(parent_name) if parent_name else stacked
        setattr(owner, child, nn.Parameter(values))
    stacked_names = {name for name, _ in stacked.named_parameters()}
    for name, buffer in first.named_buffers():
        if stack_buffers:
            parent_name, _, child = name.rpartition(".")
            owner = stacked.get_submodule(parent_name) if parent_name else stacked
            owner.register_buffer(child, torch.stack([m.get_buffer(name) for m in models]).clone())
            stacked_names.add(name)
        elif any(not torch.equal(m.get_buffer(name), buffer) for m in models[1:]):
            raise ValueError(f"stack_replicas: buffer {name!r} differs between the models; it cannot be shared")
    stacked.replicas = len(models)
    stacked.replica_tensors = frozenset(stacked_names)  # what replica_state slices
    return stacked


def replica_state(stacked: nn.Module, replica: int) -> dict[str, Tensor]:
    """Replica ``replica``'s state dict, as one model of the architecture holds it (its slice of each parameter,
    the shared buffers as they are), detached copies on the stacked model's device."""
    replicas = getattr(stacked, "replicas", 1)
    if not 0 <= replica < replicas:
        raise ValueError(f"replica must be in 0..{replicas - 1}, got {replica}")
    sliced = stacked.replica_tensors
    return {name: (value[replica] if name in sliced else value).detach().clone()
            for name, value in stacked.state_dict().items()}


def replica_optimizer_state(state: dict[str, Any], replica: int) -> dict[str, Any]:
    """Replica ``replica``'s slice of an Adam ``state_dict`` over stacked parameters: each per-parameter tensor
    with a leading replica dimension sliced, scalars (Adam's step count) kept."""
    def cut(value: Any) -> Any:
        return value[replica].clone() if isinstance(value, Tensor) and value.dim() > 0 else value
    return {
        "state": {index: {key: cut(value) for key, value in entry.items()} for index, entry in state["state"].items()},
        "param_groups": copy.deepcopy(state["param_groups"]),
    }


class ReplicaBatches:
    """The replicas' batch streams read together: ``next`` returns their batches one after the other,
    ``(R * b, D)`` replica-major, each stream a function of its own seed
    ([`BatchIterator`][concretelab.data.BatchIterator]). ``state_dict`` holds every stream's position."""

    def __init__(self, streams: Sequence[Any]) -> None:
        self.streams = list(streams)

    def __iter__(self) -> ReplicaBatches:
        return self

    def __next__(self) -> Tensor:
        return torch.cat([next(stream) for stream in self.streams])

    def state_dict(self) -> dict[str, Any]:
        return {"replicas": [stream.state_dict() for stream in self.streams]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("replicas") if isinstance(state, dict) else None
        if not isinstance(saved, list) or len(saved) != len(self.streams):
            raise ValueError(f"ReplicaBatches.load_state_dict: expected the positions of {len(self.streams)} "
                             f"replicas, got {state!r:.200}")
        for stream, position in zip(self.streams, saved, strict=True):
            stream.load_state_dict(position)
