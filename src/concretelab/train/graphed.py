"""A training step captured as one CUDA graph (``concretelab train --cuda-graph``, with ``--device cuda``).

At batch 64 and m = 1 a step of a Table 1 model is about 0.1 GFLOP: microseconds of GPU arithmetic behind
hundreds of kernel launches, so the step is bound by launching. A CUDA graph records the launches of the whole
step once (the loss, its backward and the fused Adam update) and replays them with one call per step
(PyTorch, "CUDA Graphs": whole-network capture). What changes from step to step lives in tensors the graph reads:

- the batch, copied into a static input tensor;
- the learning rate, a device tensor in Adam's param groups (Adam with ``capturable=True``);
- the temperatures, 0-d device tensors;
- the sampling noise: the step's generator is registered with the graph (``register_generator_state``), so the
  graph reads its seed and offset when it is replayed. The trainer seeds it with the step's seed before each
  replay, as it does before an eager step, so a graphed step draws the noise of the eager step.

Capture needs every lazily created tensor (Adam's state, the gradients' memory) to exist first, which takes a
few warm-up steps; they are run on a side stream and then undone (parameters, buffers and Adam's state are put
back to what they were: ``preserved``), so a graphed run follows the trajectory of an eager run and resumes
like one. A stop signal is honoured between replays: a replay, once launched, completes its step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

__all__ = ["GraphedStep", "preserved"]

_WARMUP_STEPS = 3  # PyTorch's recipe: a few eager iterations on a side stream before capture


@contextlib.contextmanager
def preserved(tensors: Iterable[Tensor], optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Undo on exit what the block did to ``tensors`` (parameters and buffers, in place) and to ``optimizer``'s
    state: tensors it had are copied back, state it created is zeroed (Adam's state starts at zero: zeroed, it is
    the state a fresh Adam creates at its first step). Addresses are kept, as a captured graph needs."""
    tensors = list(tensors)
    saved = [t.detach().clone() for t in tensors]
    had = {id(p): {k: v.detach().clone() for k, v in state.items() if isinstance(v, Tensor)}
           for p, state in optimizer.state.items()}
    try:
        yield
    finally:
        with torch.no_grad():
            for tensor, value in zip(tensors, saved, strict=True):
                tensor.copy_(value)
            for p, state in optimizer.state.items():
                before = had.get(id(p))
                for key, value in state.items():
                    if not isinstance(value, Tensor):
                        continue
                    if before is not None and key in before:
                        value.copy_(before[key])
                    else:
                        value.zero_()


class GraphedStep:
    """The step ``loss_fn(x, prior_t, posterior_t)`` → backward of its sum → ``optimizer.step()`` as a CUDA graph.

    Args:
        loss_fn: the step's loss, a 0-d tensor or one loss per replica (R,), drawing its noise from ``generator``.
        optimizer: Adam over the trained parameters; switched to ``capturable`` with a tensor learning rate.
        state: every tensor the step changes besides Adam's state (parameters, an estimator's running moments),
            restored after the warm-up.
        example: a batch of the shape every step will have.
        generator: the CUDA generator ``loss_fn`` draws from.
    """

    def __init__(self, loss_fn: Callable[[Tensor, Tensor, Tensor], Tensor], optimizer: torch.optim.Optimizer, *,
                 state: Iterable[Tensor], example: Tensor, generator: torch.Generator) -> None:
        if example.device.type != "cuda":
            raise ValueError(f"a CUDA graph needs a CUDA device, got a batch on {example.device}")
        device = example.device
        self.optimizer = optimizer
        self.generator = generator
        self.x = example.detach().clone()
        self.prior_t = torch.ones((), device=device)
        self.posterior_t = torch.ones((), device=device)
        self.lr = torch.tensor(float(optimizer.param_groups[0]["lr"]), device=device)
        for group in optimizer.param_groups:
            group["capturable"] = True
            group["lr"] = self.lr
        params = [p for group in optimizer.param_groups for p in group["params"]]

        def step() -> Tensor:
            loss = loss_fn(self.x, self.prior_t, self.posterior_t)
            loss.sum().backward()
            optimizer.step()
            return loss.detach()

        with preserved([*state, *params], optimizer):
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(_WARMUP_STEPS):
                    optimizer.zero_grad(set_to_none=True)
                    step()
            torch.cuda.current_stream(device).wait_stream(side)
        optimizer.zero_grad(set_to_none=True)  # the gradients are allocated inside the graph, from its pool
        self.graph = torch.cuda.CUDAGraph()
        self.graph.register_generator_state(generator)
        with torch.cuda.graph(self.graph):
            self.loss = step()

    def __call__(self, x: Tensor, *, lr: float, prior_t: float | Tensor, posterior_t: float | Tensor,
                 seed: int) -> Tensor:
        """One step on batch ``x`` (its shape that of the example) with the noise of ``seed``; the step's loss (a
        tensor the next call overwrites: read or copy it before)."""
        self.x.copy_(x, non_blocking=True)
        self.lr.fill_(lr)
        self.prior_t.fill_(float(prior_t))
        self.posterior_t.fill_(float(posterior_t))
        self.generator.manual_seed(seed)
        self.graph.replay()
        return self.loss


def step_state(*modules: nn.Module | None) -> list[Tensor]:
    """The parameters and buffers of ``modules`` (None skipped): what a step may change besides Adam's state."""
    return [t for module in modules if module is not None for t in (*module.parameters(), *module.buffers())]
