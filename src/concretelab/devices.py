"""Where a run trains or evaluates: the device a ``--device`` flag names, and a description of it in words (recorded
with every result). Used by the trainer, ``evaluate`` and ``reproduce`` alike."""

from __future__ import annotations

import os
import platform

import torch

__all__ = ["describe_device", "resolve_device"]


def describe_device(device: torch.device) -> str:
    """The device a run trains or evaluates on, in words, with torch's version (recorded with each result)."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    return f"{device.type} ({cpu}, {os.cpu_count()} cores, {threads} torch threads), torch {torch.__version__}"


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` is CUDA when available (one device per local rank), else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    return torch.device(name)
