"""Data parallelism over processes started by ``torchrun`` (``torch.distributed.run``).

The trainer reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), joins the process group (gloo on CPU, NCCL on CUDA), lets every rank draw the same
global batch and keep its own slice, and averages the gradients with a single all-reduce of one flat
buffer per step, before the optimizer step. Rank 0 writes every file.

We reduce the gradients ourselves instead of wrapping the model in ``DistributedDataParallel``: the
objectives call the model's methods (``proposal_logits``, ``log_likelihood``, ...) rather than its
``forward``, which DDP needs to arm its reducer, and a parameter that a given objective leaves unused
(for example a learnable temperature held fixed) would stall DDP's buckets. The arithmetic is the
same: the mean over ranks of the per-rank mean gradients. The same flat buffer carries a stop flag, so a
signal seen by any rank stops every rank at the same step.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["Distributed", "all_reduce_gradients", "any_rank", "setup_distributed"]


@dataclasses.dataclass(frozen=True)
class Distributed:
    """Where this process stands: ``rank`` of ``world_size`` (1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def close(self) -> None:
        """Leave the process group if this object joined it."""
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: torch.device) -> Distributed:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1; otherwise a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return Distributed(dist.get_rank(), dist.get_world_size(), local_rank, initialized_here=False)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Distributed(rank, world_size, local_rank, initialized_here=True)


def all_reduce_gradients(params: list[Tensor], stop: bool, context: Distributed) -> bool:
    """Replace every gradient by its mean over ranks (one collective); return whether any rank wants to stop.

    Parameters without a gradient on this rank count as zero and keep no gradient (all ranks run the
    same model and objective, so they agree on which parameters are used).
    """
    used = [p for p in params if p.grad is not None]
    device = used[0].grad.device if used else params[0].device
    flag = torch.tensor([1.0 if stop else 0.0], device=device)
    flat = torch.cat([p.grad.reshape(-1) for p in used] + [flag.to(used[0].grad.dtype if used else flag.dtype)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat[:-1].div_(context.world_size)
    offset = 0
    for p in used:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n
    return bool(flat[-1].item() > 0)


def any_rank(flag: bool, context: Distributed, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (one small all-reduce; every rank must call it at the same point)."""
    if not context.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return bool(value.item() > 0)
