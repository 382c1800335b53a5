"""Checkpoints in safetensors (no pickle): tensors in the file body, everything else as JSON in its header.

A checkpoint holds the model's state dict, the optimizer state (Adam's per-parameter tensors flattened to
named tensors, the rest as JSON), the step, the data position, the best validation bound so far, every
random-number state the run uses (its own ``torch.Generator`` objects, torch's global CPU and CUDA states,
Python's ``random`` and numpy's global state), the model arguments and the run configuration. That is all a
resumed run needs to replay an uninterrupted one bit for bit, which nanoGPT's checkpoints (no RNG state,
no data position) cannot.

The header carries a SHA-256 of every tensor (name, dtype, shape, bytes) and of the metadata, so a
truncated or corrupted file is refused with ``CheckpointError`` instead of being half-loaded. Files
are written atomically (temporary file, fsync, ``os.replace``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from concretelab.train.io import atomic_write_bytes

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointError",
    "capture_global_rng",
    "checkpoint_step",
    "load_checkpoint",
    "restore_global_rng",
    "save_checkpoint",
    "saved_step",
]

FORMAT = "concretelab-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, corrupted or of an unknown format."""


@dataclasses.dataclass
class Checkpoint:
    """The contents of a checkpoint file, as Python objects (tensors on the CPU)."""

    step: int
    model_state: dict[str, Tensor]
    optimizer_state: dict[str, Any]
    rng: dict[str, Any]
    data_state: Any
    best_valid: float | None
    config: dict[str, Any]
    model_args: dict[str, Any]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


# --- a JSON encoding of nested state with tensors stored apart -------------------------------------------


def _encode(value: Any, key: str, tensors: dict[str, Tensor]) -> Any:
    """JSON-able form of ``value``; tensors (and numpy arrays) go to ``tensors`` under ``key``."""
    if isinstance(value, Tensor):
        tensors[key] = value.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value)).clone()
        return {"__ndarray__": key}
    if isinstance(value, np.generic):
        return _encode(value.item(), key, tensors)
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__dict__": {k: _encode(v, f"{key}/{k}", tensors) for k, v in value.items()}}
        return {"__items__": [[_encode(k, f"{key}/k{i}", tensors), _encode(v, f"{key}/{i}", tensors)]
                              for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, float) and not np.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a checkpoint (at {key!r})")


def _decode(value: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__ndarray__" in value:
        return tensors[value["__ndarray__"]].numpy()
    if "__dict__" in value:
        return {k: _decode(v, tensors) for k, v in value["__dict__"].items()}
    if "__items__" in value:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__items__"]}
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__float__" in value:
        return float(value["__float__"])
    raise CheckpointError(f"unknown entry in checkpoint metadata: {sorted(value)}")


def _digest(tensors: dict[str, Tensor], metadata: dict[str, str]) -> str:
    """SHA-256 over every tensor (name, dtype, shape, raw bytes, in name order) and the metadata."""
    sha = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        sha.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        sha.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    sha.update(json.dumps(metadata, sort_keys=True).encode())
    return sha.hexdigest()


# --- random-number states -------------------------------------------------------------------------------


def capture_global_rng(include_cuda: bool) -> dict[str, Any]:
    """torch's global CPU (and CUDA) generator states, Python's ``random`` and numpy's global state."""
    states: dict[str, Any] = {
        "torch_cpu": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    if include_cuda and torch.cuda.is_available():
        states["torch_cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_global_rng(states: dict[str, Any]) -> None:
    """Inverse of ``capture_global_rng``."""
    torch.set_rng_state(states["torch_cpu"])
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    if "torch_cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(states["torch_cuda"]))


# --- save / load ----------------------------------------------------------------------------------------


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically, with a checksum in the header."""
    tensors: dict[str, Tensor] = {}
    body = {
        "model_state": _encode(dict(checkpoint.model_state), "model", tensors),
        "optimizer_state": _encode(checkpoint.optimizer_state, "optimizer", tensors),
        "rng": _encode(checkpoint.rng, "rng", tensors),
        "data_state": _encode(checkpoint.data_state, "data", tensors),
        "extra": _encode(checkpoint.extra, "extra", tensors),
    }
    metadata = {
        "format": FORMAT,
        "step": str(int(checkpoint.step)),
        "best_valid": json.dumps(checkpoint.best_valid),
        "config": json.dumps(checkpoint.config, sort_keys=True),
        "model_args": json.dumps(checkpoint.model_args, sort_keys=True),
        "state": json.dumps(body, sort_keys=True),
    }
    metadata["sha256"] = _digest(tensors, metadata)
    atomic_write_bytes(Path(path), st_save(tensors, metadata=metadata))


def _read_header(data: bytes, path: Path) -> dict[str, Any]:
    if len(data) < 8:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated ({len(data)} bytes)")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated: its header announces {length} bytes, "
            f"the file has {len(data) - 8} after the length field"
        )
    try:
        header = json.loads(data[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} has a corrupted header: {error}") from error
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has a corrupted header")
    return header


def checkpoint_step(path: str | Path) -> int:
    """The step a checkpoint file was saved at, read from its header alone (the tensors are neither read nor
    verified: for a progress message or a record, not for resuming)."""
    path = Path(path)
    with path.open("rb") as file:
        head = file.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        header = _read_header(head + file.read(length), path)
    try:
        return int((header.get("__metadata__") or {})["step"])
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} records no step in its header") from error


def saved_step(run: str | Path) -> int | None:
    """The step of run folder ``run``'s last checkpoint (``checkpoints/last.safetensors``), read from its header
    (``checkpoint_step``); None when the run has saved none."""
    last = Path(run) / "checkpoints" / "last.safetensors"
    return checkpoint_step(last) if last.is_file() else None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint; raises [`CheckpointError`][concretelab.train.CheckpointError] if it is truncated or
    corrupted."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    data = path.read_bytes()
    header = _read_header(data, path)
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a {FORMAT} file (format={metadata.get('format')!r})"
        )
    try:
        tensors = st_load(data)
    except Exception as error:  # safetensors raises its own error types for malformed bodies
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted or truncated: {error}") from error
    expected = metadata.pop("sha256", None)
    if expected is None or _digest(tensors, metadata) != expected:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupted: its contents do not match the checksum in its header"
        )
    try:
        body = json.loads(metadata["state"])
        return Checkpoint(
            step=int(metadata["step"]),
            model_state=_decode(body["model_state"], tensors),
            optimizer_state=_decode(body["optimizer_state"], tensors),
            rng=_decode(body["rng"], tensors),
            data_state=_decode(body["data_state"], tensors),
            extra=_decode(body["extra"], tensors),
            best_valid=json.loads(metadata["best_valid"]),
            config=json.loads(metadata["config"]),
            model_args=json.loads(metadata["model_args"]),
        )
    except (KeyError, ValueError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} has incomplete metadata: {error}") from error
